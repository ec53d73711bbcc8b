// Package deploy holds no Go code: its test checks the monitoring files
// next to it (alert rules, their unit tests, the runbook, the Grafana
// dashboard, the Alertmanager config) so they cannot drift from each other
// or from the metrics the code exports.
package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const (
	alertsFile       = "prometheus/alerts.yml"
	alertsTestFile   = "prometheus/alerts_test.yml"
	runbookFile      = "RUNBOOK.md"
	dashboardFile    = "grafana/aether-dashboard.json"
	alertmanagerFile = "alertmanager/alertmanager.yml"
	runbookURLPrefix = "https://github.com/aetherai/aether/blob/main/deploy/RUNBOOK.md#"
)

// externalMetrics are exported by something other than Aether's code.
var externalMetrics = map[string]string{
	"up": "Prometheus, per scrape target",
	"elasticsearch_index_stats_search_query_total":    "prometheus-community/elasticsearch_exporter --es.indices",
	"elasticsearch_index_stats_indexing_delete_total": "prometheus-community/elasticsearch_exporter --es.indices",
}

// needTool returns the path of a command-line tool, failing under CI
// (CI installs it, see .ci/run) and skipping elsewhere.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found but CI is set: .ci/run installs it (apt-get install %s)", name, pkg)
	}
	t.Skipf("%s not installed (apt-get install %s); CI runs this check", name, pkg)
	return ""
}

// run runs tool in dir and returns its standard output; it fails the test
// with both outputs if the tool fails.
func run(t *testing.T, dir, tool string, args ...string) string {
	t.Helper()
	cmd := exec.Command(tool, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(tool), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func TestAlertRulesPromtool(t *testing.T) {
	promtool := needTool(t, "promtool", "prometheus")
	run(t, "prometheus", promtool, "check", "config", "prometheus.yml")
	run(t, "prometheus", promtool, "check", "rules", filepath.Base(alertsFile))
	run(t, "prometheus", promtool, "test", "rules", filepath.Base(alertsTestFile))
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func alerts(t *testing.T) []rule {
	t.Helper()
	var f ruleFile
	readYAML(t, alertsFile, &f)
	var out []rule
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out = append(out, r)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no alerts", alertsFile)
	}
	return out
}

// runbookAnchors returns the GitHub anchors of the runbook's "## " headings.
func runbookAnchors(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(runbookFile)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			anchors[strings.ToLower(strings.ReplaceAll(strings.TrimSpace(h), " ", "-"))] = true
		}
	}
	return anchors
}

// TestAlertsComplete: every alert has a severity, the three annotations,
// a runbook section, and a promtool test that shows it firing.
func TestAlertsComplete(t *testing.T) {
	anchors := runbookAnchors(t)

	var tests struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			Name  string `yaml:"name"`
			Cases []struct {
				Alert     string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, alertsTestFile, &tests)
	if !slices.Contains(tests.RuleFiles, filepath.Base(alertsFile)) {
		t.Errorf("%s does not load %s", alertsTestFile, alertsFile)
	}
	firing, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, c := range tc.Cases {
			if len(c.ExpAlerts) > 0 {
				firing[c.Alert] = true
			} else {
				quiet[c.Alert] = true
			}
		}
	}
	if len(quiet) == 0 {
		t.Errorf("%s: no case shows an alert not firing", alertsTestFile)
	}

	seen := map[string]bool{}
	for _, a := range alerts(t) {
		if seen[a.Alert] {
			t.Errorf("alert %s defined twice", a.Alert)
		}
		seen[a.Alert] = true
		if s := a.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("alert %s: severity %q, want critical or warning (alertmanager.yml routes those)", a.Alert, s)
		}
		for _, k := range []string{"summary", "description", "runbook_url"} {
			if strings.TrimSpace(a.Annotations[k]) == "" {
				t.Errorf("alert %s: no %s annotation", a.Alert, k)
			}
		}
		anchor, ok := strings.CutPrefix(a.Annotations["runbook_url"], runbookURLPrefix)
		switch {
		case !ok:
			t.Errorf("alert %s: runbook_url %q does not start with %s", a.Alert, a.Annotations["runbook_url"], runbookURLPrefix)
		case anchor != strings.ToLower(a.Alert):
			t.Errorf("alert %s: runbook_url anchor %q, want %q", a.Alert, anchor, strings.ToLower(a.Alert))
		case !anchors[anchor]:
			t.Errorf("alert %s: %s has no section \"## %s\"", a.Alert, runbookFile, a.Alert)
		}
		if !firing[a.Alert] {
			t.Errorf("alert %s: no case in %s shows it firing", a.Alert, alertsTestFile)
		}
	}
	for name := range firing {
		if !seen[name] {
			t.Errorf("%s tests unknown alert %s", alertsTestFile, name)
		}
	}
}

