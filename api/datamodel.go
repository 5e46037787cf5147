package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/intakehq/intake/api/internal/jobspec"
	"github.com/intakehq/intake/api/internal/store"
	"github.com/intakehq/intake/pkg/objects"
	"github.com/intakehq/intake/pkg/pipeline"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// DDLLockTimeout bounds how long adding or dropping an attribute's column
// waits for its object table (a run committing into it holds it). Past it
// the call fails with Unavailable and changes nothing.
const DDLLockTimeout = 5 * time.Second

// Limits of an attribute's texts.
const (
	maxAttributeDisplayName = 200
	maxAttributeDescription = 2000
)

// RunRequestPublishedHeader is the response header of
// StageService.CreateScheduledRun that says the API has published the
// run's RunRequest (with the run's model) itself — or that the run is past
// QUEUED and needs none — so the scheduler must not publish one. A
// scheduler that does not see it publishes as before. See docs/pipeline.md.
const RunRequestPublishedHeader = "intake-run-request-published"

type dataModelService struct {
	intakev1.UnimplementedDataModelServiceServer
	s *Server
}

// objectModel is the data model of an object now, in the tenant of ctx
// (the default tenant when ctx has none): its system attributes, the
// tenant's custom attributes, and the tenant's table.
func (s *Server) objectModel(ctx context.Context, t intakev1.ObjectType) (*intakev1.DataObject, error) {
	obj, err := objects.Lookup(t)
	if err != nil {
		return nil, err
	}
	custom, err := s.store.CustomAttributes(ctx, obj.Name)
	if err != nil {
		return nil, err
	}
	schema, err := s.store.ObjectSchema(ctx)
	if err != nil {
		return nil, fmt.Errorf("the object tables of tenant %s: %w", store.TenantName(store.TenantOf(ctx)), err)
	}
	m := obj.Model(custom...)
	m.Table = obj.TableNameIn(schema)
	return m, nil
}

// runModel is the data model a run loads into: the one stored with the run
// when its request was first published, or the job's object's model now
// (then stored with the run).
func (s *Server) runModel(ctx context.Context, run string, object intakev1.ObjectType) (*intakev1.DataObject, error) {
	jobID, runID, err := parseRunName("run", run)
	if err != nil {
		return nil, err
	}
	if store.TenantOf(ctx) == "" { // a worker's call: the model is the run's tenant's
		tenant, err := s.store.RunTenant(ctx, jobID, runID)
		if err != nil {
			return nil, err
		}
		ctx = store.WithTenant(ctx, tenant)
	}
	return s.store.RunModel(ctx, jobID, runID, func(ctx context.Context) (*intakev1.DataObject, error) {
		return s.objectModel(ctx, object)
	})
}

// publishScheduledRun publishes the RunRequest of a scheduled run, with its
// model, while the run is QUEUED, and tells the scheduler so through the
// RunRequestPublishedHeader. When the publish fails the run stays QUEUED
// (the scheduler retries the call; the requeue sweeper publishes it later)
// and the error is Unavailable.
func (s *Server) publishScheduledRun(ctx context.Context, run *intakev1.Run, job *intakev1.Job) error {
	if run.GetState() == intakev1.RunState_RUN_STATE_QUEUED {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
		defer cancel()
		model, err := s.runModel(pctx, run.GetName(), job.GetObject())
		if err == nil {
			err = pipeline.Publish(pctx, s.js, pipeline.SubjectRunRequest, run.GetName(), &pipelinev1.RunRequest{
				Run: run.GetName(), Job: job, Trigger: intakev1.Trigger_TRIGGER_SCHEDULE, CreateTime: run.GetCreateTime(), Model: model,
				Tenant: s.runTenant(pctx, run.GetName()),
			})
		}
		if err != nil {
			s.log.ErrorContext(ctx, "scheduled run request not published", "job", job.GetName(), "run", run.GetName(), "error", err)
			return status.Errorf(codes.Unavailable, "run %s is created but its run request could not be published (it stays queued: call again, or the requeue sweeper publishes it): %v", run.GetName(), err)
		}
	}
	if err := grpc.SetHeader(ctx, metadata.Pairs(RunRequestPublishedHeader, "true")); err != nil {
		s.log.WarnContext(ctx, "could not set the run-request-published header", "run", run.GetName(), "error", err)
	}
	return nil
}

