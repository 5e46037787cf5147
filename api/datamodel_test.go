package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/api"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

const (
	aText   = intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT
	aNumber = intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER
	aFK     = intakev1.AttributeType_ATTRIBUTE_TYPE_FOREIGN_KEY
)

func (b *testBundle) dataModel() intakev1.DataModelServiceClient {
	return intakev1.NewDataModelServiceClient(b.conn)
}

// columnType is the PostgreSQL type of a column of an object table, "" when
// there is no such column.
func columnType(t *testing.T, b *testBundle, table, column string) string {
	t.Helper()
	var typ string
	err := pgPool(t, b.dsn).QueryRow(context.Background(), `SELECT coalesce(max(data_type), '') FROM information_schema.columns
		WHERE table_schema = 'objects' AND table_name = $1 AND column_name = $2`, table, column).Scan(&typ)
	require.NoError(t, err)
	return typ
}

func attributeIDs(attrs []*intakev1.Attribute) []string {
	var out []string
	for _, a := range attrs {
		out = append(out, a.GetAttributeId())
	}
	return out
}

func TestListObjectsShowsEveryObject(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	dm := b.dataModel()
	resp, err := dm.ListObjects(ctx, &intakev1.ListObjectsRequest{})
	require.NoError(t, err)
	var names []string
	for _, o := range resp.GetObjects() {
		names = append(names, o.GetName())
		require.Equal(t, "objects."+o.GetName()[len("objects/"):], o.GetTable())
		require.NotEmpty(t, o.GetDisplayName())
		for i, k := range o.GetKeys() {
			a := o.GetAttributes()[i]
			require.Equal(t, k, a.GetAttributeId(), "%s: keys first", o.GetName())
			require.True(t, a.GetKey())
			require.True(t, a.GetSystem())
		}
	}
	require.Equal(t, []string{"objects/accounts", "objects/users", "objects/usage", "objects/collections", "objects/usage_aggregations",
		"objects/team_users", "objects/account_assignments", "objects/tasks", "objects/touchpoints", "objects/account_foreign_keys"}, names)
	usage := resp.GetObjects()[2]
	require.True(t, usage.GetAppendOnly())
	require.Equal(t, []string{"account_id", "user_id", "activity", "module", "timestamp"}, usage.GetKeys())
	touchpoints := resp.GetObjects()[8]
	require.Equal(t, []string{"subject", "content"}, touchpoints.GetRequiredAny())

	tasks, err := dm.ListAttributes(ctx, &intakev1.ListAttributesRequest{Parent: "objects/tasks"})
	require.NoError(t, err)
	var assignee *intakev1.Attribute
	for _, a := range tasks.GetAttributes() {
		if a.GetAttributeId() == "assignee_email" {
			assignee = a
		}
	}
	require.NotNil(t, assignee)
	require.Equal(t, "objects/tasks/attributes/assignee_email", assignee.GetName())
	require.Equal(t, aFK, assignee.GetType())
	require.Equal(t, "objects/team_users", assignee.GetReferences())

	_, err = dm.ListAttributes(ctx, &intakev1.ListAttributesRequest{Parent: "objects/widgets"})
	requireCode(t, err, codes.NotFound, "object objects/widgets not found (one of objects/accounts,")
	_, err = dm.ListAttributes(ctx, &intakev1.ListAttributesRequest{Parent: "tasks"})
	st := requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st)["parent"], `"tasks" is not an object name (objects/{object})`)
}