type dashboard struct {
	SchemaVersion int    `json:"schemaVersion"`
	UID           string `json:"uid"`
	Title         string `json:"title"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // collapsed rows
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

func (d dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// dashboardExprs returns each query with Grafana's variables replaced by
// values Prometheus accepts, keyed by "panel title #n".
func (d dashboard) exprs() map[string]string {
	r := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$instance", ".*")
	out := map[string]string{}
	for _, p := range d.allPanels() {
		for i, tg := range p.Targets {
			out[fmt.Sprintf("%s #%d", p.Title, i+1)] = r.Replace(tg.Expr)
		}
	}
	return out
}

func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d, want >= 36", d.SchemaVersion)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard without uid or title")
	}
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			hasDS = true
		}
	}
	if !hasDS {
		t.Error(`no "datasource" variable of type datasource for prometheus`)
	}
	ids := map[int]string{}
	queries := 0
	for _, p := range d.allPanels() {
		if prev, ok := ids[p.ID]; ok {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the ${datasource} variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q has an empty query", p.Title)
			}
			queries++
		}
	}
	if queries == 0 {
		t.Fatal("dashboard has no queries")
	}
}

// TestDashboardQueriesParse has promtool parse every dashboard query, as
// recording rules of a throwaway rule file.
func TestDashboardQueriesParse(t *testing.T) {
	promtool := needTool(t, "promtool", "prometheus")
	exprs := readDashboard(t).exprs()
	type rec struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rec
	names := make([]string, 0, len(exprs))
	for k := range exprs {
		names = append(names, k)
	}
	slices.Sort(names)
	for i, k := range names {
		rules = append(rules, rec{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: exprs[k]})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard.yml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, dir, promtool, "check", "rules", "dashboard.yml")
}

var (
	quoted     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	identifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// metricNames returns the metric names an expression reads: identifiers
// named aether_*, elasticsearch_* or up (label values in quotes ignored).
func metricNames(expr string) []string {
	var out []string
	for _, id := range identifier.FindAllString(quoted.ReplaceAllString(expr, `""`), -1) {
		if id == "up" || strings.HasPrefix(id, "aether_") || strings.HasPrefix(id, "elasticsearch_") {
			out = append(out, id)
		}
	}
	return out
}

// goSources returns the text of the repository's non-test Go files.
func goSources(t *testing.T) string {
	t.Helper()
	var sb strings.Builder
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "vendor", "testdata", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sb.Write(b)
		sb.WriteByte('\n')
		return nil
	})
	if err != nil && !errors.Is(err, fs.SkipDir) {
		t.Fatal(err)
	}
	return sb.String()
}

// TestMetricsExist: every metric an alert or a dashboard query reads is
// exported by Aether's code (its name appears as a string literal in a
// non-test Go file), or is listed as external.
func TestMetricsExist(t *testing.T) {
	used := map[string][]string{} // metric -> where
	for _, a := range alerts(t) {
		for _, m := range metricNames(a.Expr) {
			used[m] = append(used[m], "alert "+a.Alert)
		}
	}
	for where, e := range readDashboard(t).exprs() {
		for _, m := range metricNames(e) {
			used[m] = append(used[m], "panel "+where)
		}
	}
	src := goSources(t)
	exported := func(name string) bool { return strings.Contains(src, `"`+name+`"`) }

	names := make([]string, 0, len(used))
	for m := range used {
		names = append(names, m)
	}
	slices.Sort(names)
	for _, m := range names {
		base := m
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if b, ok := strings.CutSuffix(m, suffix); ok && exported(b) {
				base = b // a histogram's series
			}
		}
		if !exported(base) && externalMetrics[base] == "" {
			t.Errorf("metric %s is not exported by any Go file (nor listed as external); used by %s", m, strings.Join(used[m], ", "))
		}
	}
	// The allowlist must not outlive its use.
	for m := range externalMetrics {
		if _, ok := used[m]; !ok {
			t.Errorf("%s is allowed but used by no alert or panel: remove it from externalMetrics", m)
		}
	}
}

func TestMetricNames(t *testing.T) {
	got := metricNames(`sum by (le) (rate(aether_x_bucket{index=~"aether_not_a_metric.*"}[5m])) / up{job="aether"} and on (group) elasticsearch_y`)
	want := []string{"aether_x_bucket", "up", "elasticsearch_y"}
	if !slices.Equal(got, want) {
		t.Errorf("metricNames = %v, want %v", got, want)
	}
}

// TestAlertmanagerConfig: PagerDuty keys come from files, never inline, and
// amtool accepts the file and routes each severity to its receiver.
func TestAlertmanagerConfig(t *testing.T) {
	var cfg struct {
		Receivers []struct {
			Name      string           `yaml:"name"`
			PagerDuty []map[string]any `yaml:"pagerduty_configs"`
		} `yaml:"receivers"`
	}
	readYAML(t, alertmanagerFile, &cfg)
	if len(cfg.Receivers) == 0 {
		t.Fatal("no receivers")
	}
	for _, r := range cfg.Receivers {
		if len(r.PagerDuty) == 0 {
			t.Errorf("receiver %s has no pagerduty_configs", r.Name)
		}
		for _, pd := range r.PagerDuty {
			for _, inline := range []string{"routing_key", "service_key"} {
				if _, ok := pd[inline]; ok {
					t.Errorf("receiver %s: inline %s; use %s_file", r.Name, inline, inline)
				}
			}
			if pd["routing_key_file"] == nil {
				t.Errorf("receiver %s: no routing_key_file", r.Name)
			}
		}
	}

	// amtool comes with Debian's prometheus-alertmanager, which CI installs.
	amtool := needTool(t, "amtool", "prometheus-alertmanager")
	run(t, ".", amtool, "check-config", alertmanagerFile)
	for sev, want := range map[string]string{"critical": "pagerduty-critical", "warning": "pagerduty-warning"} {
		out := strings.TrimSpace(run(t, ".", amtool, "config", "routes", "test", "--config.file="+alertmanagerFile,
			"severity="+sev, "alertname=AetherTest"))
		if out != want {
			t.Errorf("severity=%s routed to %q, want %q", sev, out, want)
		}
	}
}