// parseObjectName returns the object of "objects/{object}".
func parseObjectName(field, name string) (*objects.Object, error) {
	id, ok := strings.CutPrefix(name, "objects/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return nil, badField(field, "%q is not an object name (objects/{object})", name)
	}
	obj, err := objects.LookupName(id)
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "object %s not found (one of %s)", name, strings.Join(objects.Names(), ", "))
	}
	return obj, nil
}

// parseAttributeName returns the object and attribute id of
// "objects/{object}/attributes/{attribute}".
func parseAttributeName(field, name string) (*objects.Object, string, error) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != "objects" || parts[2] != "attributes" || parts[1] == "" || parts[3] == "" {
		return nil, "", badField(field, "%q is not an attribute name (objects/{object}/attributes/{attribute})", name)
	}
	obj, err := parseObjectName(field, "objects/"+parts[1])
	if err != nil {
		return nil, "", err
	}
	return obj, parts[3], nil
}

func (d *dataModelService) ListObjects(ctx context.Context, _ *intakev1.ListObjectsRequest) (*intakev1.ListObjectsResponse, error) {
	custom, err := d.s.store.CustomAttributes(ctx, "")
	if err != nil {
		return nil, d.s.storeError(ctx, "list", "custom attributes", err)
	}
	byObject := map[string][]*intakev1.Attribute{}
	for _, a := range custom {
		obj, _, _ := strings.Cut(strings.TrimPrefix(a.GetName(), "objects/"), "/")
		byObject[obj] = append(byObject[obj], a)
	}
	schema, err := d.s.store.ObjectSchema(ctx)
	if err != nil {
		return nil, d.s.storeError(ctx, "list", "the object tables of the tenant", err)
	}
	resp := &intakev1.ListObjectsResponse{}
	for _, o := range objects.All() {
		m := o.Model(byObject[o.Name]...)
		m.Table = o.TableNameIn(schema) // the tenant's (tenants.go)
		resp.Objects = append(resp.Objects, m)
	}
	return resp, nil
}

func (d *dataModelService) ListAttributes(ctx context.Context, req *intakev1.ListAttributesRequest) (*intakev1.ListAttributesResponse, error) {
	obj, err := parseObjectName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	m, err := d.s.objectModel(ctx, obj.Type)
	if err != nil {
		return nil, d.s.storeError(ctx, "list", "the attributes of "+obj.ResourceName(), err)
	}
	return &intakev1.ListAttributesResponse{Attributes: m.GetAttributes()}, nil
}

// attributeSpec is what CreateAttribute and a job's new_attributes ask for.
type attributeSpec struct {
	id, displayName, references, description string
	typ                                      intakev1.AttributeType
}

// checkAttribute checks a custom attribute to be created for obj, adding
// violations under field ("attribute", "job.mapping.new_attributes[2]").
// It does not look at existing attributes.
func checkAttribute(vs *jobspec.Violations, field string, obj *objects.Object, a attributeSpec) {
	add := func(f, format string, args ...any) {
		*vs = append(*vs, jobspec.Violation{Field: field + "." + f, Description: fmt.Sprintf(format, args...)})
	}
	if err := objects.CheckAttributeID(a.id); err != nil {
		add("attribute_id", "%v", err)
	}
	var names []string
	for _, t := range objects.CustomTypes {
		names = append(names, strings.TrimPrefix(t.String(), "ATTRIBUTE_TYPE_"))
	}
	switch {
	case a.typ == intakev1.AttributeType_ATTRIBUTE_TYPE_UNSPECIFIED:
		add("type", "required (one of %s)", strings.Join(names, ", "))
	case !slices.Contains(objects.CustomTypes, a.typ):
		add("type", "%d is not an attribute type (one of %s)", int32(a.typ), strings.Join(names, ", "))
	}
	switch {
	case a.typ == intakev1.AttributeType_ATTRIBUTE_TYPE_FOREIGN_KEY && a.references == "":
		add("references", "required for a foreign key: the object it refers to (one of %s)", strings.Join(objects.Names(), ", "))
	case a.typ == intakev1.AttributeType_ATTRIBUTE_TYPE_FOREIGN_KEY:
		if _, err := objects.LookupName(a.references); err != nil || !strings.HasPrefix(a.references, "objects/") {
			add("references", "%q is not an object (one of %s)", a.references, strings.Join(objects.Names(), ", "))
		}
	case a.references != "":
		add("references", "only a foreign key refers to an object; a %s attribute does not", objects.TypeName(a.typ))
	}
	if utf8.RuneCountInString(a.displayName) > maxAttributeDisplayName {
		add("display_name", "longer than %d characters", maxAttributeDisplayName)
	}
	if utf8.RuneCountInString(a.description) > maxAttributeDescription {
		add("description", "longer than %d characters", maxAttributeDescription)
	}
}

