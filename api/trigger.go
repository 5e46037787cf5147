package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/intakehq/intake/api/internal/jobspec"
	"github.com/intakehq/intake/api/internal/store"
	"github.com/intakehq/intake/pkg/pipeline"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// The trigger API: TriggerJob, authorised by a per-job trigger token sent
// as "Authorization: Bearer <token>" (gRPC metadata, or the HTTP header of
// the REST/JSON mapping, see http.go), and the calls that manage tokens.

const (
	// TriggerTokenPrefix starts every trigger token, so a leaked one is
	// easy to recognise (and to scan for).
	TriggerTokenPrefix = "itk_"
	// triggerTokenBytes is the entropy of a token.
	triggerTokenBytes = 32
	// MaxIdempotencyKey is the longest idempotency_key accepted, in bytes.
	MaxIdempotencyKey = 256
)

// Outcomes of TriggerJob, the label of intake_api_triggers_total.
const (
	triggerStarted         = "started"
	triggerDuplicate       = "duplicate"
	triggerUnauthenticated = "unauthenticated"
	triggerDenied          = "denied"
)

// errTokenRequired is TriggerJob's answer to a call without a token.
var errTokenRequired = status.Error(codes.Unauthenticated, "trigger token required: send Authorization: Bearer <token>")

// deniedFor is TriggerJob's answer to a token that does not authorise the
// job: unknown, revoked, another job's, or the job is gone. It does not
// say which.
func deniedFor(job string) error {
	return status.Errorf(codes.PermissionDenied, "this trigger token is not valid for %s", job)
}

// newTriggerToken returns a new secret and the SHA-256 that is stored.
func newTriggerToken() (secret string, hash []byte) {
	b := make([]byte, triggerTokenBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	secret = TriggerTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, hashToken(secret)
}

func hashToken(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// newTokenID is the id of a token in its resource name.
func newTokenID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// bearerToken is the token of the call's "authorization: Bearer <token>"
// metadata, "" when there is none.
func bearerToken(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		scheme, token, ok := strings.Cut(strings.TrimSpace(v), " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			if token = strings.TrimSpace(token); token != "" {
				return token
			}
		}
	}
	return ""
}

// parseTokenName returns the job and token ids of
// "jobs/{job}/triggerTokens/{token}".
func parseTokenName(field, name string) (string, string, error) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != "jobs" || parts[2] != "triggerTokens" || parts[1] == "" || parts[3] == "" {
		return "", "", badField(field, "%q is not a trigger token name (jobs/{job}/triggerTokens/{token}, as ListTriggerTokens shows)", name)
	}
	if err := jobspec.CheckJobID(parts[1]); err != nil {
		return "", "", badField(field, "%q is not a trigger token name: %v", name, err)
	}
	return parts[1], parts[3], nil
}

// TriggerJob starts a run of a job for an external caller holding one of
// the job's trigger tokens: trigger TRIGGER_API, queued like RunJob's.
// With an idempotency_key, the job gets one run per key: a repeat returns
// the first run with created=false.
func (j *jobService) TriggerJob(ctx context.Context, req *intakev1.TriggerJobRequest) (*intakev1.TriggerJobResponse, error) {
	s := j.s
	secret := bearerToken(ctx)
	if secret == "" {
		s.metrics.triggers.WithLabelValues(triggerUnauthenticated).Inc()
		return nil, errTokenRequired
	}
	id, err := parseJobName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	key := req.GetIdempotencyKey()
	if err := checkIdempotencyKey(key); err != nil {
		return nil, err
	}
	tokenID, err := s.authorizeTrigger(ctx, id, secret)
	if err != nil {
		return nil, err
	}
	log := s.log.With("job", id, "trigger_token", tokenID, "idempotency_key", key)
	if err := s.store.TokenUsed(ctx, id, tokenID); err != nil {
		log.WarnContext(ctx, "could not record the use of a trigger token", "error", err)
	}
	// The job's tenant is the call's: its run, model and rows are the
	// tenant's (tenants.go).
	tenant, err := s.store.JobTenant(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		s.metrics.triggers.WithLabelValues(triggerDenied).Inc()
		return nil, deniedFor(store.JobName(id))
	}
	if err != nil {
		return nil, s.storeError(ctx, "read", "job "+store.JobName(id), err)
	}
	ctx = store.WithTenant(ctx, tenant)
	job, err := s.store.GetJob(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		s.metrics.triggers.WithLabelValues(triggerDenied).Inc()
		return nil, deniedFor(store.JobName(id))
	}
	if err != nil {
		return nil, s.storeError(ctx, "read", "job "+store.JobName(id), err)
	}
	return s.startTriggeredRun(ctx, log, id, job, key, req.GetForce())
}