func TestCreateAttributeAddsATypedColumn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	dm := b.dataModel()

	before := time.Now().Add(-time.Second)
	score, err := dm.CreateAttribute(ctx, &intakev1.CreateAttributeRequest{Parent: "objects/accounts", Attribute: &intakev1.Attribute{
		AttributeId: "health_score", DisplayName: "Health score", Type: aNumber, Description: "0-100, from the CS tool",
	}})
	require.NoError(t, err)
	require.Equal(t, "objects/accounts/attributes/health_score", score.GetName())
	require.Equal(t, "Health score", score.GetDisplayName())
	require.Equal(t, aNumber, score.GetType())
	require.Equal(t, "0-100, from the CS tool", score.GetDescription())
	require.False(t, score.GetSystem())
	require.False(t, score.GetKey())
	require.True(t, score.GetCreateTime().AsTime().After(before))
	require.Equal(t, "numeric", columnType(t, b, "accounts", "health_score"))

	crm, err := dm.CreateAttribute(ctx, &intakev1.CreateAttributeRequest{Parent: "objects/tasks", Attribute: &intakev1.Attribute{
		AttributeId: "crm_account", Type: aFK, References: "objects/accounts",
	}})
	require.NoError(t, err)
	require.Equal(t, "CRM account", crm.GetDisplayName(), "derived from the id")
	require.Equal(t, "objects/accounts", crm.GetReferences())
	require.Equal(t, "text", columnType(t, b, "tasks", "crm_account"), "a foreign key is stored as text")

	// The column is real: an analyst can write and query it.
	_, err = pgPool(t, b.dsn).Exec(ctx, `INSERT INTO objects.accounts (account_id, health_score) VALUES ('a1', 87.5)`)
	require.NoError(t, err)

	// Listed after the system attributes, everywhere.
	attrs, err := dm.ListAttributes(ctx, &intakev1.ListAttributesRequest{Parent: "objects/accounts"})
	require.NoError(t, err)
	last := attrs.GetAttributes()[len(attrs.GetAttributes())-1]
	require.True(t, proto.Equal(score, last), "%v", last)
	objs, err := dm.ListObjects(ctx, &intakev1.ListObjectsRequest{})
	require.NoError(t, err)
	require.Contains(t, attributeIDs(objs.GetObjects()[0].GetAttributes()), "health_score")
	require.Contains(t, attributeIDs(objs.GetObjects()[7].GetAttributes()), "crm_account")
	require.NotContains(t, attributeIDs(objs.GetObjects()[1].GetAttributes()), "health_score", "only on its object")

	// Taken ids.
	_, err = dm.CreateAttribute(ctx, &intakev1.CreateAttributeRequest{Parent: "objects/accounts", Attribute: &intakev1.Attribute{AttributeId: "health_score", Type: aText}})
	requireCode(t, err, codes.AlreadyExists, "objects/accounts/attributes/health_score already exists")
	_, err = dm.CreateAttribute(ctx, &intakev1.CreateAttributeRequest{Parent: "objects/accounts", Attribute: &intakev1.Attribute{AttributeId: "name", Type: aText}})
	requireCode(t, err, codes.AlreadyExists, "objects/accounts/attributes/name already exists: it is a system attribute of objects/accounts")

	// Bad requests say what and where.
	for name, tc := range map[string]struct {
		parent string
		attr   *intakev1.Attribute
		field  string
		want   string
	}{
		"bad id":         {"objects/accounts", &intakev1.Attribute{AttributeId: "Health Score", Type: aNumber}, "attribute.attribute_id", `"Health Score" is not an attribute id`},
		"no id":          {"objects/accounts", &intakev1.Attribute{Type: aNumber}, "attribute.attribute_id", "required"},
		"bookkeeping":    {"objects/accounts", &intakev1.Attribute{AttributeId: "_run", Type: aText}, "attribute.attribute_id", `"_run" is not an attribute id`},
		"system column":  {"objects/accounts", &intakev1.Attribute{AttributeId: "xmin", Type: aText}, "attribute.attribute_id", `"xmin" is reserved`},
		"too long":       {"objects/accounts", &intakev1.Attribute{AttributeId: "a123456789012345678901234567890123456789012345678901234567890123", Type: aText}, "attribute.attribute_id", "longer than 63 characters"},
		"no type":        {"objects/accounts", &intakev1.Attribute{AttributeId: "tier"}, "attribute.type", "required (one of TEXT, NUMBER, CURRENCY, DATE, TIMESTAMP, BOOLEAN, FOREIGN_KEY)"},
		"unknown type":   {"objects/accounts", &intakev1.Attribute{AttributeId: "tier", Type: 42}, "attribute.type", "42 is not an attribute type"},
		"fk without ref": {"objects/accounts", &intakev1.Attribute{AttributeId: "owner", Type: aFK}, "attribute.references", "required for a foreign key"},
		"fk unknown ref": {"objects/accounts", &intakev1.Attribute{AttributeId: "owner", Type: aFK, References: "objects/people"}, "attribute.references", `"objects/people" is not an object`},
		"ref on text":    {"objects/accounts", &intakev1.Attribute{AttributeId: "owner", Type: aText, References: "objects/team_users"}, "attribute.references", "only a foreign key refers to an object; a text attribute does not"},
		"system flag":    {"objects/accounts", &intakev1.Attribute{AttributeId: "tier", Type: aText, System: true}, "attribute.system", "only the data model's own attributes"},
		"other name":     {"objects/accounts", &intakev1.Attribute{Name: "objects/users/attributes/tier", AttributeId: "tier", Type: aText}, "attribute.name", "does not match the parent"},
		"no attribute":   {"objects/accounts", nil, "attribute", "required"},
		"bad parent":     {"accounts", &intakev1.Attribute{AttributeId: "tier", Type: aText}, "parent", "is not an object name"},
	} {
		_, err := dm.CreateAttribute(ctx, &intakev1.CreateAttributeRequest{Parent: tc.parent, Attribute: tc.attr})
		st := requireCode(t, err, codes.InvalidArgument)
		require.Contains(t, fieldViolations(t, st)[tc.field], tc.want, name)
	}
	_, err = dm.CreateAttribute(ctx, &intakev1.CreateAttributeRequest{Parent: "objects/widgets", Attribute: &intakev1.Attribute{AttributeId: "tier", Type: aText}})
	requireCode(t, err, codes.NotFound, "object objects/widgets not found")
	require.Equal(t, "", columnType(t, b, "accounts", "tier"), "nothing made by a refused call")
}

