package testutil

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// PostJSON POSTs body as JSON to url, with "Authorization: Bearer token"
// when token is not empty, through client (http.DefaultClient when nil),
// and returns the HTTP status and the answer. A request that cannot be
// sent fails the test.
func PostJSON(ctx context.Context, t testing.TB, client *http.Client, url, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: read the answer: %v", url, err)
	}
	return resp.StatusCode, out
}
