package api_test

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Tokens are made, listed and revoked by admins; the secret is returned
// once and stored only as its SHA-256; a revoked token is refused.
func TestAccessTokensLifecycle(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	ctx := testCtx(t)
	access := intakev1.NewAccessServiceClient(b.conn)
	boot := as(ctx, testBootstrapToken)

	adminTok, admin := b.token(t, &intakev1.AccessToken{Role: intakev1.Role_ROLE_ADMIN, DisplayName: "ops team"})
	require.Equal(t, "tenants/default", admin.GetTenant())
	require.Equal(t, "ops team", admin.GetDisplayName())
	require.Regexp(t, `^tokens/[0-9a-f]{12}$`, admin.GetName())
	require.Equal(t, "itk_"+admin.GetName()[len("tokens/"):]+"_", adminTok[:len("itk_")+12+1], "the token starts with its id")
	require.NotNil(t, admin.GetCreateTime())
	require.Nil(t, admin.GetExpireTime())
	expires := time.Now().Add(time.Hour).Truncate(time.Second)
	viewerTok, viewer := b.token(t, &intakev1.AccessToken{Role: intakev1.Role_ROLE_VIEWER, ExpireTime: timestamppb.New(expires)})
	require.True(t, viewer.GetExpireTime().AsTime().Equal(expires))

	// WhoAmI, for each kind of token.
	me, err := access.WhoAmI(as(ctx, viewerTok), &intakev1.WhoAmIRequest{})
	require.NoError(t, err)
	require.Equal(t, viewer.GetName(), me.GetName())
	require.Equal(t, intakev1.Role_ROLE_VIEWER, me.GetRole())
	require.Empty(t, me.GetToken())
	require.NotNil(t, me.GetLastUsedTime(), "the call itself is a use")
	me, err = access.WhoAmI(boot, &intakev1.WhoAmIRequest{})
	require.NoError(t, err)
	require.True(t, me.GetBootstrap())
	require.Equal(t, intakev1.Role_ROLE_ADMIN, me.GetRole())
	require.Equal(t, "tenants/default", me.GetTenant())
	me, err = access.WhoAmI(as(ctx, testWorkerToken), &intakev1.WhoAmIRequest{})
	require.NoError(t, err)
	require.Equal(t, intakev1.Role_ROLE_WORKER, me.GetRole())

	// An admin token lists its tenant's tokens, never a secret; the table
	// holds only the SHA-256 of each.
	list, err := access.ListTokens(as(ctx, adminTok), &intakev1.ListTokensRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetTokens(), 2)
	for _, tok := range list.GetTokens() {
		require.Empty(t, tok.GetToken(), tok.GetName())
	}
	require.Equal(t, admin.GetName(), list.GetTokens()[0].GetName())
	require.NotNil(t, list.GetTokens()[0].GetLastUsedTime())
	require.NotNil(t, list.GetTokens()[1].GetLastUsedTime(), "the viewer token called WhoAmI")
	for _, secret := range []string{adminTok, viewerTok} {
		var rows int
		sum := sha256.Sum256([]byte(secret))
		require.NoError(t, b.db.QueryRow(ctx, `SELECT count(*) FROM intake.access_tokens WHERE hash = $1`, sum[:]).Scan(&rows))
		require.Equal(t, 1, rows, "the hash of the token is stored")
		require.NoError(t, b.db.QueryRow(ctx, `SELECT count(*) FROM intake.access_tokens t WHERE strpos(t::text, $1) > 0`, secret[len("itk_")+13:]).Scan(&rows))
		require.Zero(t, rows, "the secret is not stored")
	}

	// Revoke: refused from then on, listed only with show_inactive; a
	// second revoke changes nothing.
	rev, err := access.RevokeToken(as(ctx, adminTok), &intakev1.RevokeTokenRequest{Name: viewer.GetName()})
	require.NoError(t, err)
	require.NotNil(t, rev.GetRevokeTime())
	again, err := access.RevokeToken(as(ctx, adminTok), &intakev1.RevokeTokenRequest{Name: viewer.GetName()})
	require.NoError(t, err)
	require.True(t, rev.GetRevokeTime().AsTime().Equal(again.GetRevokeTime().AsTime()))
	_, err = access.WhoAmI(as(ctx, viewerTok), &intakev1.WhoAmIRequest{})
	requireCode(t, err, codes.Unauthenticated, viewer.GetName()+" was revoked at")
	list, err = access.ListTokens(as(ctx, adminTok), &intakev1.ListTokensRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetTokens(), 1)
	list, err = access.ListTokens(as(ctx, adminTok), &intakev1.ListTokensRequest{ShowInactive: true})
	require.NoError(t, err)
	require.Len(t, list.GetTokens(), 2)
	_, err = access.RevokeToken(as(ctx, adminTok), &intakev1.RevokeTokenRequest{Name: "tokens/0123456789ab"})
	requireCode(t, err, codes.NotFound, "token tokens/0123456789ab not found")
	_, err = access.RevokeToken(as(ctx, adminTok), &intakev1.RevokeTokenRequest{Name: "viewer"})
	requireCode(t, err, codes.InvalidArgument, `"viewer" is not a token name (tokens/{token}`)

	// Pages.
	for range 3 {
		b.token(t, &intakev1.AccessToken{Role: intakev1.Role_ROLE_EDITOR})
	}
	var names []string
	token := ""
	for {
		page, err := access.ListTokens(as(ctx, adminTok), &intakev1.ListTokensRequest{PageSize: 2, PageToken: token, ShowInactive: true})
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.GetTokens()), 2)
		for _, tok := range page.GetTokens() {
			names = append(names, tok.GetName())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	require.Len(t, names, 5)
	_, err = access.ListTokens(as(ctx, adminTok), &intakev1.ListTokensRequest{PageToken: "garbage"})
	requireCode(t, err, codes.InvalidArgument)
}

