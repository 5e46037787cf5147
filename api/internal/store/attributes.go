package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/pkg/objects"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// ErrBusy: a change of an object table waited longer than its lock timeout
// for the table (a run was committing into it, or an analyst's long query
// held it). Nothing changed; the call can be retried.
var ErrBusy = errors.New("object table busy")

// InUseError: a custom attribute cannot be deleted while recurring jobs map
// it.
type InUseError struct {
	// Jobs are the resource names of the jobs ("jobs/{job}"), sorted.
	Jobs []string
	// DisplayNames are the jobs' display names, in the order of Jobs.
	DisplayNames []string
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("mapped by recurring jobs %v", e.Jobs)
}

const attributeColumns = `object, attribute_id, display_name, type, references_object, description, create_time`

func scanAttribute(row pgx.Row) (*intakev1.Attribute, error) {
	var (
		object string
		typ    int16
		ct     time.Time
		a      = &intakev1.Attribute{}
	)
	if err := row.Scan(&object, &a.AttributeId, &a.DisplayName, &typ, &a.References, &a.Description, &ct); err != nil {
		return nil, err
	}
	a.Type = intakev1.AttributeType(typ)
	a.Name = "objects/" + object + "/attributes/" + a.AttributeId
	a.CreateTime = timestamppb.New(ct)
	return a, nil
}

// CustomAttributes returns the custom attributes of the object with the
// given id ("accounts"), oldest first; of every object when object is "".
func (s *Store) CustomAttributes(ctx context.Context, object string) ([]*intakev1.Attribute, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+attributeColumns+` FROM intake.attributes
		WHERE ($1 = '' OR object = $1) AND tenant_id = $2 ORDER BY object, create_time, attribute_id`, object, tenantOrDefault(ctx))
	if err != nil {
		return nil, fmt.Errorf("list custom attributes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*intakev1.Attribute, error) { return scanAttribute(row) })
	if err != nil {
		return nil, fmt.Errorf("list custom attributes: %w", err)
	}
	return out, nil
}

// CustomAttribute returns one custom attribute; ErrNotFound when there is
// none.
func (s *Store) CustomAttribute(ctx context.Context, object, id string) (*intakev1.Attribute, error) {
	a, err := scanAttribute(s.pool.QueryRow(ctx, `SELECT `+attributeColumns+` FROM intake.attributes
		WHERE object = $1 AND attribute_id = $2 AND tenant_id = $3`, object, id, tenantOrDefault(ctx)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read attribute %s of %s: %w", id, object, err)
	}
	return a, nil
}

// setLockTimeout bounds how long the transaction's statements wait for a
// lock, so a DDL never queues behind a long commit (and makes every later
// reader of the table queue behind it) indefinitely.
func setLockTimeout(ctx context.Context, tx pgx.Tx, d time.Duration) error {
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", d.Milliseconds())); err != nil {
		return fmt.Errorf("set lock_timeout: %w", err)
	}
	return nil
}

// ddlError maps the errors of an attribute's DDL to the store's conditions.
func ddlError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "55P03": // lock_not_available: lock_timeout passed
			return fmt.Errorf("%w: %s", ErrBusy, pgErr.Message)
		case "23505", "42701": // unique_violation, duplicate_column
			return ErrAlreadyExists
		}
	}
	return err
}

