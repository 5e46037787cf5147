package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// TestBadInput: every bad file gives a run that fails or rejects rows with a
// message saying what and where, and the good rows still land.
func TestBadInput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := startSystem(t)

	const header = "Account ID,Name,Employees,Revenue,Created,Active,Notes\n"
	files := map[string]string{
		"/empty.csv":       "",
		"/header-only.csv": header,
		"/fields.csv": header +
			"B-1,One,1,$1.00,01/01/2020,yes,\n" +
			"B-2,Two,2,$2.00,01/01/2020,yes,,extra\n" + // too many fields
			"B-3,Three,3\n" + // too few fields
			"B-4,Four,4,$4.00,01/01/2020,no,\n",
		"/latin1.csv": header +
			"C-1,Caf\xe9,1,$1.00,01/01/2020,yes,\n" + // ISO-8859-1 byte: not UTF-8
			"C-2,Plain,2,$2.00,01/01/2020,yes,\n",
		"/bare-quote.csv": header +
			"D-1,Say \"hi\",1,$1.00,01/01/2020,yes,\n" + // a quote inside an unquoted field is literal
			"D-2,Fine,2,$2.00,01/01/2020,yes,\n" +
			"D-3,\"Say \"hi\" there\",3,$3.00,01/01/2020,yes,\n", // a stray quote inside a quoted field
		"/unterminated.csv": header +
			"E-1,Fine,1,$1.00,01/01/2020,yes,\n" +
			"E-2,\"never closed,2,$2.00,01/01/2020,yes,\n",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL + "/gone.csv"
	closed.Close() // nothing listens there any more

	cases := []struct {
		name     string
		url      string
		state    intakev1.RunState
		message  string // in the run's message
		rejected map[int64]string
		landed   []string
	}{
		{name: "unreachable", url: closedURL, state: intakev1.RunState_RUN_STATE_FAILED, message: "127.0.0.1"},
		{name: "404", url: srv.URL + "/missing.csv", state: intakev1.RunState_RUN_STATE_FAILED, message: "404"},
		{name: "empty", url: srv.URL + "/empty.csv", state: intakev1.RunState_RUN_STATE_FAILED, message: "empty"},
		{name: "header only", url: srv.URL + "/header-only.csv", state: intakev1.RunState_RUN_STATE_FAILED, message: "no data rows"},
		{name: "field counts", url: srv.URL + "/fields.csv", state: intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED,
			rejected: map[int64]string{3: "8 fields", 4: "3 fields"}, landed: []string{"B-1", "B-4"}},
		// Not UTF-8 and no encoding set: detected as windows-1252, every row lands.
		{name: "not utf-8", url: srv.URL + "/latin1.csv", state: intakev1.RunState_RUN_STATE_SUCCEEDED,
			landed: []string{"C-1", "C-2"}},
		{name: "bare quote", url: srv.URL + "/bare-quote.csv", state: intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED,
			rejected: map[int64]string{4: "extraneous quote"}, landed: []string{"D-1", "D-2"}},
		{name: "unterminated quote", url: srv.URL + "/unterminated.csv", state: intakev1.RunState_RUN_STATE_FAILED, message: "row 3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Disabled: these files could not pass a validation, and a
			// disabled job needs none (RunJob still runs it).
			spec := accountsJob(tc.url)
			spec.Enabled = false
			job, err := s.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{Job: spec})
			require.NoError(t, err)
			run := s.runAndWait(ctx, t, job.Name)
			require.Equal(t, tc.state, run.State, "message: %s", run.Message)
			require.Contains(t, run.Message, tc.message)
			got := map[int64]string{}
			for _, e := range run.RowErrors {
				got[e.Row] += e.Reason
			}
			require.Len(t, got, len(tc.rejected), "row errors: %v", run.RowErrors)
			for row, reason := range tc.rejected {
				require.Contains(t, got[row], reason, "row %d", row)
			}
			for _, id := range tc.landed {
				require.Equal(t, int64(1), count(ctx, t, s.db, `SELECT count(*) FROM objects.accounts WHERE account_id = $1`, id), id)
			}
		})
	}
	require.Equal(t, int64(1), count(ctx, t, s.db, `SELECT count(*) FROM objects.accounts WHERE account_id = 'C-1' AND name = 'Café'`),
		"the ISO-8859-1 byte is decoded, not replaced")
	require.Equal(t, int64(1), count(ctx, t, s.db, `SELECT count(*) FROM objects.accounts WHERE account_id = 'D-1' AND name = 'Say "hi"'`))
}
