package jobspec_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/intakehq/intake/api/internal/jobspec"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// A webhook needs an http or https URL with a host; a bad one is refused
// naming job.webhook.url, and the secret never shows in a violation.
func TestValidateWebhook(t *testing.T) {
	t.Parallel()
	require.Empty(t, jobspec.ValidateWebhook("job.webhook", nil))
	for _, ok := range []string{"https://hooks.example.com/intake", "http://10.0.0.5:8080/x?token=abc"} {
		require.Empty(t, jobspec.ValidateWebhook("job.webhook", &intakev1.Webhook{Url: ok, Secret: "s3cret"}), ok)
	}
	for url, want := range map[string]string{
		"":                      "required",
		"ftp://example.com/x":   "not an http or https URL",
		"hooks.example.com/x":   "not an http or https URL",
		"https:///path":         "has no host",
		"https://exa mple.com/": "not a URL",
		"https://example.com/" + strings.Repeat("a", jobspec.MaxWebhookURL): "longer than",
	} {
		vs := jobspec.ValidateWebhook("job.webhook", &intakev1.Webhook{Url: url, Secret: "topsecret"})
		require.Len(t, vs, 1, url)
		require.Equal(t, "job.webhook.url", vs[0].Field, url)
		require.Contains(t, vs[0].Description, want, url)
		require.NotContains(t, vs.Error(), "topsecret")
	}
	vs := jobspec.ValidateWebhook("job.webhook", &intakev1.Webhook{Url: "https://x.example", Secret: strings.Repeat("s", jobspec.MaxWebhookSecret+1)})
	require.Len(t, vs, 1)
	require.Equal(t, "job.webhook.secret", vs[0].Field)
}

// An update keeps the stored secret unless it sends a new one or names
// "webhook.secret"; the webhook's paths mix with the other fields' and a
// bad path is named by its index in the request.
func TestApplyMaskWithWebhook(t *testing.T) {
	t.Parallel()
	stored := func() *intakev1.Job {
		return &intakev1.Job{DisplayName: "a", Webhook: &intakev1.Webhook{Url: "https://old.example/h", SecretSet: true}}
	}
	for name, tc := range map[string]struct {
		src   *intakev1.Job
		paths []string
		want  *intakev1.Webhook // nil: no webhook
	}{
		"other field":          {&intakev1.Job{DisplayName: "b"}, []string{"display_name"}, &intakev1.Webhook{Url: "https://old.example/h", SecretSet: true}},
		"url only":             {&intakev1.Job{Webhook: &intakev1.Webhook{Url: "https://new.example/h"}}, []string{"webhook.url"}, &intakev1.Webhook{Url: "https://new.example/h", SecretSet: true}},
		"whole, no secret":     {&intakev1.Job{Webhook: &intakev1.Webhook{Url: "https://new.example/h"}}, []string{"webhook"}, &intakev1.Webhook{Url: "https://new.example/h", SecretSet: true}},
		"empty mask keeps":     {&intakev1.Job{DisplayName: "b", Webhook: &intakev1.Webhook{Url: "https://new.example/h"}}, nil, &intakev1.Webhook{Url: "https://new.example/h", SecretSet: true}},
		"new secret":           {&intakev1.Job{Webhook: &intakev1.Webhook{Secret: "new"}}, []string{"webhook.secret"}, &intakev1.Webhook{Url: "https://old.example/h", Secret: "new", SecretSet: true}},
		"secret path clears":   {&intakev1.Job{}, []string{"webhook.secret"}, &intakev1.Webhook{Url: "https://old.example/h"}},
		"whole with secret":    {&intakev1.Job{Webhook: &intakev1.Webhook{Url: "https://n.example", Secret: "x"}}, []string{"webhook"}, &intakev1.Webhook{Url: "https://n.example", Secret: "x", SecretSet: true}},
		"removed":              {&intakev1.Job{}, []string{"display_name", "webhook"}, nil},
		"empty mask removes":   {&intakev1.Job{DisplayName: "b"}, nil, nil},
		"client secret_set ok": {&intakev1.Job{Webhook: &intakev1.Webhook{Url: "https://n.example", SecretSet: false}}, []string{"webhook"}, &intakev1.Webhook{Url: "https://n.example", SecretSet: true}},
	} {
		dst := stored()
		require.Empty(t, jobspec.ApplyMaskWithWebhook(dst, tc.src, tc.paths), name)
		require.True(t, proto.Equal(tc.want, dst.GetWebhook()), "%s: got %v, want %v", name, dst.GetWebhook(), tc.want)
	}

	// A job without a secret does not get one from a client's secret_set.
	dst := &intakev1.Job{}
	require.Empty(t, jobspec.ApplyMaskWithWebhook(dst, &intakev1.Job{Webhook: &intakev1.Webhook{Url: "https://n.example", SecretSet: true}}, []string{"webhook"}))
	require.False(t, dst.GetWebhook().GetSecretSet())

	vs := jobspec.ApplyMaskWithWebhook(stored(), &intakev1.Job{}, []string{"webhook.secret", "display_name", "nope"})
	require.Len(t, vs, 1)
	require.Equal(t, "update_mask.paths[2]", vs[0].Field)
	require.Contains(t, vs[0].Description, `unknown field "nope"`)

	// The stored spec never holds the secret.
	job := &intakev1.Job{Webhook: &intakev1.Webhook{Url: "https://n.example", Secret: "x", SecretSet: true}}
	jobspec.ClearWebhookSecret(job)
	require.True(t, proto.Equal(&intakev1.Webhook{Url: "https://n.example"}, job.GetWebhook()))
}
