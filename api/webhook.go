package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/api/internal/store"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Completion webhooks: when a run of a job with a webhook ends, the API
// POSTs a JSON summary of the run to the webhook's URL, signed with the
// job's secret, and retries with backoff until the receiver answers 2xx or
// the attempts run out. Every attempt shows in the run's
// webhook_deliveries.
//
// Each API replica polls PostgreSQL (store.QueueWebhooks) for runs that
// ended, whichever replica or path ended them, and queues their delivery;
// due deliveries are claimed with FOR UPDATE SKIP LOCKED, so one replica at
// a time makes each attempt.

const (
	// DefaultWebhookTimeout is Config.WebhookTimeout when it is zero.
	DefaultWebhookTimeout = 10 * time.Second
	// DefaultWebhookPollInterval is Config.WebhookPollInterval when it is zero.
	DefaultWebhookPollInterval = time.Second
	// MinWebhookPollInterval is the shortest Config.WebhookPollInterval.
	MinWebhookPollInterval = 10 * time.Millisecond

	// webhookBatch is how many ended runs one query looks at.
	webhookBatch = 200
	// webhookConcurrency is how many deliveries a replica makes at once.
	webhookConcurrency = 16
	// webhookRecordTimeout bounds recording an attempt, which goes on
	// when the server stops after the request was sent.
	webhookRecordTimeout = 5 * time.Second
	// webhookErrorBody is how much of a failed response's body the
	// attempt's error quotes.
	webhookErrorBody = 200
)

// Headers of a webhook delivery.
const (
	// WebhookSignatureHeader is "sha256=" and the hex HMAC-SHA256 of the
	// body with the job's webhook secret (absent when it has none).
	WebhookSignatureHeader = "X-Intake-Signature"
	// WebhookDeliveryHeader is the run's name and the attempt,
	// "jobs/{job}/runs/{run}/{attempt}"; a receiver can drop a delivery it
	// already handled by the run name.
	WebhookDeliveryHeader = "X-Intake-Delivery"
)

// DefaultWebhookBackoff is Config.WebhookBackoff when it is nil: retries
// after 5s, 30s, 2m, 10m and 1h, so six attempts in all.
func DefaultWebhookBackoff() []time.Duration {
	return []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, time.Hour}
}

// validateWebhooks checks the webhook settings of a Config.
func (c Config) validateWebhooks() error {
	for i, d := range c.WebhookBackoff {
		if d <= 0 {
			return fmt.Errorf("api: WebhookBackoff[%d] %v: every wait must be positive", i, d)
		}
	}
	if c.WebhookTimeout < 0 {
		return fmt.Errorf("api: WebhookTimeout %v is negative (0 means %v)", c.WebhookTimeout, DefaultWebhookTimeout)
	}
	if c.WebhookPollInterval < 0 || c.WebhookPollInterval > 0 && c.WebhookPollInterval < MinWebhookPollInterval {
		return fmt.Errorf("api: WebhookPollInterval %v: must be at least %v (0 means %v)",
			c.WebhookPollInterval, MinWebhookPollInterval, DefaultWebhookPollInterval)
	}
	return nil
}

// WebhookPayload is the JSON body of a completion webhook.
type WebhookPayload struct {
	// Run is the run's name, "jobs/{job}/runs/{run}".
	Run string `json:"run"`
	// Job is the job's name, "jobs/{job}".
	Job string `json:"job"`
	// State is the run's final state as the API names it, e.g.
	// "RUN_STATE_SUCCEEDED".
	State string `json:"state"`
	// Trigger is what started the run, e.g. "TRIGGER_SCHEDULE".
	Trigger string `json:"trigger"`
	// Counters are the run's counters by their proto names (rows_read,
	// rows_rejected, rows_created, ...), zeros included.
	Counters map[string]int64 `json:"counters"`
	Message  string           `json:"message"`
	// CreateTime and EndTime are RFC 3339 times in UTC.
	CreateTime string `json:"create_time"`
	EndTime    string `json:"end_time"`
	DryRun     bool   `json:"dry_run"`
}

