// Package monitoring holds the tests that keep Intake's monitoring true to
// the code: the metric catalog docs/metrics.md against the metrics the
// services register (scraped from the all-in-one process, which composes
// every service), both linted with client_golang's promlint and
// `promtool check metrics`; the Grafana dashboard and the Prometheus alert
// rules of deploy/monitoring against the catalog, with `promtool check
// rules` and the rules' unit tests (`promtool test rules`); and the
// PrometheusRule generated from the rules. The package has no code of its
// own; promtool comes from Debian's prometheus package.
package monitoring