func TestCreateAttributeGivesUpOnABusyTable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	// A run committing into accounts holds its table.
	tx, err := pgPool(t, b.dsn).Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `LOCK TABLE objects.accounts IN ROW EXCLUSIVE MODE`)
	require.NoError(t, err)

	start := time.Now()
	_, err = b.dataModel().CreateAttribute(ctx, &intakev1.CreateAttributeRequest{Parent: "objects/accounts",
		Attribute: &intakev1.Attribute{AttributeId: "tier", Type: aText}})
	requireCode(t, err, codes.Unavailable, "could not create objects/accounts/attributes/tier: its object table stayed busy for 5s",
		"nothing changed, try again")
	require.Less(t, time.Since(start), api.DDLLockTimeout+5*time.Second)
	require.Equal(t, "", columnType(t, b, "accounts", "tier"))
	attrs, err := b.dataModel().ListAttributes(ctx, &intakev1.ListAttributesRequest{Parent: "objects/accounts"})
	require.NoError(t, err)
	require.NotContains(t, attributeIDs(attrs.GetAttributes()), "tier")

	// Once the commit is over, the same call succeeds.
	require.NoError(t, tx.Rollback(ctx))
	_, err = b.dataModel().CreateAttribute(ctx, &intakev1.CreateAttributeRequest{Parent: "objects/accounts",
		Attribute: &intakev1.Attribute{AttributeId: "tier", Type: aText}})
	require.NoError(t, err)
	require.Equal(t, "text", columnType(t, b, "accounts", "tier"))
}

// scoredJob is an enabled accounts job that declares and maps the custom
// attribute health_score.
func (b *testBundle) scoredJob(name string) *intakev1.Job {
	job := accountsJobAt(name, b.files.setFile("/scored.csv", "Account ID,Name,Health\nA-1,Acme,87\nA-2,Globex,12.5\n"))
	job.Mapping.Entries = append(job.Mapping.Entries,
		&intakev1.MappingEntry{Attribute: "health_score", Source: &intakev1.MappingEntry_Column{Column: "Health"}})
	job.Mapping.NewAttributes = []*intakev1.NewAttribute{{AttributeId: "health_score", DisplayName: "Health score", Type: aNumber}}
	return job
}