// webhookPayload is the body of run's completion webhook.
func webhookPayload(run *intakev1.Run) ([]byte, error) {
	job := run.GetName()
	if i := strings.Index(job, "/runs/"); i >= 0 {
		job = job[:i]
	}
	p := WebhookPayload{
		Run: run.GetName(), Job: job, State: run.GetState().String(), Trigger: run.GetTrigger().String(),
		Counters: map[string]int64{}, Message: run.GetMessage(),
		CreateTime: rfc3339(run.GetCreateTime()), EndTime: rfc3339(run.GetEndTime()), DryRun: run.GetDryRun(),
	}
	c := run.GetCounters().ProtoReflect()
	fields := c.Descriptor().Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); fd.Kind() == protoreflect.Int64Kind {
			p.Counters[string(fd.Name())] = c.Get(fd).Int()
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode the webhook of run %s: %w", run.GetName(), err)
	}
	return b, nil
}

func rfc3339(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return t.AsTime().UTC().Format(time.RFC3339Nano)
}

// WebhookSignature is the X-Intake-Signature of body with secret:
// "sha256=" and the hex HMAC-SHA256.
func WebhookSignature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// webhooks delivers the completion webhooks.
type webhooks struct {
	s        *Server
	client   *http.Client
	backoff  []time.Duration
	timeout  time.Duration
	poll     time.Duration
	lease    time.Duration
	outcomes *prometheus.CounterVec
	slots    chan struct{}
	wg       sync.WaitGroup
}

func newWebhooks(s *Server) *webhooks {
	w := &webhooks{
		s:       s,
		backoff: s.cfg.WebhookBackoff,
		timeout: s.cfg.WebhookTimeout,
		poll:    s.cfg.WebhookPollInterval,
		slots:   make(chan struct{}, webhookConcurrency),
	}
	if w.backoff == nil {
		w.backoff = DefaultWebhookBackoff()
	}
	if w.timeout == 0 {
		w.timeout = DefaultWebhookTimeout
	}
	if w.poll == 0 {
		w.poll = DefaultWebhookPollInterval
	}
	// A claim outlives the attempt and its recording; past it, another
	// replica may make the attempt (this one died).
	w.lease = w.timeout + 30*time.Second
	transport := http.DefaultTransport.(*http.Transport).Clone()
	w.client = &http.Client{
		Transport: transport,
		// A redirect is not a delivery: the attempt fails with the 3xx.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	w.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "intake_api_webhook_deliveries_total",
		Help: "Completion webhook attempts, by outcome: delivered (2xx), failed (retried later), gave_up (the last attempt failed).",
	}, []string{"outcome"})
	if reg := s.cfg.Registerer; reg != nil {
		if err := reg.Register(w.outcomes); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				if c, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
					w.outcomes = c
				}
			} else {
				s.log.Error("webhooks: register metrics", "error", err)
			}
		}
	}
	for _, o := range []string{"delivered", "failed", "gave_up"} {
		w.outcomes.WithLabelValues(o)
	}
	return w
}

// startWebhooks starts delivering completion webhooks until ctx ends or the
// returned stop is called; stop waits for the attempts in flight (an attempt
// cut off by the stop is made again later, by any replica).
func (s *Server) startWebhooks(ctx context.Context) (stop func()) {
	w := newWebhooks(s)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.loop(ctx) }()
	return func() {
		cancel()
		<-done
		w.client.CloseIdleConnections()
	}
}