// clash says how an attribute id is taken already: "" when it is free.
func clash(m *intakev1.DataObject, id string) *intakev1.Attribute {
	for _, a := range m.GetAttributes() {
		if a.GetAttributeId() == id {
			return a
		}
	}
	return nil
}

// createAttribute creates a checked custom attribute.
func (s *Server) createAttribute(ctx context.Context, obj *objects.Object, a attributeSpec) (*intakev1.Attribute, error) {
	if a.displayName == "" {
		a.displayName = objects.DisplayName(a.id)
	}
	created, err := s.store.CreateAttribute(ctx, obj, &intakev1.Attribute{
		AttributeId: a.id, DisplayName: a.displayName, Type: a.typ, References: a.references, Description: a.description,
	}, DDLLockTimeout)
	if err != nil {
		return nil, s.attributeError(ctx, "create", obj.AttributeName(a.id), err)
	}
	s.log.InfoContext(ctx, "attribute created", "object", obj.Name, "attribute", a.id, "type", a.typ.String())
	return obj.Model(created).GetAttributes()[len(obj.Attributes)], nil
}

// attributeError is storeError for attribute changes.
func (s *Server) attributeError(ctx context.Context, op, name string, err error) error {
	var inUse *store.InUseError
	switch {
	case errors.Is(err, store.ErrBusy):
		return status.Errorf(codes.Unavailable, "could not %s %s: its object table stayed busy for %v (a run is committing into it, or a long query holds it); nothing changed, try again: %v",
			op, name, DDLLockTimeout, err)
	case errors.As(err, &inUse):
		var jobs []string
		pf := &errdetails.PreconditionFailure{}
		for i, j := range inUse.Jobs {
			jobs = append(jobs, fmt.Sprintf("%s (%q)", j, inUse.DisplayNames[i]))
			pf.Violations = append(pf.Violations, &errdetails.PreconditionFailure_Violation{
				Type: "ATTRIBUTE_IN_USE", Subject: j,
				Description: fmt.Sprintf("the recurring job %q maps %s", inUse.DisplayNames[i], name),
			})
		}
		st := status.New(codes.FailedPrecondition, fmt.Sprintf("%s is mapped by recurring jobs: %s; remove it from their mappings or disable them first",
			name, strings.Join(jobs, ", ")))
		if d, err := st.WithDetails(pf); err == nil {
			st = d
		}
		return st.Err()
	}
	return s.storeError(ctx, op, "attribute "+name, err)
}

func (d *dataModelService) CreateAttribute(ctx context.Context, req *intakev1.CreateAttributeRequest) (*intakev1.Attribute, error) {
	s := d.s
	obj, err := parseObjectName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	in := req.GetAttribute()
	if in == nil {
		return nil, badField("attribute", "required")
	}
	a := attributeSpec{id: in.GetAttributeId(), displayName: strings.TrimSpace(in.GetDisplayName()), typ: in.GetType(),
		references: in.GetReferences(), description: in.GetDescription()}
	var vs jobspec.Violations
	if n := in.GetName(); n != "" && n != obj.AttributeName(a.id) {
		vs = append(vs, jobspec.Violation{Field: "attribute.name", Description: fmt.Sprintf("%q does not match the parent and attribute_id (%s); leave it empty", n, obj.AttributeName(a.id))})
	}
	if in.GetSystem() {
		vs = append(vs, jobspec.Violation{Field: "attribute.system", Description: "only the data model's own attributes are system attributes"})
	}
	checkAttribute(&vs, "attribute", obj, a)
	if len(vs) > 0 {
		return nil, invalid("invalid attribute", vs)
	}
	if _, sys := obj.Attribute(a.id); sys {
		return nil, status.Errorf(codes.AlreadyExists, "%s already exists: it is a system attribute of %s", obj.AttributeName(a.id), obj.ResourceName())
	}
	return s.createAttribute(ctx, obj, a)
}