func TestSavingAJobCreatesItsNewAttributes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	_, err := b.create(t, "scored", b.scoredJob("Scored accounts"))
	require.NoError(t, err)
	require.Equal(t, "numeric", columnType(t, b, "accounts", "health_score"))
	attrs, err := b.dataModel().ListAttributes(ctx, &intakev1.ListAttributesRequest{Parent: "objects/accounts"})
	require.NoError(t, err)
	last := attrs.GetAttributes()[len(attrs.GetAttributes())-1]
	require.Equal(t, "health_score", last.GetAttributeId())
	require.Equal(t, "Health score", last.GetDisplayName())
	require.Equal(t, aNumber, last.GetType())

	// A second job declaring the same attribute alike is fine.
	_, err = b.create(t, "scored-too", b.scoredJob("Scored again"))
	require.NoError(t, err)

	// Declaring it with another type is refused, naming the entry; so is an
	// attribute that is no attribute id, or a foreign key to nowhere.
	for name, tc := range map[string]struct {
		decl  *intakev1.NewAttribute
		field string
		want  string
	}{
		"type":        {&intakev1.NewAttribute{AttributeId: "health_score", Type: aText}, "job.mapping.new_attributes", "health_score"},
		"system type": {&intakev1.NewAttribute{AttributeId: "name", Type: aNumber}, "job.mapping.new_attributes", "name"},
		"fk": {&intakev1.NewAttribute{AttributeId: "owner", Type: aFK, References: "objects/people"},
			"job.mapping.new_attributes[0].references", `"objects/people" is not an object`},
	} {
		job := b.accountsJob("bad " + name)
		job.Enabled = false
		job.Mapping.NewAttributes = []*intakev1.NewAttribute{tc.decl}
		_, err := b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{Job: job})
		st := requireCode(t, err, codes.InvalidArgument)
		found := false
		for field, desc := range fieldViolations(t, st) {
			if len(field) >= len(tc.field) && field[:len(tc.field)] == tc.field {
				require.Contains(t, desc, tc.want, name)
				found = true
			}
		}
		require.True(t, found, "%s: no violation at %s in %v", name, tc.field, st.Message())
	}
	require.Equal(t, "numeric", columnType(t, b, "accounts", "health_score"), "unchanged")
	require.Equal(t, "", columnType(t, b, "accounts", "owner"))

	// An update that declares a new attribute creates it too.
	job, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/scored"})
	require.NoError(t, err)
	job.Enabled = false
	job.Mapping.NewAttributes = append(job.Mapping.NewAttributes, &intakev1.NewAttribute{AttributeId: "csm", Type: aFK, References: "objects/team_users"})
	_, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: job, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"mapping", "enabled"}}})
	require.NoError(t, err)
	require.Equal(t, "text", columnType(t, b, "accounts", "csm"))
}

func TestDeleteAttributeIsRefusedWhileARecurringJobMapsIt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	dm := b.dataModel()

	_, err := dm.DeleteAttribute(ctx, &intakev1.DeleteAttributeRequest{Name: "objects/accounts/attributes/name"})
	requireCode(t, err, codes.FailedPrecondition, "objects/accounts/attributes/name: a system attribute cannot be deleted")
	_, err = dm.DeleteAttribute(ctx, &intakev1.DeleteAttributeRequest{Name: "objects/accounts/attributes/nope"})
	requireCode(t, err, codes.NotFound, "attribute objects/accounts/attributes/nope not found")
	_, err = dm.DeleteAttribute(ctx, &intakev1.DeleteAttributeRequest{Name: "objects/accounts/nope"})
	requireCode(t, err, codes.InvalidArgument, "is not an attribute name (objects/{object}/attributes/{attribute})")

	_, err = b.create(t, "scored", b.scoredJob("Scored accounts"))
	require.NoError(t, err)
	// A job that only declares it counts too.
	declares := b.accountsJob("Declares health")
	declares.Mapping.NewAttributes = []*intakev1.NewAttribute{{AttributeId: "health_score", Type: aNumber}}
	_, err = b.create(t, "declares", declares)
	require.NoError(t, err)
	// A disabled job does not.
	oneOff := b.scoredJob("One-off upload")
	oneOff.Enabled = false
	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "one-off", Job: oneOff})
	require.NoError(t, err)

	_, err = dm.DeleteAttribute(ctx, &intakev1.DeleteAttributeRequest{Name: "objects/accounts/attributes/health_score"})
	st := requireCode(t, err, codes.FailedPrecondition,
		`objects/accounts/attributes/health_score is mapped by recurring jobs: jobs/declares ("Declares health"), jobs/scored ("Scored accounts")`)
	var subjects []string
	for _, d := range st.Details() {
		if pf, ok := d.(*errdetails.PreconditionFailure); ok {
			for _, v := range pf.GetViolations() {
				require.Equal(t, "ATTRIBUTE_IN_USE", v.GetType())
				subjects = append(subjects, v.GetSubject())
			}
		}
	}
	require.Equal(t, []string{"jobs/declares", "jobs/scored"}, subjects)
	require.Equal(t, "numeric", columnType(t, b, "accounts", "health_score"), "nothing dropped")

	// Once no recurring job maps it, it goes, column and all.
	for _, j := range []string{"jobs/scored", "jobs/declares"} {
		_, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: &intakev1.Job{Name: j, Enabled: false},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"enabled"}}})
		require.NoError(t, err)
	}
	_, err = dm.DeleteAttribute(ctx, &intakev1.DeleteAttributeRequest{Name: "objects/accounts/attributes/health_score"})
	require.NoError(t, err)
	require.Equal(t, "", columnType(t, b, "accounts", "health_score"))
	attrs, err := dm.ListAttributes(ctx, &intakev1.ListAttributesRequest{Parent: "objects/accounts"})
	require.NoError(t, err)
	require.NotContains(t, attributeIDs(attrs.GetAttributes()), "health_score")
	_, err = dm.DeleteAttribute(ctx, &intakev1.DeleteAttributeRequest{Name: "objects/accounts/attributes/health_score"})
	requireCode(t, err, codes.NotFound)
}

