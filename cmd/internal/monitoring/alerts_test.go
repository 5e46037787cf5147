package monitoring

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

func readAlerts(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(alertsPath)
	require.NoError(t, err)
	var f ruleFile
	require.NoError(t, yaml.Unmarshal(b, &f), "deploy/monitoring/alerts.yaml")
	return f
}

func alertRules(t *testing.T, f ruleFile) []rule {
	t.Helper()
	var out []rule
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out = append(out, r)
			}
		}
	}
	require.NotEmpty(t, out, "no alert rules")
	return out
}

// The alert rules are valid, query catalogued metrics, carry a severity,
// a summary and a description, and pass their unit tests, which make each
// alert fire in one case and stay silent in another.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	catalog := readCatalog(t)
	runPromtool(t, monitoringDir, "", "check", "rules", filepath.Base(alertsPath))
	out := runPromtool(t, monitoringDir, "", "test", "rules", filepath.Base(alertTestsPath))
	require.Contains(t, out, "SUCCESS")

	var names []string
	for _, r := range alertRules(t, readAlerts(t)) {
		require.NotContains(t, names, r.Alert, "alert %s defined twice", r.Alert)
		names = append(names, r.Alert)
		require.NotEmpty(t, metricNames(t, catalog, "alert "+r.Alert, r.Expr), "alert %s uses no Intake metric", r.Alert)
		require.Contains(t, []string{"warning", "critical"}, r.Labels["severity"], "alert %s: severity", r.Alert)
		require.NotEmpty(t, r.For, "alert %s: a for duration, so a blip does not page", r.Alert)
		require.NotEmpty(t, r.Annotations["summary"], "alert %s: summary", r.Alert)
		require.NotEmpty(t, r.Annotations["description"], "alert %s: description", r.Alert)
	}
	for _, want := range []string{"IntakeRunStuck", "IntakeRunFailureRateHigh", "IntakeConsumerLagGrowing",
		"IntakeNoSchedulerLeader", "IntakeAPIErrorsHigh"} {
		require.Contains(t, names, want)
	}

	// Every alert has a unit test where it fires and one where it does not.
	b, err := os.ReadFile(alertTestsPath)
	require.NoError(t, err)
	var tests struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	require.NoError(t, yaml.Unmarshal(b, &tests))
	require.Equal(t, []string{filepath.Base(alertsPath)}, tests.RuleFiles)
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, at := range tc.AlertRuleTest {
			require.Contains(t, names, at.Alertname, "alerts_test.yaml tests an alert alerts.yaml lacks")
			if len(at.ExpAlerts) > 0 {
				fires[at.Alertname] = true
			} else {
				silent[at.Alertname] = true
			}
		}
	}
	for _, n := range names {
		require.True(t, fires[n], "alerts_test.yaml: no case where %s fires", n)
		require.True(t, silent[n], "alerts_test.yaml: no case where %s stays silent", n)
	}
}

// prometheusrule.yaml is what scripts/gen-prometheusrule.sh makes of
// alerts.yaml: the same groups, as a PrometheusRule.
func TestPrometheusRuleIsGeneratedFromTheAlerts(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	cmd := exec.Command("bash", generatorPath, "--stdout")
	cmd.Stderr = &stderr
	generated, err := cmd.Output()
	require.NoError(t, err, "scripts/gen-prometheusrule.sh: %s", stderr.String())
	written, err := os.ReadFile(ruleCRPath)
	require.NoError(t, err)
	require.Equal(t, string(generated), string(written),
		"deploy/monitoring/prometheusrule.yaml is stale: run scripts/gen-prometheusrule.sh")

	var cr struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Spec ruleFile `yaml:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(written, &cr))
	require.Equal(t, "monitoring.coreos.com/v1", cr.APIVersion)
	require.Equal(t, "PrometheusRule", cr.Kind)
	require.NotEmpty(t, cr.Metadata.Name)
	require.Equal(t, readAlerts(t), cr.Spec, "the PrometheusRule's groups are alerts.yaml's")
}

// The kustomization of deploy/monitoring lists files that exist: the
// PrometheusRule and the dashboard for the Grafana sidecar.
func TestMonitoringKustomization(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(monitoringDir, "kustomization.yaml"))
	require.NoError(t, err)
	var k struct {
		Resources          []string `yaml:"resources"`
		ConfigMapGenerator []struct {
			Files []string `yaml:"files"`
		} `yaml:"configMapGenerator"`
	}
	require.NoError(t, yaml.Unmarshal(b, &k))
	require.Contains(t, k.Resources, filepath.Base(ruleCRPath))
	files := slices.Clone(k.Resources)
	for _, g := range k.ConfigMapGenerator {
		for _, f := range g.Files {
			_, src, found := strings.Cut(f, "=") // key=file
			if !found {
				src = f
			}
			files = append(files, src)
		}
	}
	require.Contains(t, files, filepath.Base(dashboardPath))
	for _, f := range files {
		_, err := os.Stat(filepath.Join(monitoringDir, f))
		require.NoError(t, err, "kustomization.yaml lists %s", f)
	}
}
