package jobspec

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Limits of a job's completion webhook.
const (
	MaxWebhookURL    = 2048
	MaxWebhookSecret = 1024
)

// Update mask paths of a job's webhook: the whole webhook, or one of its
// client-settable fields.
const (
	webhookPath       = "webhook"
	webhookURLPath    = "webhook.url"
	webhookSecretPath = "webhook.secret"
)

// ValidateWebhook checks a job's completion webhook (field is its path,
// "job.webhook"): an http or https URL with a host. The secret is optional
// (without one the deliveries are not signed) and never echoed in a
// violation. A nil webhook is valid: the job has none.
func ValidateWebhook(field string, w *intakev1.Webhook) Violations {
	var vs Violations
	if w == nil {
		return vs
	}
	f := field + ".url"
	switch raw := w.GetUrl(); {
	case strings.TrimSpace(raw) == "":
		vs.add(f, "required (an http or https URL, e.g. https://hooks.example.com/intake); to remove the webhook, clear %q", field)
	case len(raw) > MaxWebhookURL:
		vs.add(f, "longer than %d bytes", MaxWebhookURL)
	default:
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			vs.add(f, "not a URL: %v", unwrapURLError(err))
		case u.Scheme != "http" && u.Scheme != "https":
			vs.add(f, "%q is not an http or https URL (e.g. https://hooks.example.com/intake)", raw)
		case u.Hostname() == "":
			vs.add(f, "%q has no host (e.g. https://hooks.example.com/intake)", raw)
		}
	}
	if s := w.GetSecret(); len(s) > MaxWebhookSecret {
		vs.add(field+".secret", "longer than %d bytes", MaxWebhookSecret)
	} else if !utf8.ValidString(s) {
		vs.add(field+".secret", "not valid UTF-8")
	}
	return vs
}

// unwrapURLError is the reason of a url.Parse error, without the URL.
func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// ApplyMaskWithWebhook is ApplyMask that also takes the webhook's paths:
// "webhook" (the whole webhook), "webhook.url" and "webhook.secret". An
// empty mask replaces the webhook too.
//
// The secret is write-only: dst holds the stored job, whose
// webhook.secret_set says whether it has one. After the update dst's
// webhook says what to store: a non-empty secret is a new one; an empty
// secret with secret_set keeps the stored one; an empty secret without
// secret_set (or no webhook) clears it. An update keeps the stored secret
// unless it names "webhook.secret" (an empty secret then clears it) or
// sends a new secret; a webhook cleared by the update drops its secret.
func ApplyMaskWithWebhook(dst, src *intakev1.Job, paths []string) Violations {
	hadSecret := dst.GetWebhook().GetSecretSet()
	var (
		rest       []string
		restIndex  []int
		whole      = len(paths) == 0
		urlOnly    bool
		secretPath bool
	)
	for i, p := range paths {
		switch p {
		case webhookPath:
			whole = true
		case webhookURLPath:
			urlOnly = true
		case webhookSecretPath:
			secretPath = true
		default:
			rest, restIndex = append(rest, p), append(restIndex, i)
		}
	}
	var vs Violations
	if len(paths) == 0 || len(rest) > 0 {
		for _, v := range ApplyMask(dst, src, rest) {
			// ApplyMask numbered the paths it saw; number them as sent.
			var k int
			if n, _ := fmt.Sscanf(v.Field, "update_mask.paths[%d]", &k); n == 1 && k >= 0 && k < len(restIndex) {
				v.Field = fmt.Sprintf("update_mask.paths[%d]", restIndex[k])
			}
			vs = append(vs, v)
		}
	}
	if len(vs) > 0 {
		return vs
	}
	sw := src.GetWebhook()
	switch {
	case whole && sw == nil:
		dst.Webhook = nil
		return nil
	case whole:
		dst.Webhook = proto.Clone(sw).(*intakev1.Webhook)
	case urlOnly || secretPath:
		if dst.Webhook == nil {
			dst.Webhook = &intakev1.Webhook{}
		}
		if urlOnly {
			dst.Webhook.Url = sw.GetUrl()
		}
	default:
		return nil // the webhook is not updated: dst keeps the stored one
	}
	switch {
	case secretPath:
		dst.Webhook.Secret = sw.GetSecret()
		dst.Webhook.SecretSet = sw.GetSecret() != ""
	case dst.Webhook.Secret != "":
		dst.Webhook.SecretSet = true
	default: // no new secret: keep the stored one
		dst.Webhook.SecretSet = hadSecret
	}
	return nil
}

// ClearWebhookSecret removes the secret (and secret_set) from a job's
// webhook, as a job is stored or sent anywhere but to the secret's column.
func ClearWebhookSecret(job *intakev1.Job) {
	if w := job.GetWebhook(); w != nil {
		w.Secret, w.SecretSet = "", false
	}
}
