package api_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/api"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// tenantWorld is what tenant alpha holds when tenant beta comes calling:
// a stored connection, a job with a run and a trigger token, a custom
// attribute, and a token.
type tenantWorld struct {
	alpha, beta         string // admin tokens
	alphaViewer         string // a token of alpha's, for RevokeToken
	alphaViewerName     string
	conn, job, run, tok string // alpha's resource names
	attribute           string
	trigger             string // the secret of alpha's job's trigger token
}

func setupTenants(t *testing.T, b *authBundle) *tenantWorld {
	t.Helper()
	ctx := testCtx(t)
	w := &tenantWorld{}
	w.alpha, _ = b.token(t, &intakev1.AccessToken{Role: intakev1.Role_ROLE_ADMIN, Tenant: "tenants/alpha", DisplayName: "alpha admin"})
	w.beta, _ = b.token(t, &intakev1.AccessToken{Role: intakev1.Role_ROLE_ADMIN, Tenant: "tenants/beta", DisplayName: "beta admin"})
	var viewer *intakev1.AccessToken
	w.alphaViewer, viewer = b.token(t, &intakev1.AccessToken{Role: intakev1.Role_ROLE_VIEWER, Tenant: "tenants/alpha"})
	w.alphaViewerName = viewer.GetName()

	a := as(ctx, w.alpha)
	conn, err := intakev1.NewConnectionServiceClient(b.conn).CreateConnection(a, &intakev1.CreateConnectionRequest{
		ConnectionId: "alpha-files", Connection: &intakev1.Connection{DisplayName: "alpha's files",
			Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: b.files.srv.URL + "/"}}},
	})
	require.NoError(t, err)
	w.conn = conn.GetName()
	attr, err := intakev1.NewDataModelServiceClient(b.conn).CreateAttribute(a, &intakev1.CreateAttributeRequest{
		Parent: "objects/accounts", Attribute: &intakev1.Attribute{AttributeId: "alpha_only", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT},
	})
	require.NoError(t, err)
	w.attribute = attr.GetName()
	jobs := intakev1.NewJobServiceClient(b.conn)
	job := accountsJobAt("alpha accounts", b.files.srv.URL+"/accounts.csv")
	job.Enabled = false
	made, err := jobs.CreateJob(a, &intakev1.CreateJobRequest{JobId: "alpha-accounts", Job: job})
	require.NoError(t, err)
	w.job = made.GetName()
	run, err := jobs.RunJob(a, &intakev1.RunJobRequest{Name: w.job})
	require.NoError(t, err)
	w.run = run.GetName()
	tok, err := jobs.CreateTriggerToken(a, &intakev1.CreateTriggerTokenRequest{Parent: w.job})
	require.NoError(t, err)
	w.tok, w.trigger = tok.GetName(), tok.GetToken()
	return w
}