// CreateToken checks what it is asked, and only the bootstrap admin makes
// tokens of another tenant, which see only their own tenant's tokens.
func TestAccessCreateTokenRules(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	ctx := testCtx(t)
	access := intakev1.NewAccessServiceClient(b.conn)
	boot := as(ctx, testBootstrapToken)
	job := b.job(t, "exists")
	adminTok, _ := b.token(t, &intakev1.AccessToken{Role: intakev1.Role_ROLE_ADMIN})

	for _, c := range []struct {
		tok  *intakev1.AccessToken
		code codes.Code
		want string
	}{
		{nil, codes.InvalidArgument, "token: is required"},
		{&intakev1.AccessToken{}, codes.InvalidArgument, "token.role: is required"},
		{&intakev1.AccessToken{Role: intakev1.Role_ROLE_WORKER}, codes.InvalidArgument, "ROLE_WORKER tokens come from the server's configuration"},
		{&intakev1.AccessToken{Role: intakev1.Role_ROLE_TRIGGER}, codes.InvalidArgument, "a ROLE_TRIGGER token needs the jobs it may trigger"},
		{&intakev1.AccessToken{Role: intakev1.Role_ROLE_TRIGGER, Jobs: []string{job.GetName(), "jobs/missing"}}, codes.NotFound, "no such job: jobs/missing"},
		{&intakev1.AccessToken{Role: intakev1.Role_ROLE_TRIGGER, Jobs: []string{"missing"}}, codes.InvalidArgument, `token.jobs[0]: "missing" is not a job name`},
		{&intakev1.AccessToken{Role: intakev1.Role_ROLE_EDITOR, Jobs: []string{job.GetName()}}, codes.InvalidArgument, "only a ROLE_TRIGGER token names jobs"},
		{&intakev1.AccessToken{Role: intakev1.Role_ROLE_VIEWER, ExpireTime: timestamppb.New(time.Now().Add(-time.Minute))}, codes.InvalidArgument, "token.expire_time"},
		{&intakev1.AccessToken{Role: intakev1.Role_ROLE_VIEWER, Tenant: "Tenants/ACME"}, codes.InvalidArgument, `"Tenants/ACME" is not a tenant`},
		{&intakev1.AccessToken{Role: intakev1.Role_ROLE_VIEWER, Tenant: "tenants/acme"}, codes.PermissionDenied, "only the bootstrap admin token may make tokens of another tenant"},
	} {
		_, err := access.CreateToken(as(ctx, adminTok), &intakev1.CreateTokenRequest{Token: c.tok})
		requireCode(t, err, c.code, c.want)
	}
	// Only admins make tokens.
	editorTok, _ := b.token(t, &intakev1.AccessToken{Role: intakev1.Role_ROLE_EDITOR})
	_, err := access.CreateToken(as(ctx, editorTok), &intakev1.CreateTokenRequest{Token: &intakev1.AccessToken{Role: intakev1.Role_ROLE_ADMIN}})
	requireCode(t, err, codes.PermissionDenied, "role editor", "intake.v1.AccessService/CreateToken")

	// The bootstrap admin makes an admin of tenant acme; its tokens are
	// acme's, and it sees neither the default tenant's tokens nor can it
	// revoke them.
	made, err := access.CreateToken(boot, &intakev1.CreateTokenRequest{Token: &intakev1.AccessToken{Role: intakev1.Role_ROLE_ADMIN, Tenant: "tenants/acme"}})
	require.NoError(t, err)
	require.Equal(t, "tenants/acme", made.GetTenant())
	acme := as(ctx, made.GetToken())
	sub, err := access.CreateToken(acme, &intakev1.CreateTokenRequest{Token: &intakev1.AccessToken{Role: intakev1.Role_ROLE_VIEWER}})
	require.NoError(t, err)
	require.Equal(t, "tenants/acme", sub.GetTenant())
	list, err := access.ListTokens(acme, &intakev1.ListTokensRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetTokens(), 2)
	for _, tok := range list.GetTokens() {
		require.Equal(t, "tenants/acme", tok.GetTenant())
	}
	defaults, err := access.ListTokens(as(ctx, adminTok), &intakev1.ListTokensRequest{})
	require.NoError(t, err)
	_, err = access.RevokeToken(acme, &intakev1.RevokeTokenRequest{Name: defaults.GetTokens()[0].GetName()})
	requireCode(t, err, codes.NotFound)
	// The bootstrap admin revokes in any tenant.
	_, err = access.RevokeToken(boot, &intakev1.RevokeTokenRequest{Name: sub.GetName()})
	require.NoError(t, err)

	// A trigger token names its jobs once each.
	trig, err := access.CreateToken(boot, &intakev1.CreateTokenRequest{Token: &intakev1.AccessToken{
		Role: intakev1.Role_ROLE_TRIGGER, Jobs: []string{job.GetName(), job.GetName()}}})
	require.NoError(t, err)
	require.Equal(t, []string{job.GetName()}, trig.GetJobs())
}