// CreateAttribute adds the custom attribute a (attribute_id, display_name,
// type, references, description set) to the object: in one transaction a
// row of intake.attributes and a column of the object's table, of the
// attribute type's PostgreSQL type. ADD COLUMN without a default changes
// only the catalog, so it is instant whatever the table's size; it still
// needs a moment's exclusive lock of the table, waited for at most
// lockTimeout (ErrBusy). ErrAlreadyExists when the attribute or the column
// exists.
func (s *Store) CreateAttribute(ctx context.Context, obj *objects.Object, a *intakev1.Attribute, lockTimeout time.Duration) (*intakev1.Attribute, error) {
	var out *intakev1.Attribute
	tenant := tenantOrDefault(ctx)
	schema, err := s.objectSchema(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("create attribute %s of %s: %w", a.GetAttributeId(), obj.Name, err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := setLockTimeout(ctx, tx, lockTimeout); err != nil {
			return err
		}
		row := tx.QueryRow(ctx, `INSERT INTO intake.attributes (object, attribute_id, display_name, type, references_object, description, create_time, tenant_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+attributeColumns,
			obj.Name, a.GetAttributeId(), a.GetDisplayName(), int16(a.GetType()), a.GetReferences(), a.GetDescription(), s.now(), tenant)
		var err error
		if out, err = scanAttribute(row); err != nil {
			return ddlError(err)
		}
		ddl := "ALTER TABLE " + obj.TableIn(schema) + " ADD COLUMN " + pgx.Identifier{a.GetAttributeId()}.Sanitize() + " " + objects.PostgresType(a.GetType())
		if _, err := tx.Exec(ctx, ddl); err != nil {
			return ddlError(err)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrAlreadyExists) || errors.Is(err, ErrBusy) {
			return nil, err
		}
		return nil, fmt.Errorf("create attribute %s of %s: %w", a.GetAttributeId(), obj.Name, err)
	}
	return out, nil
}

// DeleteAttribute removes a custom attribute: its column (with its data)
// and its row, in one transaction, unless an enabled job with a schedule
// maps it (an *InUseError naming them). Job saves wait while it checks (a
// SHARE lock on intake.jobs), so no recurring job can start mapping the
// attribute between the check and the drop. ErrNotFound when there is no
// such custom attribute; ErrBusy when the table's lock was not had within
// lockTimeout.
func (s *Store) DeleteAttribute(ctx context.Context, obj *objects.Object, id string, lockTimeout time.Duration) error {
	tenant := tenantOrDefault(ctx)
	schema, err := s.objectSchema(ctx, tenant)
	if err != nil {
		return fmt.Errorf("delete attribute %s of %s: %w", id, obj.Name, err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := setLockTimeout(ctx, tx, lockTimeout); err != nil {
			return err
		}
		var found bool
		err := tx.QueryRow(ctx, `SELECT true FROM intake.attributes WHERE object = $1 AND attribute_id = $2 AND tenant_id = $3 FOR UPDATE`,
			obj.Name, id, tenant).Scan(&found)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return ddlError(err)
		}
		if _, err := tx.Exec(ctx, `LOCK TABLE intake.jobs IN SHARE MODE`); err != nil {
			return ddlError(err)
		}
		inUse, err := recurringJobsUsing(ctx, tx, tenant, obj.Type, id)
		if err != nil {
			return err
		}
		if len(inUse.Jobs) > 0 {
			return inUse
		}
		if _, err := tx.Exec(ctx, "ALTER TABLE "+obj.TableIn(schema)+" DROP COLUMN IF EXISTS "+pgx.Identifier{id}.Sanitize()); err != nil {
			return ddlError(err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM intake.attributes WHERE object = $1 AND attribute_id = $2 AND tenant_id = $3`, obj.Name, id, tenant); err != nil {
			return err
		}
		return nil
	})
	var inUse *InUseError
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrBusy) || errors.As(err, &inUse) {
		return err
	}
	return fmt.Errorf("delete attribute %s of %s: %w", id, obj.Name, err)
}

// recurringJobsUsing finds the enabled jobs of a tenant with a schedule
// whose mapping fills the attribute (an entry) or declares it
// (new_attributes).
func recurringJobsUsing(ctx context.Context, q querier, tenant string, object intakev1.ObjectType, id string) (*InUseError, error) {
	rows, err := q.Query(ctx, `SELECT id, spec FROM intake.jobs WHERE enabled AND tenant_id = $1 ORDER BY id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("find the jobs that map the attribute: %w", err)
	}
	type jobRow struct {
		id   string
		spec []byte
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (jobRow, error) {
		var j jobRow
		return j, row.Scan(&j.id, &j.spec)
	})
	if err != nil {
		return nil, fmt.Errorf("find the jobs that map the attribute: %w", err)
	}
	out := &InUseError{}
	for _, j := range list {
		job := &intakev1.Job{}
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(j.spec, job); err != nil {
			return nil, fmt.Errorf("decode job %s: %w", j.id, err)
		}
		if job.GetObject() != object || job.GetSchedule().GetCadence() == nil {
			continue
		}
		maps := slices.ContainsFunc(job.GetMapping().GetEntries(), func(e *intakev1.MappingEntry) bool { return e.GetAttribute() == id }) ||
			slices.ContainsFunc(job.GetMapping().GetNewAttributes(), func(n *intakev1.NewAttribute) bool { return n.GetAttributeId() == id })
		if maps {
			out.Jobs = append(out.Jobs, JobName(j.id))
			out.DisplayNames = append(out.DisplayNames, job.GetDisplayName())
		}
	}
	return out, nil
}

// RunModel returns the data model stored with a run, or, when it has none
// yet, stores resolve's and returns it. The first model stored wins, so
// every publish of a run's request carries the same model.
func (s *Store) RunModel(ctx context.Context, jobID, runID string, resolve func(context.Context) (*intakev1.DataObject, error)) (*intakev1.DataObject, error) {
	read := func() (*intakev1.DataObject, error) {
		var raw []byte
		if err := runField(ctx, s.pool, jobID, runID, "model", "model", &raw); err != nil {
			return nil, err
		}
		if raw == nil {
			return nil, nil
		}
		m := &intakev1.DataObject{}
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, m); err != nil {
			return nil, fmt.Errorf("decode the model of run %s: %w", RunName(jobID, runID), err)
		}
		return m, nil
	}
	m, err := read()
	if err != nil || m != nil {
		return m, err
	}
	if m, err = resolve(ctx); err != nil {
		return nil, err
	}
	b, err := jsonOpts.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode the model of run %s: %w", RunName(jobID, runID), err)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE intake.runs SET model = $3::jsonb WHERE id = $1 AND job_id = $2 AND model IS NULL`, runID, jobID, string(b))
	if err != nil {
		return nil, fmt.Errorf("store the model of run %s: %w", RunName(jobID, runID), err)
	}
	if tag.RowsAffected() == 1 {
		return m, nil
	}
	// Another publisher stored one first (or the run is gone).
	m, err = read()
	if err == nil && m == nil {
		err = fmt.Errorf("the model of run %s vanished", RunName(jobID, runID))
	}
	return m, err
}