// A token of tenant beta acting on anything of tenant alpha gets NotFound,
// as for something that does not exist, for every method of the services
// that act in a tenant (the cases come from the access table, so a new
// method without a case fails this test). Lists hold nothing of alpha.
func TestTenantsSeeNothingOfEachOther(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	w := setupTenants(t, b)
	jobs := intakev1.NewJobServiceClient(b.conn)
	runs := intakev1.NewRunServiceClient(b.conn)
	model := intakev1.NewDataModelServiceClient(b.conn)
	conns := intakev1.NewConnectionServiceClient(b.conn)
	access := intakev1.NewAccessServiceClient(b.conn)

	// notFound: the call must fail NotFound, saying what any missing
	// resource's call says (no word of another tenant).
	notFound := func(err error) error {
		if status.Code(err) != codes.NotFound {
			return errors.New("want NotFound, got " + status.Code(err).String() + ": " + status.Convert(err).Message())
		}
		if strings.Contains(status.Convert(err).Message(), "tenants/alpha") || strings.Contains(status.Convert(err).Message(), "tenant alpha") {
			return errors.New("the message names the other tenant: " + status.Convert(err).Message())
		}
		return nil
	}
	recvAll := func(recv func() error) error {
		for {
			if err := recv(); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	}
	alphaJob := func() *intakev1.Job {
		j := accountsJobAt("beta's copy", b.files.srv.URL+"/accounts.csv")
		j.Name, j.Enabled = w.job, false
		return j
	}
	cases := map[string]func(ctx context.Context) error{
		"JobService/CreateJob": func(ctx context.Context) error {
			// alpha's id is taken (the one documented sign of it) ...
			_, err := jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "alpha-accounts", Job: alphaJob()})
			if status.Code(err) != codes.AlreadyExists || !strings.Contains(status.Convert(err).Message(), "job id alpha-accounts is taken") {
				return errors.New("want AlreadyExists (id taken), got " + status.Convert(err).String())
			}
			// ... and alpha's connection does not exist for a job of beta.
			j := alphaJob()
			j.Name, j.Connection, j.ConnectionName = "", nil, w.conn
			j.File = &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: "accounts.csv"}}
			_, err = jobs.CreateJob(ctx, &intakev1.CreateJobRequest{Job: j})
			j.ConnectionName = "connections/no-such-files"
			_, missing := jobs.CreateJob(ctx, &intakev1.CreateJobRequest{Job: j})
			if status.Code(err) != status.Code(missing) || status.Code(err) == codes.OK ||
				strings.ReplaceAll(status.Convert(err).Message(), "alpha-files", "no-such-files") != status.Convert(missing).Message() {
				return errors.New("another tenant's connection is not answered as a missing one: " + status.Convert(err).String() +
					" vs " + status.Convert(missing).String())
			}
			return nil
		},
		"JobService/GetJob": func(ctx context.Context) error {
			_, err := jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: w.job})
			return notFound(err)
		},
		"JobService/ListJobs": func(ctx context.Context) error {
			resp, err := jobs.ListJobs(ctx, &intakev1.ListJobsRequest{})
			if err != nil {
				return err
			}
			if len(resp.GetJobs()) != 0 {
				return errors.New("lists jobs of another tenant: " + resp.GetJobs()[0].GetName())
			}
			return nil
		},
		"JobService/UpdateJob": func(ctx context.Context) error {
			_, err := jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: alphaJob(), UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}})
			return notFound(err)
		},
		"JobService/DeleteJob": func(ctx context.Context) error {
			_, err := jobs.DeleteJob(ctx, &intakev1.DeleteJobRequest{Name: w.job})
			return notFound(err)
		},
		"JobService/RunJob": func(ctx context.Context) error {
			_, err := jobs.RunJob(ctx, &intakev1.RunJobRequest{Name: w.job})
			return notFound(err)
		},
		"JobService/ValidateMapping": func(ctx context.Context) error {
			_, err := jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Name: w.job})
			return notFound(err)
		},
		"JobService/PreviewJob": func(ctx context.Context) error {
			_, err := jobs.PreviewJob(ctx, &intakev1.PreviewJobRequest{Name: w.job})
			return notFound(err)
		},
		"JobService/SuggestMapping": func(ctx context.Context) error {
			_, err := jobs.SuggestMapping(ctx, &intakev1.SuggestMappingRequest{Name: w.job})
			return notFound(err)
		},
		"JobService/DuplicateJob": func(ctx context.Context) error {
			_, err := jobs.DuplicateJob(ctx, &intakev1.DuplicateJobRequest{Name: w.job, NewJobId: "beta-copy"})
			return notFound(err)
		},
		"JobService/SetJobEnabled": func(ctx context.Context) error {
			_, err := jobs.SetJobEnabled(ctx, &intakev1.SetJobEnabledRequest{Name: w.job, Enabled: false})
			return notFound(err)
		},
		"JobService/TriggerJob": func(ctx context.Context) error {
			_, err := jobs.TriggerJob(ctx, &intakev1.TriggerJobRequest{Name: w.job})
			return notFound(err)
		},
		"JobService/CreateTriggerToken": func(ctx context.Context) error {
			_, err := jobs.CreateTriggerToken(ctx, &intakev1.CreateTriggerTokenRequest{Parent: w.job})
			return notFound(err)
		},
		"JobService/RotateTriggerToken": func(ctx context.Context) error {
			_, err := jobs.RotateTriggerToken(ctx, &intakev1.RotateTriggerTokenRequest{Parent: w.job})
			return notFound(err)
		},
		"JobService/RevokeTriggerToken": func(ctx context.Context) error {
			_, err := jobs.RevokeTriggerToken(ctx, &intakev1.RevokeTriggerTokenRequest{Name: w.tok})
			return notFound(err)
		},
		"JobService/ListTriggerTokens": func(ctx context.Context) error {
			_, err := jobs.ListTriggerTokens(ctx, &intakev1.ListTriggerTokensRequest{Parent: w.job})
			return notFound(err)
		},

		"RunService/GetRun": func(ctx context.Context) error {
			_, err := runs.GetRun(ctx, &intakev1.GetRunRequest{Name: w.run})
			return notFound(err)
		},
		"RunService/ListRuns": func(ctx context.Context) error {
			resp, err := runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: "jobs/-"})
			if err != nil {
				return err
			}
			if len(resp.GetRuns()) != 0 {
				return errors.New("lists runs of another tenant: " + resp.GetRuns()[0].GetName())
			}
			resp, err = runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: w.job})
			if err == nil && len(resp.GetRuns()) != 0 {
				return errors.New("lists the runs of another tenant's job")
			}
			if err != nil {
				return notFound(err)
			}
			return nil
		},
		"RunService/WatchRun": func(ctx context.Context) error {
			s, err := runs.WatchRun(ctx, &intakev1.WatchRunRequest{Name: w.run})
			if err != nil {
				return notFound(err)
			}
			_, err = s.Recv()
			return notFound(err)
		},
		"RunService/DownloadRejects": func(ctx context.Context) error {
			s, err := runs.DownloadRejects(ctx, &intakev1.DownloadRejectsRequest{Name: w.run})
			if err != nil {
				return notFound(err)
			}
			return notFound(recvAll(func() error { _, err := s.Recv(); return err }))
		},
		"RunService/CancelRun": func(ctx context.Context) error {
			_, err := runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: w.run})
			return notFound(err)
		},
		"RunService/DownloadSource": func(ctx context.Context) error {
			s, err := runs.DownloadSource(ctx, &intakev1.DownloadSourceRequest{Name: w.run})
			if err != nil {
				return notFound(err)
			}
			return notFound(recvAll(func() error { _, err := s.Recv(); return err }))
		},
		"RunService/ReplayRun": func(ctx context.Context) error {
			_, err := runs.ReplayRun(ctx, &intakev1.ReplayRunRequest{Name: w.run})
			return notFound(err)
		},

		"DataModelService/ListObjects": func(ctx context.Context) error {
			resp, err := model.ListObjects(ctx, &intakev1.ListObjectsRequest{})
			if err != nil {
				return err
			}
			for _, o := range resp.GetObjects() {
				for _, a := range o.GetAttributes() {
					if a.GetAttributeId() == "alpha_only" {
						return errors.New("lists an attribute of another tenant")
					}
				}
			}
			return nil
		},
		"DataModelService/ListAttributes": func(ctx context.Context) error {
			resp, err := model.ListAttributes(ctx, &intakev1.ListAttributesRequest{Parent: "objects/accounts"})
			if err != nil {
				return err
			}
			for _, a := range resp.GetAttributes() {
				if a.GetAttributeId() == "alpha_only" {
					return errors.New("lists an attribute of another tenant")
				}
			}
			return nil
		},
		"DataModelService/CreateAttribute": func(ctx context.Context) error {
			// alpha's attribute id is free in beta (another type, even).
			_, err := model.CreateAttribute(ctx, &intakev1.CreateAttributeRequest{Parent: "objects/accounts",
				Attribute: &intakev1.Attribute{AttributeId: "alpha_only", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER}})
			if err != nil {
				return err
			}
			_, err = model.DeleteAttribute(ctx, &intakev1.DeleteAttributeRequest{Name: w.attribute})
			return err
		},
		"DataModelService/DeleteAttribute": func(ctx context.Context) error {
			_, err := model.DeleteAttribute(ctx, &intakev1.DeleteAttributeRequest{Name: w.attribute})
			return notFound(err)
		},

		"ConnectionService/CreateConnection": func(ctx context.Context) error {
			_, err := conns.CreateConnection(ctx, &intakev1.CreateConnectionRequest{ConnectionId: "alpha-files",
				Connection: &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: b.files.srv.URL + "/"}}}})
			if status.Code(err) != codes.AlreadyExists || !strings.Contains(status.Convert(err).Message(), "connection id alpha-files is taken") {
				return errors.New("want AlreadyExists (id taken), got " + status.Convert(err).String())
			}
			return nil
		},
		"ConnectionService/GetConnection": func(ctx context.Context) error {
			_, err := conns.GetConnection(ctx, &intakev1.GetConnectionRequest{Name: w.conn})
			return notFound(err)
		},
		"ConnectionService/ListConnections": func(ctx context.Context) error {
			resp, err := conns.ListConnections(ctx, &intakev1.ListConnectionsRequest{})
			if err != nil {
				return err
			}
			if len(resp.GetConnections()) != 0 {
				return errors.New("lists connections of another tenant")
			}
			return nil
		},
		"ConnectionService/UpdateConnection": func(ctx context.Context) error {
			_, err := conns.UpdateConnection(ctx, &intakev1.UpdateConnectionRequest{
				Connection: &intakev1.Connection{Name: w.conn, DisplayName: "beta's now"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}})
			return notFound(err)
		},
		"ConnectionService/DeleteConnection": func(ctx context.Context) error {
			_, err := conns.DeleteConnection(ctx, &intakev1.DeleteConnectionRequest{Name: w.conn})
			return notFound(err)
		},
		"ConnectionService/TestConnection": func(ctx context.Context) error {
			_, err := conns.TestConnection(ctx, &intakev1.TestConnectionRequest{Name: w.conn})
			return notFound(err)
		},
		"ConnectionService/ListFiles": func(ctx context.Context) error {
			_, err := conns.ListFiles(ctx, &intakev1.ListFilesRequest{Name: w.conn})
			return notFound(err)
		},

		"AccessService/CreateToken": func(ctx context.Context) error {
			_, err := access.CreateToken(ctx, &intakev1.CreateTokenRequest{Token: &intakev1.AccessToken{
				Role: intakev1.Role_ROLE_TRIGGER, Jobs: []string{w.job}}})
			return notFound(err)
		},
		"AccessService/ListTokens": func(ctx context.Context) error {
			resp, err := access.ListTokens(ctx, &intakev1.ListTokensRequest{ShowInactive: true})
			if err != nil {
				return err
			}
			for _, tk := range resp.GetTokens() {
				if tk.GetTenant() != "tenants/beta" {
					return errors.New("lists a token of " + tk.GetTenant())
				}
			}
			if len(resp.GetTokens()) != 1 {
				return errors.New("want beta's one token")
			}
			return nil
		},
		"AccessService/RevokeToken": func(ctx context.Context) error {
			_, err := access.RevokeToken(ctx, &intakev1.RevokeTokenRequest{Name: w.alphaViewerName})
			return notFound(err)
		},
		"AccessService/WhoAmI": func(ctx context.Context) error {
			me, err := access.WhoAmI(ctx, &intakev1.WhoAmIRequest{})
			if err != nil {
				return err
			}
			if me.GetTenant() != "tenants/beta" {
				return errors.New("WhoAmI says " + me.GetTenant())
			}
			return nil
		},
	}
	for _, m := range api.TenantMethods() {
		short := strings.TrimPrefix(m, "/intake.v1.")
		do, ok := cases[short]
		require.True(t, ok, "%s acts in a tenant but has no case in TestTenantsSeeNothingOfEachOther", m)
		require.NoError(t, do(as(testCtx(t), w.beta)), "%s as tenant beta on tenant alpha's resources", m)
	}

	// Nothing of alpha changed: its job, run, connection, attribute and
	// tokens are as they were, and it still sees them.
	a := as(testCtx(t), w.alpha)
	job, err := jobs.GetJob(a, &intakev1.GetJobRequest{Name: w.job})
	require.NoError(t, err)
	require.Equal(t, "alpha accounts", job.GetDisplayName())
	_, err = runs.GetRun(a, &intakev1.GetRunRequest{Name: w.run})
	require.NoError(t, err)
	c, err := conns.GetConnection(a, &intakev1.GetConnectionRequest{Name: w.conn})
	require.NoError(t, err)
	require.Equal(t, "alpha's files", c.GetDisplayName())
	toks, err := jobs.ListTriggerTokens(a, &intakev1.ListTriggerTokensRequest{Parent: w.job})
	require.NoError(t, err)
	require.Len(t, toks.GetTokens(), 1)
	attrs, err := model.ListAttributes(a, &intakev1.ListAttributesRequest{Parent: "objects/accounts"})
	require.NoError(t, err)
	require.True(t, slices.ContainsFunc(attrs.GetAttributes(), func(x *intakev1.Attribute) bool {
		return x.GetAttributeId() == "alpha_only" && x.GetType() == intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT
	}), "alpha's attribute is still alpha's, a Text")
	_, err = jobs.GetJob(as(testCtx(t), w.alphaViewer), &intakev1.GetJobRequest{Name: w.job})
	require.NoError(t, err, "alpha's viewer token was not revoked by beta")
	var n int
	require.NoError(t, b.db.QueryRow(testCtx(t), `SELECT count(*) FROM intake.jobs WHERE tenant_id = 'beta'`).Scan(&n))
	require.Zero(t, n, "beta made no job")

	// The workers' credential still sees every tenant's jobs (the
	// scheduler lists them all).
	all, err := jobs.ListJobs(as(testCtx(t), testWorkerToken), &intakev1.ListJobsRequest{})
	require.NoError(t, err)
	require.True(t, slices.ContainsFunc(all.GetJobs(), func(j *intakev1.Job) bool { return j.GetName() == w.job }))
}

