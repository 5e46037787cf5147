package monitoring

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// root is the repository's root, from this package's directory.
const root = "../../.."

// The files this package checks.
var (
	catalogPath    = filepath.Join(root, "docs", "metrics.md")
	monitoringDir  = filepath.Join(root, "deploy", "monitoring")
	dashboardPath  = filepath.Join(monitoringDir, "dashboard.json")
	alertsPath     = filepath.Join(monitoringDir, "alerts.yaml")
	alertTestsPath = filepath.Join(monitoringDir, "alerts_test.yaml")
	ruleCRPath     = filepath.Join(monitoringDir, "prometheusrule.yaml")
	generatorPath  = filepath.Join(root, "scripts", "gen-prometheusrule.sh")
)

// entry is one metric of the catalog.
type entry struct {
	name string
	// typ is counter, gauge or histogram.
	typ string
	// labels are the label names, sorted.
	labels []string
	// usedBy are the dashboard panels and alerts that use the metric,
	// sorted.
	usedBy []string
	// pending marks a metric the catalog lists before its service
	// registers it ("Not yet registered").
	pending bool
	line    int
}

var (
	backticked = regexp.MustCompile("`([a-zA-Z_][a-zA-Z0-9_]*)`")
	// metricRef finds the names of Intake's metrics in PromQL.
	metricRef = regexp.MustCompile(`\b(?:intake|grpc_server)_[a-z0-9_]+\b`)
)

// readCatalog parses the tables of docs/metrics.md up to its "Tracing"
// section: one row a metric, with
// the columns Metric, Type, Labels, Unit, Meaning, Used by.
func readCatalog(t *testing.T) map[string]entry {
	t.Helper()
	f, err := os.Open(catalogPath)
	require.NoError(t, err, "the metric catalog")
	defer f.Close()
	out := map[string]entry{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "## Tracing" {
			break // spans, not metrics: the catalog ends here
		}
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		require.Len(t, cells, 6, "docs/metrics.md:%d: want the cells Metric | Type | Labels | Unit | Meaning | Used by", n)
		name := strings.Trim(cells[0], "`")
		require.NotContains(t, out, name, "docs/metrics.md:%d: %s listed twice", n, name)
		typ, _, _ := strings.Cut(cells[1], " ")
		require.Contains(t, []string{"counter", "gauge", "histogram"}, typ, "docs/metrics.md:%d: type of %s", n, name)
		e := entry{name: name, typ: typ, pending: strings.Contains(cells[4], "Not yet registered"), line: n}
		for _, m := range backticked.FindAllStringSubmatch(cells[2], -1) {
			if !slices.Contains(e.labels, m[1]) {
				e.labels = append(e.labels, m[1])
			}
		}
		slices.Sort(e.labels)
		if cells[5] != "—" {
			e.usedBy = strings.Split(cells[5], "; ")
			slices.Sort(e.usedBy)
		}
		out[name] = e
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, out, "no metric rows in docs/metrics.md")
	return out
}

// metricNames are the catalog metrics an expression refers to, a
// histogram's _bucket, _sum and _count series standing for the histogram.
// A name the catalog lacks fails the test.
func metricNames(t *testing.T, catalog map[string]entry, where, expr string) []string {
	t.Helper()
	var out []string
	for _, ref := range metricRef.FindAllString(expr, -1) {
		name := ref
		if _, ok := catalog[name]; !ok {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(ref, suffix); ok && catalog[base].typ == "histogram" {
					name = base
				}
			}
		}
		e, ok := catalog[name]
		require.True(t, ok, "%s: %s is not in docs/metrics.md", where, ref)
		if strings.HasSuffix(ref, "_bucket") && name != ref {
			require.Equal(t, "histogram", e.typ, "%s: %s", where, ref)
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// promtool returns the path of promtool, failing the test when it is
// missing.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is not on PATH; it checks the metrics and the alert rules: "+
			"install Debian's prometheus package (apt-get install prometheus), which ships it: %v", err)
	}
	return p
}

// runPromtool runs promtool with args in dir (stdin from stdin when not
// empty) and fails the test with its output when it fails.
func runPromtool(t *testing.T, dir, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// The catalog's "Used by" column names exactly the dashboard panels and
// alerts whose queries use each metric.
func TestCatalogUsedByMatchesDashboardAndAlerts(t *testing.T) {
	t.Parallel()
	catalog := readCatalog(t)
	used := map[string][]string{}
	for _, p := range dashboardPanels(t) {
		for _, tg := range p.Targets {
			for _, name := range metricNames(t, catalog, "panel "+p.Title, tg.Expr) {
				if !slices.Contains(used[name], p.Title) {
					used[name] = append(used[name], p.Title)
				}
			}
		}
	}
	for _, r := range alertRules(t, readAlerts(t)) {
		for _, name := range metricNames(t, catalog, "alert "+r.Alert, r.Expr) {
			if !slices.Contains(used[name], r.Alert) {
				used[name] = append(used[name], r.Alert)
			}
		}
	}
	for name, e := range catalog {
		want := used[name]
		slices.Sort(want)
		require.Equal(t, want, e.usedBy, "docs/metrics.md:%d: the Used by of %s (panel titles and alert names, separated by \"; \", or —)", e.line, name)
	}
}
