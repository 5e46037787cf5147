package monitoring

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *datasource `json:"datasource"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	Targets    []target    `json:"targets"`
	Panels     []panel     `json:"panels"`
}

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(b, &d), "deploy/monitoring/dashboard.json")
	return d
}

// dashboardPanels are the dashboard's panels but rows, with those of
// collapsed rows.
func dashboardPanels(t *testing.T) []panel {
	t.Helper()
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" {
				out = append(out, p)
			}
			walk(p.Panels)
		}
	}
	walk(readDashboard(t).Panels)
	return out
}

// grafanaVars are the values of the dashboard variables for checking its
// queries: Grafana's $__rate_interval and the namespace variable (all).
var grafanaVars = map[string]string{"__rate_interval": "5m", "namespace": ".*"}

var grafanaVar = regexp.MustCompile(`\$\{?(\w+)\}?`)

// The dashboard is for Grafana 10.4+ (schema 39), takes its data source
// from the datasource variable, and has the panels an SRE needs, each
// querying catalogued metrics with valid PromQL.
func TestDashboard(t *testing.T) {
	t.Parallel()
	catalog := readCatalog(t)
	d := readDashboard(t)
	require.GreaterOrEqual(t, d.SchemaVersion, 39)
	require.NotEmpty(t, d.UID)
	require.NotEmpty(t, d.Title)

	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "datasource" {
			require.Equal(t, `"prometheus"`, string(v.Query), "variable %s", v.Name)
		}
		if v.Type == "query" {
			require.Equal(t, "${datasource}", v.Datasource.UID, "variable %s", v.Name)
			metricNames(t, catalog, "variable "+v.Name, v.Definition)
		}
	}
	require.Equal(t, "datasource", vars["datasource"], "a datasource variable named datasource")

	want := []string{
		"Runs finished by state and trigger", "Run failure ratio", "Runs in progress", "Oldest run in progress",
		"Rows per second by stage", "Bytes fetched per second", "Fetches by outcome (skipped = file unchanged)",
		"Stage latency p50 / p99", "Loader batch write latency",
		"Consumer pending messages", "Consumer redeliveries",
		"Scheduler tick lateness p99", "Active schedulers",
		"API requests per second by code", "API error ratio", "API latency p50 / p99 (unary)",
	}
	titles := map[string]bool{}
	var rules []map[string]string
	for _, p := range dashboardPanels(t) {
		require.False(t, titles[p.Title], "two panels titled %q", p.Title)
		titles[p.Title] = true
		require.Equal(t, &datasource{Type: "prometheus", UID: "${datasource}"}, p.Datasource, "panel %q", p.Title)
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, tg := range p.Targets {
			where := fmt.Sprintf("panel %q query %s", p.Title, tg.RefID)
			require.Equal(t, p.Datasource, tg.Datasource, where)
			require.NotEmpty(t, metricNames(t, catalog, where, tg.Expr), "%s uses no Intake metric", where)
			if strings.Contains(tg.Expr, "histogram_quantile") {
				require.Contains(t, tg.Expr, "_bucket", where)
			}
			expr := grafanaVar.ReplaceAllStringFunc(tg.Expr, func(v string) string {
				name := grafanaVar.FindStringSubmatch(v)[1]
				val, ok := grafanaVars[name]
				require.True(t, ok, "%s: unknown variable %s", where, v)
				return val
			})
			rules = append(rules, map[string]string{"record": fmt.Sprintf("dashboard:panel_%d_%s", p.ID, tg.RefID), "expr": expr})
		}
	}
	for _, w := range want {
		require.True(t, titles[w], "no panel %q", w)
	}

	// promtool parses every query, as recording rules.
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dashboard-queries.yaml"), b, 0o644))
	runPromtool(t, dir, "", "check", "rules", "dashboard-queries.yaml")
}