// startTriggeredRun creates and queues the run of a TriggerJob call that
// passed its checks, or returns the run of an earlier call with the same
// idempotency key.
func (s *Server) startTriggeredRun(ctx context.Context, log *slog.Logger, id string, job *intakev1.Job, key string, force bool) (*intakev1.TriggerJobResponse, error) {
	run, created, err := s.store.CreateTriggeredRun(ctx, job, id, key, force)
	if errors.Is(err, store.ErrNotFound) { // deleted meanwhile
		s.metrics.triggers.WithLabelValues(triggerDenied).Inc()
		return nil, deniedFor(store.JobName(id))
	}
	if err != nil {
		return nil, s.storeError(ctx, "create a run of", "job "+store.JobName(id), err)
	}
	if !created {
		s.metrics.triggers.WithLabelValues(triggerDuplicate).Inc()
		log.InfoContext(ctx, "trigger repeated: its idempotency key has a run already", "run", run.GetName())
		return &intakev1.TriggerJobResponse{Run: run, Created: false}, nil
	}
	if err := s.queueRun(ctx, id, job, run, store.RunOptions{Force: force}); err != nil {
		return nil, err
	}
	s.metrics.triggers.WithLabelValues(triggerStarted).Inc()
	return &intakev1.TriggerJobResponse{Run: run, Created: true}, nil
}

// authorizeTrigger returns the id of the live token of job jobID whose
// hash is the secret's, comparing every hash in constant time; the
// PermissionDenied of deniedFor when there is none.
func (s *Server) authorizeTrigger(ctx context.Context, jobID, secret string) (string, error) {
	hashes, err := s.store.LiveTokenHashes(ctx, jobID)
	if err != nil {
		return "", s.storeError(ctx, "check the trigger token of", "job "+store.JobName(jobID), err)
	}
	got := hashToken(secret)
	match := ""
	for _, h := range hashes {
		if subtle.ConstantTimeCompare(got, h.Hash) == 1 {
			match = h.ID
		}
	}
	if match == "" {
		s.metrics.triggers.WithLabelValues(triggerDenied).Inc()
		s.log.WarnContext(ctx, "trigger refused: the token is not valid for the job", "job", jobID)
		return "", deniedFor(store.JobName(jobID))
	}
	return match, nil
}

// queueRun publishes the run request of a run just created QUEUED, as
// startRunWith does after creating its run: when the publish fails the run
// is marked FAILED and the error is Unavailable.
func (s *Server) queueRun(ctx context.Context, jobID string, job *intakev1.Job, run *intakev1.Run, o store.RunOptions) error {
	// The run exists now: finish queueing it even if the caller goes away.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	model, err := s.runModel(pctx, run.GetName(), job.GetObject())
	if err == nil {
		err = pipeline.Publish(pctx, s.js, pipeline.SubjectRunRequest, run.GetName(), &pipelinev1.RunRequest{
			Run: run.GetName(), Job: job, Trigger: run.GetTrigger(), CreateTime: run.GetCreateTime(), DryRun: o.DryRun, Model: model,
			ReplayOf: o.ReplayOf,
			Tenant:   s.runTenant(pctx, run.GetName()),
		})
	}
	if err != nil {
		_, runID, _ := parseRunName("run", run.GetName())
		msg := fmt.Sprintf("could not queue the run: %v", err)
		failed, ferr := s.store.FailQueued(pctx, jobID, runID, msg)
		if ferr != nil {
			s.log.ErrorContext(ctx, "mark unqueued run failed", "job", jobID, "run", runID, "error", ferr)
		}
		if failed {
			s.hub.notify(run.GetName())
			if r, err := s.store.GetRun(pctx, jobID, runID); err == nil {
				s.metrics.runFinished(r)
			}
		}
		s.log.ErrorContext(ctx, "run request not published", "job", jobID, "run", runID, "error", err)
		return status.Errorf(codes.Unavailable, "run %s could not be queued (it is marked FAILED; try again): %v", run.GetName(), err)
	}
	s.log.InfoContext(ctx, "run queued", "job", jobID, "run", run.GetName(), "trigger", run.GetTrigger().String(),
		"dry_run", o.DryRun, "force", o.Force, "replay_of", o.ReplayOf, "idempotency_key", run.GetIdempotencyKey())
	return nil
}