func (d *dataModelService) DeleteAttribute(ctx context.Context, req *intakev1.DeleteAttributeRequest) (*emptypb.Empty, error) {
	s := d.s
	obj, id, err := parseAttributeName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if _, sys := obj.Attribute(id); sys {
		return nil, failedPrecondition("SYSTEM_ATTRIBUTE", req.GetName(), "a system attribute cannot be deleted")
	}
	if err := s.store.DeleteAttribute(ctx, obj, id, DDLLockTimeout); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, status.Errorf(codes.NotFound, "attribute %s not found", req.GetName())
		}
		return nil, s.attributeError(ctx, "delete", req.GetName(), err)
	}
	s.log.InfoContext(ctx, "attribute deleted", "object", obj.Name, "attribute", id)
	return &emptypb.Empty{}, nil
}

// ensureNewAttributes creates the custom attributes a job's mapping
// declares (mapping.new_attributes) that do not exist yet, as
// CreateAttribute does. A declared attribute that exists already with the
// same type (and reference) is fine; one that exists with another type is an
// InvalidArgument naming the entry. Called when a job is saved, before it is
// stored, so a stored job never declares an attribute that is missing.
func (s *Server) ensureNewAttributes(ctx context.Context, job *intakev1.Job) error {
	decl := job.GetMapping().GetNewAttributes()
	if len(decl) == 0 {
		return nil
	}
	obj, err := objects.Lookup(job.GetObject())
	if err != nil {
		return badField("job.object", "%v", err)
	}
	model, err := s.objectModel(ctx, obj.Type)
	if err != nil {
		return s.storeError(ctx, "read", "the attributes of "+obj.ResourceName(), err)
	}
	var (
		vs     jobspec.Violations
		create []attributeSpec
		seen   = map[string]int{}
	)
	for i, n := range decl {
		field := fmt.Sprintf("job.mapping.new_attributes[%d]", i)
		a := attributeSpec{id: n.GetAttributeId(), displayName: strings.TrimSpace(n.GetDisplayName()), typ: n.GetType(), references: n.GetReferences()}
		before := len(vs)
		checkAttribute(&vs, field, obj, a)
		if len(vs) > before {
			continue
		}
		if j, dup := seen[a.id]; dup {
			vs = append(vs, jobspec.Violation{Field: field + ".attribute_id", Description: fmt.Sprintf("%q is declared already by new_attributes[%d]", a.id, j)})
			continue
		}
		seen[a.id] = i
		if ex := clash(model, a.id); ex != nil {
			if ex.GetType() != a.typ || (a.typ == intakev1.AttributeType_ATTRIBUTE_TYPE_FOREIGN_KEY && ex.GetReferences() != a.references) {
				kind := "custom"
				if ex.GetSystem() {
					kind = "system"
				}
				what := objects.TypeName(ex.GetType())
				if ex.GetReferences() != "" {
					what += " to " + ex.GetReferences()
				}
				vs = append(vs, jobspec.Violation{Field: field + ".type", Description: fmt.Sprintf(
					"%q exists already as a %s %s attribute of %s; declare it as %s or pick another id",
					a.id, kind, what, obj.ResourceName(), what)})
			}
			continue
		}
		create = append(create, a)
	}
	if len(vs) > 0 {
		return invalid("invalid job", vs)
	}
	for _, a := range create {
		_, err := s.createAttribute(ctx, obj, a)
		if status.Code(err) == codes.AlreadyExists {
			// Created meanwhile (another save of the same mapping): check
			// it is the same.
			ex, gerr := s.store.CustomAttribute(ctx, obj.Name, a.id)
			if gerr == nil && ex.GetType() == a.typ && ex.GetReferences() == a.references {
				continue
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}