// Each tenant's object rows are in a schema of its own, with every object
// table; a custom attribute is a column of its tenant's table only, so the
// same id may have different types in two tenants.
func TestTenantsHaveTheirOwnObjectTables(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	ctx := testCtx(t)
	model := intakev1.NewDataModelServiceClient(b.conn)
	// A custom attribute of the default tenant is not copied into a new
	// tenant's tables.
	_, err := model.CreateAttribute(as(ctx, testBootstrapToken), &intakev1.CreateAttributeRequest{Parent: "objects/accounts",
		Attribute: &intakev1.Attribute{AttributeId: "segment_code", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT}})
	require.NoError(t, err)
	alpha, _ := b.token(t, &intakev1.AccessToken{Role: intakev1.Role_ROLE_EDITOR, Tenant: "tenants/alpha"})
	beta, _ := b.token(t, &intakev1.AccessToken{Role: intakev1.Role_ROLE_EDITOR, Tenant: "tenants/beta-2"})

	var tables int
	require.NoError(t, b.db.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'objects_beta_2'`).Scan(&tables))
	require.Equal(t, 10, tables, "tenant beta-2 has every object table, in objects_beta_2")

	for tok, typ := range map[string]intakev1.AttributeType{alpha: intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER, beta: intakev1.AttributeType_ATTRIBUTE_TYPE_DATE} {
		a, err := model.CreateAttribute(as(ctx, tok), &intakev1.CreateAttributeRequest{Parent: "objects/accounts",
			Attribute: &intakev1.Attribute{AttributeId: "score", Type: typ}})
		require.NoError(t, err)
		require.Equal(t, typ, a.GetType())
	}
	columnType := func(schema, column string) string {
		var ty string
		err := b.db.QueryRow(ctx, `SELECT data_type FROM information_schema.columns
			WHERE table_schema = $1 AND table_name = 'accounts' AND column_name = $2`, schema, column).Scan(&ty)
		if err != nil {
			return ""
		}
		return ty
	}
	require.Equal(t, "numeric", columnType("objects_alpha", "score"))
	require.Equal(t, "date", columnType("objects_beta_2", "score"))
	require.Empty(t, columnType("objects", "score"), "the default tenant's table is unchanged")
	require.Equal(t, "text", columnType("objects", "segment_code"))
	require.Empty(t, columnType("objects_alpha", "segment_code"), "the default tenant's attribute is not alpha's")

	// Each tenant's model says its own type and table.
	for tok, want := range map[string]string{alpha: "objects_alpha.accounts", beta: "objects_beta_2.accounts"} {
		objs, err := model.ListObjects(as(ctx, tok), &intakev1.ListObjectsRequest{})
		require.NoError(t, err)
		i := slices.IndexFunc(objs.GetObjects(), func(o *intakev1.DataObject) bool { return o.GetName() == "objects/accounts" })
		require.GreaterOrEqual(t, i, 0)
		require.Equal(t, want, objs.GetObjects()[i].GetTable())
	}
	// Deleting alpha's leaves beta's.
	_, err = model.DeleteAttribute(as(ctx, alpha), &intakev1.DeleteAttributeRequest{Name: "objects/accounts/attributes/score"})
	require.NoError(t, err)
	require.Empty(t, columnType("objects_alpha", "score"))
	require.Equal(t, "date", columnType("objects_beta_2", "score"))
}

// A trigger token of tenant alpha's job triggers that job and no other:
// not a job of tenant beta.
func TestTenantsTriggerTokenStaysInItsJob(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	w := setupTenants(t, b)
	jobs := intakev1.NewJobServiceClient(b.conn)
	job := accountsJobAt("beta accounts", b.files.srv.URL+"/accounts.csv")
	job.Enabled = false
	betaJob, err := jobs.CreateJob(as(testCtx(t), w.beta), &intakev1.CreateJobRequest{JobId: "beta-accounts", Job: job})
	require.NoError(t, err)

	_, err = jobs.TriggerJob(as(testCtx(t), w.trigger), &intakev1.TriggerJobRequest{Name: betaJob.GetName()})
	require.Error(t, err)
	require.Contains(t, []codes.Code{codes.NotFound, codes.PermissionDenied}, status.Code(err), "%v", err)
	runs, err := intakev1.NewRunServiceClient(b.conn).ListRuns(as(testCtx(t), w.beta), &intakev1.ListRunsRequest{Parent: betaJob.GetName()})
	require.NoError(t, err)
	require.Empty(t, runs.GetRuns(), "beta's job did not run")

	// Its own job it triggers, and the run is alpha's.
	resp, err := jobs.TriggerJob(as(testCtx(t), w.trigger), &intakev1.TriggerJobRequest{Name: w.job})
	require.NoError(t, err)
	var tenant string
	require.NoError(t, b.db.QueryRow(testCtx(t), `SELECT tenant_id FROM intake.runs WHERE id = $1`,
		resp.GetRun().GetName()[strings.LastIndex(resp.GetRun().GetName(), "/")+1:]).Scan(&tenant))
	require.Equal(t, "alpha", tenant)
	_, err = intakev1.NewRunServiceClient(b.conn).GetRun(as(testCtx(t), w.beta), &intakev1.GetRunRequest{Name: resp.GetRun().GetName()})
	requireCode(t, err, codes.NotFound)
}

// The id of a job that another tenant deleted (its run history kept) is
// "taken", as any other tenant's id; to the tenant that deleted it, it is
// its own deleted job's.
func TestTenantsIDsOfDeletedJobs(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	w := setupTenants(t, b)
	jobs := intakev1.NewJobServiceClient(b.conn)
	_, err := jobs.DeleteJob(as(testCtx(t), w.alpha), &intakev1.DeleteJobRequest{Name: w.job})
	require.NoError(t, err)
	job := accountsJobAt("again", b.files.srv.URL+"/accounts.csv")
	job.Enabled = false
	_, err = jobs.CreateJob(as(testCtx(t), w.beta), &intakev1.CreateJobRequest{JobId: "alpha-accounts", Job: job})
	requireCode(t, err, codes.AlreadyExists, "job id alpha-accounts is taken; choose another id or leave it empty for a generated one")
	_, err = jobs.CreateJob(as(testCtx(t), w.alpha), &intakev1.CreateJobRequest{JobId: "alpha-accounts", Job: job})
	requireCode(t, err, codes.AlreadyExists, "was deleted")
	// alpha's history of it stays alpha's.
	_, err = intakev1.NewRunServiceClient(b.conn).GetRun(as(testCtx(t), w.alpha), &intakev1.GetRunRequest{Name: w.run})
	require.NoError(t, err)
	_, err = intakev1.NewRunServiceClient(b.conn).GetRun(as(testCtx(t), w.beta), &intakev1.GetRunRequest{Name: w.run})
	requireCode(t, err, codes.NotFound)
}

// A scheduled run of a tenant's job stores that tenant's data model (its
// custom attributes), not the default tenant's: the scheduler's batch path
// creates runs for every tenant at once.
func TestTenantsScheduledRunHasItsTenantsModel(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	ctx := testCtx(t)
	w := setupTenants(t, b)
	a := as(ctx, w.alpha)
	jobs := intakev1.NewJobServiceClient(b.conn)
	v, err := jobs.ValidateMapping(a, &intakev1.ValidateMappingRequest{Name: w.job})
	require.NoError(t, err)
	_, err = jobs.SetJobEnabled(a, &intakev1.SetJobEnabledRequest{Name: w.job, Enabled: true, ValidationToken: v.GetValidationToken()})
	require.NoError(t, err)

	tick := time.Now().UTC().Truncate(time.Minute).Add(time.Minute)
	res, err := intakev1.NewStageServiceClient(b.conn).CreateScheduledRuns(as(ctx, testWorkerToken),
		&intakev1.CreateScheduledRunsRequest{Ticks: []*intakev1.CreateScheduledRunRequest{{Job: w.job, ScheduledTime: timestamppb.New(tick)}}})
	require.NoError(t, err)
	require.Len(t, res.GetResults(), 1)
	require.Empty(t, res.GetResults()[0].GetError())
	run := res.GetResults()[0].GetResponse().GetRun()
	require.True(t, res.GetResults()[0].GetResponse().GetCreated())

	var tenant, model string
	_, runID, _ := strings.Cut(strings.TrimPrefix(run.GetName(), w.job+"/"), "runs/")
	require.NoError(t, b.db.QueryRow(ctx, `SELECT tenant_id, model::text FROM intake.runs WHERE id = $1`, runID).Scan(&tenant, &model))
	require.Equal(t, "alpha", tenant)
	require.Contains(t, model, "alpha_only", "the run's model is tenant alpha's, with its custom attribute")
	require.Contains(t, model, "objects_alpha.accounts")
}
