package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// tenantClients are the API's clients with a token of one tenant.
type tenantClients struct {
	jobs  intakev1.JobServiceClient
	runs  intakev1.RunServiceClient
	model intakev1.DataModelServiceClient
}

// asTenant makes an editor token of tenant (the bootstrap admin makes the
// tenant on the way) and returns clients that send it.
func (s *system) asTenant(ctx context.Context, t *testing.T, tenant string) *tenantClients {
	t.Helper()
	admin, err := grpc.NewClient(s.apiAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), adminCredentials())
	require.NoError(t, err)
	defer admin.Close()
	tok, err := intakev1.NewAccessServiceClient(admin).CreateToken(ctx, &intakev1.CreateTokenRequest{Token: &intakev1.AccessToken{
		Role: intakev1.Role_ROLE_EDITOR, Tenant: "tenants/" + tenant, DisplayName: tenant + " editor"}})
	require.NoError(t, err)
	conn, err := grpc.NewClient(s.apiAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearer(tok.GetToken())))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &tenantClients{jobs: intakev1.NewJobServiceClient(conn), runs: intakev1.NewRunServiceClient(conn),
		model: intakev1.NewDataModelServiceClient(conn)}
}

// TestTenantsImportIntoTheirOwnTables: a run of tenant alpha, through every
// worker, lands in alpha's object tables with alpha's custom attribute;
// tenant beta's table (whose attribute of the same id has another type)
// and the default tenant's stay empty.
func TestTenantsImportIntoTheirOwnTables(t *testing.T) {
	t.Parallel()
	s := startSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	alpha, beta := s.asTenant(ctx, t, "alpha"), s.asTenant(ctx, t, "beta")
	_, err := alpha.model.CreateAttribute(ctx, &intakev1.CreateAttributeRequest{Parent: "objects/accounts",
		Attribute: &intakev1.Attribute{AttributeId: "headcount", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER}})
	require.NoError(t, err)
	_, err = beta.model.CreateAttribute(ctx, &intakev1.CreateAttributeRequest{Parent: "objects/accounts",
		Attribute: &intakev1.Attribute{AttributeId: "headcount", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_DATE}})
	require.NoError(t, err)

	files := newFileServer(t, accountsCSV(0, 40, nil))
	job := accountsJob(files.url())
	job.Mapping.Entries = append(job.Mapping.Entries,
		&intakev1.MappingEntry{Attribute: "headcount", Source: &intakev1.MappingEntry_Column{Column: "Employees"}})
	v, err := alpha.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: job})
	require.NoError(t, err)
	require.True(t, v.GetValid(), "%v", v.GetFindings())
	created, err := alpha.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{Job: job, ValidationToken: v.GetValidationToken()})
	require.NoError(t, err)
	// In beta the same mapping does not validate: its headcount is a Date.
	vb, err := beta.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: job})
	require.NoError(t, err)
	require.False(t, vb.GetValid(), "beta's headcount is a Date, and employees are no dates")

	run, err := alpha.jobs.RunJob(ctx, &intakev1.RunJobRequest{Name: created.GetName()})
	require.NoError(t, err)
	stream, err := alpha.runs.WatchRun(ctx, &intakev1.WatchRunRequest{Name: run.GetName()})
	require.NoError(t, err)
	var last *intakev1.Run
	for {
		r, err := stream.Recv()
		if err != nil {
			break
		}
		last = r.GetRun()
	}
	require.NotNil(t, last)
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, last.GetState(), "%s", last.GetMessage())
	require.Equal(t, int64(40), last.GetCounters().GetRowsCreated())

	require.Equal(t, int64(40), count(ctx, t, s.db, `SELECT count(*) FROM objects_alpha.accounts`))
	require.Equal(t, int64(1), count(ctx, t, s.db, `SELECT count(*) FROM objects_alpha.accounts WHERE account_id = 'A-000007' AND headcount = 7`))
	require.Zero(t, count(ctx, t, s.db, `SELECT count(*) FROM objects_beta.accounts`), "beta's table stays empty")
	require.Zero(t, count(ctx, t, s.db, `SELECT count(*) FROM objects.accounts`), "the default tenant's table stays empty")

	// To beta, alpha's run does not exist.
	_, err = beta.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: run.GetName()})
	require.Error(t, err)
	require.Contains(t, err.Error(), "NotFound")
}