// CreateTriggerToken makes a trigger token for a job; the secret is in the
// response only.
func (j *jobService) CreateTriggerToken(ctx context.Context, req *intakev1.CreateTriggerTokenRequest) (*intakev1.TriggerToken, error) {
	return j.s.makeTriggerToken(ctx, req.GetParent(), false)
}

// RotateTriggerToken makes a trigger token for a job and revokes its other
// tokens, in one transaction.
func (j *jobService) RotateTriggerToken(ctx context.Context, req *intakev1.RotateTriggerTokenRequest) (*intakev1.TriggerToken, error) {
	return j.s.makeTriggerToken(ctx, req.GetParent(), true)
}

func (s *Server) makeTriggerToken(ctx context.Context, parent string, rotate bool) (*intakev1.TriggerToken, error) {
	id, err := parseJobName("parent", parent)
	if err != nil {
		return nil, err
	}
	secret, hash := newTriggerToken()
	tok, err := s.store.CreateTriggerToken(ctx, id, newTokenID(), hash, rotate)
	if err != nil {
		return nil, s.storeError(ctx, "create a trigger token of", "job "+store.JobName(id), err)
	}
	tok.Token = secret
	s.log.InfoContext(ctx, map[bool]string{false: "trigger token created", true: "trigger token rotated: the job's other tokens are revoked"}[rotate],
		"job", id, "trigger_token", tok.GetName())
	return tok, nil
}

// RevokeTriggerToken revokes a token by name: TriggerJob refuses it from
// now on. Revoking a revoked token succeeds.
func (j *jobService) RevokeTriggerToken(ctx context.Context, req *intakev1.RevokeTriggerTokenRequest) (*emptypb.Empty, error) {
	jobID, tokenID, err := parseTokenName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if err := j.s.store.RevokeTriggerToken(ctx, jobID, tokenID); err != nil {
		return nil, j.s.storeError(ctx, "revoke", "trigger token "+req.GetName(), err)
	}
	j.s.log.InfoContext(ctx, "trigger token revoked", "job", jobID, "trigger_token", req.GetName())
	return &emptypb.Empty{}, nil
}

// ListTriggerTokens lists a job's live tokens, without their secrets.
func (j *jobService) ListTriggerTokens(ctx context.Context, req *intakev1.ListTriggerTokensRequest) (*intakev1.ListTriggerTokensResponse, error) {
	id, err := parseJobName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	toks, err := j.s.store.ListTriggerTokens(ctx, id)
	if err != nil {
		return nil, j.s.storeError(ctx, "list the trigger tokens of", "job "+store.JobName(id), err)
	}
	return &intakev1.ListTriggerTokensResponse{Tokens: toks}, nil
}

// registerTrigger adds the metrics of the trigger API.
func (m *metrics) registerTrigger(reg prometheus.Registerer) error {
	m.triggers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "intake_api_triggers_total",
		Help: "TriggerJob calls by outcome: started (a new run), duplicate (an idempotency key seen before), unauthenticated (no token), denied (a token not valid for the job).",
	}, []string{"outcome"})
	for _, o := range []string{triggerStarted, triggerDuplicate, triggerUnauthenticated, triggerDenied} {
		m.triggers.WithLabelValues(o)
	}
	if err := reg.Register(m.triggers); err != nil {
		return fmt.Errorf("api: register metrics: %w", err)
	}
	return nil
}