// loop queues and delivers every poll interval until ctx ends.
func (w *webhooks) loop(ctx context.Context) {
	defer w.wg.Wait()
	t := time.NewTicker(w.poll)
	defer t.Stop()
	for {
		if err := w.sweep(ctx); err != nil && ctx.Err() == nil {
			w.s.log.Error("webhooks: sweep failed; retrying at the next one", "every", w.poll, "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweep queues the webhooks of the runs that ended and starts the due
// deliveries this replica has room for.
func (w *webhooks) sweep(ctx context.Context) error {
	for {
		seen, queued, err := w.s.store.QueueWebhooks(ctx, webhookBatch)
		if err != nil {
			return err
		}
		if queued > 0 {
			w.s.log.Debug("webhooks queued", "runs_ended", seen, "queued", queued)
		}
		if seen < webhookBatch {
			break
		}
	}
	free := cap(w.slots) - len(w.slots)
	if free == 0 {
		return nil
	}
	tasks, err := w.s.store.ClaimWebhooks(ctx, free, w.lease)
	if err != nil {
		return err
	}
	for _, t := range tasks {
		w.slots <- struct{}{} // only this goroutine takes slots: never blocks
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer func() { <-w.slots }()
			w.deliver(ctx, t)
		}()
	}
	return nil
}

// deliver makes the attempt of a claimed task and records it.
func (w *webhooks) deliver(ctx context.Context, t store.WebhookTask) {
	log := w.s.log.With("job", t.JobID, "run", store.RunName(t.JobID, t.RunID), "attempt", t.Attempt)
	target, err := w.s.store.WebhookTarget(ctx, t)
	if errors.Is(err, store.ErrNotFound) || err == nil && target.URL == "" {
		// The job was deleted, or its webhook removed, since the run ended.
		if err = w.s.store.DropWebhook(ctx, t); err == nil {
			log.Info("webhook dropped: the job no longer has a webhook")
			return
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			log.Error("webhook not sent; trying again when its claim lapses", "in", w.lease, "error", err)
		}
		return
	}
	body, err := webhookPayload(target.Run)
	if err != nil {
		log.Error("webhook not sent", "error", err)
		return
	}
	host := ""
	if u, err := url.Parse(target.URL); err == nil {
		host = u.Host // not the URL: its path or query may hold a token
	}
	log = log.With("host", host)

	start := time.Now()
	code, err := w.post(ctx, target, t, body)
	if ctx.Err() != nil {
		return // stopping: the attempt is made again when its claim lapses
	}
	d := &intakev1.WebhookDelivery{Attempt: t.Attempt, Time: timestamppb.New(start), StatusCode: int32(code), Delivered: err == nil}
	var retryIn time.Duration
	outcome := "delivered"
	switch {
	case err == nil:
	case int(t.Attempt) > len(w.backoff):
		outcome = "gave_up"
	default:
		outcome = "failed"
		retryIn = w.backoff[t.Attempt-1]
	}
	if err != nil {
		d.Error = err.Error()
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), webhookRecordTimeout)
	defer cancel()
	recorded, rerr := w.s.store.RecordWebhook(rctx, t, d, retryIn)
	if rerr != nil {
		log.Error("webhook attempt not recorded; it is made again when its claim lapses", "outcome", outcome, "error", rerr)
		return
	}
	if !recorded {
		log.Warn("webhook attempt already recorded by another replica (this one's claim had lapsed)", "outcome", outcome)
		return
	}
	w.outcomes.WithLabelValues(outcome).Inc()
	switch outcome {
	case "delivered":
		log.Info("webhook delivered", "status", code)
	case "failed":
		log.Warn("webhook attempt failed; retrying", "status", code, "error", err, "retry_in", retryIn)
	default:
		log.Error("webhook given up after its last attempt", "attempts", t.Attempt, "status", code, "error", err)
	}
}

// post sends body to the target; a nil error is a 2xx answer. It returns
// the response's status code, 0 when none arrived.
func (w *webhooks) post(ctx context.Context, target *store.WebhookTarget, t store.WebhookTask, body []byte) (int, error) {
	if target.SecretErr != nil {
		// Never unsigned: the receiver would have to accept forged calls.
		// The attempt fails (and is retried) until the key is back.
		return 0, fmt.Errorf("not sent: %w", target.SecretErr)
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("bad webhook URL: %v", unwrapURL(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "intake-webhook/1")
	req.Header.Set(WebhookDeliveryHeader, store.RunName(t.JobID, t.RunID)+"/"+strconv.Itoa(int(t.Attempt)))
	if target.Secret != "" {
		req.Header.Set(WebhookSignatureHeader, WebhookSignature(target.Secret, body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return 0, fmt.Errorf("no response within %v", w.timeout)
		}
		return 0, unwrapURL(err)
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, webhookErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection is reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, nil
	}
	msg := "HTTP " + resp.Status
	if s := oneLine(string(head)); s != "" {
		msg += ": " + s
	}
	return resp.StatusCode, errors.New(msg)
}

// unwrapURL is an HTTP client error without the URL it names (its path or
// query may hold a token).
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// oneLine is s with runs of whitespace and control characters as one space,
// trimmed.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "?")
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
}