// publishedRunRequests reads (and acks) the run requests published so far.
func publishedRunRequests(t *testing.T, b *testBundle) []*pipelinev1.RunRequest {
	t.Helper()
	cons, err := b.js.CreateOrUpdateConsumer(testCtx(t), "INTAKE_RUNS", jetstream.ConsumerConfig{Durable: "test", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	batch, err := cons.Fetch(100, jetstream.FetchMaxWait(time.Second))
	require.NoError(t, err)
	var out []*pipelinev1.RunRequest
	for m := range batch.Messages() {
		req := &pipelinev1.RunRequest{}
		require.NoError(t, proto.Unmarshal(m.Data(), req))
		out = append(out, req)
		require.NoError(t, m.Ack())
	}
	return out
}

func TestRunRequestsCarryTheRunsModel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	_, err := b.create(t, "scored", b.scoredJob("Scored accounts"))
	require.NoError(t, err)

	// Run now.
	run, err := b.jobs.RunJob(ctx, &intakev1.RunJobRequest{Name: "jobs/scored"})
	require.NoError(t, err)
	reqs := publishedRunRequests(t, b)
	require.Len(t, reqs, 1)
	m := reqs[0].GetModel()
	require.Equal(t, run.GetName(), reqs[0].GetRun())
	require.Equal(t, "objects/accounts", m.GetName())
	require.Equal(t, []string{"account_id"}, m.GetKeys())
	require.Equal(t, "objects.accounts", m.GetTable())
	ids := attributeIDs(m.GetAttributes())
	require.Equal(t, "health_score", ids[len(ids)-1], "custom attributes included")
	require.Equal(t, aNumber, m.GetAttributes()[len(ids)-1].GetType())

	// A schedule tick: the API publishes the request itself, with the
	// model, and says so to the scheduler.
	var header metadata.MD
	tick := timestamppb.New(time.Now().Truncate(time.Minute))
	resp, err := b.stage.CreateScheduledRun(ctx, &intakev1.CreateScheduledRunRequest{Job: "jobs/scored", ScheduledTime: tick}, grpc.Header(&header))
	require.NoError(t, err)
	require.True(t, resp.GetCreated())
	require.Equal(t, []string{"true"}, header.Get(api.RunRequestPublishedHeader))
	reqs = publishedRunRequests(t, b)
	require.Len(t, reqs, 1)
	require.Equal(t, resp.GetRun().GetName(), reqs[0].GetRun())
	require.Equal(t, intakev1.Trigger_TRIGGER_SCHEDULE, reqs[0].GetTrigger())
	require.True(t, proto.Equal(m, reqs[0].GetModel()), "%v", reqs[0].GetModel())

	// The model is the run's: an attribute added later is not in a
	// request published again for the same run (a retried tick).
	_, err = b.dataModel().CreateAttribute(ctx, &intakev1.CreateAttributeRequest{Parent: "objects/accounts",
		Attribute: &intakev1.Attribute{AttributeId: "tier", Type: aText}})
	require.NoError(t, err)
	header = nil
	again, err := b.stage.CreateScheduledRun(ctx, &intakev1.CreateScheduledRunRequest{Job: "jobs/scored", ScheduledTime: tick}, grpc.Header(&header))
	require.NoError(t, err)
	require.False(t, again.GetCreated())
	require.Equal(t, []string{"true"}, header.Get(api.RunRequestPublishedHeader))
	// JetStream drops the copy (same Nats-Msg-Id); the stored model stays.
	require.Empty(t, publishedRunRequests(t, b))
	var stored []byte
	require.NoError(t, pgPool(t, b.dsn).QueryRow(ctx, `SELECT model::text FROM intake.runs WHERE id = $1`,
		again.GetRun().GetName()[len("jobs/scored/runs/"):]).Scan(&stored))
	require.NotContains(t, string(stored), "tier")
	require.Contains(t, string(stored), "health_score")

	// A new run sees the new attribute.
	_, err = b.jobs.RunJob(ctx, &intakev1.RunJobRequest{Name: "jobs/scored"})
	require.NoError(t, err)
	reqs = publishedRunRequests(t, b)
	require.Len(t, reqs, 1)
	require.Contains(t, attributeIDs(reqs[0].GetModel().GetAttributes()), "tier")
}
