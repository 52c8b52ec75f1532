package install

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// targetLabels are added by Prometheus and the Prometheus Operator when they
// scrape (PodMonitor/ServiceMonitor), not by the code.
var targetLabels = []string{"job", "instance", "namespace", "pod", "container", "endpoint", "service", "le", "quantile"}

var (
	reString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	reVariable = regexp.MustCompile(`\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*`)
	reSelector = regexp.MustCompile(`\{[^{}]*\}`)
	reMatcher  = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)`)
	reGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	reRange    = regexp.MustCompile(`\[[^\]]*\]`)
	reIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	keywords   = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
		"group_left", "group_right", "inf", "nan", "atan2"}
)

// promQLNames returns the metric names and label names a PromQL expression
// (or a Grafana label_values(...) query) refers to. It is a scanner, not a
// parser: strings, Grafana variables, selectors, groupings and ranges are cut
// out first, and any remaining identifier not followed by "(" is a metric.
func promQLNames(expr string) (metrics, labels []string) {
	if m := regexp.MustCompile(`^\s*label_values\(\s*([^,()]+?)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$`).FindStringSubmatch(expr); m != nil {
		ms, ls := promQLNames(m[1])
		return ms, append(ls, m[2])
	}
	e := reString.ReplaceAllString(expr, `""`)
	e = reVariable.ReplaceAllString(e, "")
	for _, sel := range reSelector.FindAllString(e, -1) {
		for _, m := range reMatcher.FindAllStringSubmatch(sel, -1) {
			labels = append(labels, m[1])
		}
	}
	e = reSelector.ReplaceAllString(e, " ")
	for _, g := range reGrouping.FindAllStringSubmatch(e, -1) {
		for _, l := range strings.Split(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
	}
	e = reGrouping.ReplaceAllString(e, " ")
	e = reRange.ReplaceAllString(e, " ")
	for _, loc := range reIdent.FindAllStringIndex(e, -1) {
		id := e[loc[0]:loc[1]]
		rest := strings.TrimLeft(e[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || slices.Contains(keywords, strings.ToLower(id)) {
			continue
		}
		if loc[0] > 0 && strings.ContainsAny(e[loc[0]-1:loc[0]], "0123456789.") {
			continue // part of a number like 1e3 or 0.99
		}
		metrics = append(metrics, id)
	}
	return metrics, labels
}

func TestPromQLNames(t *testing.T) {
	tests := map[string]struct {
		expr            string
		metrics, labels []string
	}{
		"ratio": {
			expr:    `sum by (gateway) (rate(a_total{gateway=~"$gateway", code="5xx"}[$__rate_interval])) / sum by (gateway) (rate(a_total[5m]))`,
			metrics: []string{"a_total", "a_total"}, labels: []string{"gateway", "code", "gateway", "gateway"},
		},
		"quantile": {
			expr:    `histogram_quantile(0.99, sum by (le, controller) (rate(x_bucket[1m])))`,
			metrics: []string{"x_bucket"}, labels: []string{"le", "controller"},
		},
		"subquery and compare": {
			expr:    `time() - max by (pod) (last_over_time(timestamp(changes(s_total[2m]) > 0)[1d:1m])) == 1`,
			metrics: []string{"s_total"}, labels: []string{"pod"},
		},
		"label_values": {expr: `label_values(r_total, gateway)`, metrics: []string{"r_total"}, labels: []string{"gateway"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, l := promQLNames(tc.expr)
			if !slices.Equal(m, tc.metrics) || !slices.Equal(l, tc.labels) {
				t.Errorf("got metrics %v labels %v, want %v %v", m, l, tc.metrics, tc.labels)
			}
		})
	}
}

// dashboardQueries returns every PromQL expression and variable query in a
// Grafana dashboard, keyed by where it sits.
func dashboardQueries(t *testing.T, file string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	out := map[string]string{}
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if title, ok := x["title"].(string); ok {
				where += "/" + title
			} else if name, ok := x["name"].(string); ok {
				where += "/$" + name
			}
			for k, c := range x {
				s, isStr := c.(string)
				switch {
				case isStr && k == "expr":
					out[where+" "+x["refId"].(string)] = s
				case isStr && k == "query" && strings.HasPrefix(s, "label_values("):
					out[where] = s
				default:
					walk(where, c)
				}
			}
		case []any:
			for _, c := range x {
				walk(where, c)
			}
		}
	}
	walk("", dash)
	return out
}

// TestDashboardMetrics: every metric and label the Grafana dashboard queries
// is exported by the code as it is now (Portico's packages and
// controller-runtime, read from source), so a renamed metric breaks this test
// instead of silently blanking a panel.
func TestDashboardMetrics(t *testing.T) {
	exported, wrapLabels := exportedMetrics(t)
	series := map[string]metric{}
	for name, m := range exported {
		for _, s := range m.series(name) {
			series[s] = m
		}
	}
	queries := dashboardQueries(t, filepath.Join(root, "config", "grafana", "portico-dashboard.json"))
	if len(queries) < 10 {
		t.Fatalf("found only %d queries in the dashboard", len(queries))
	}
	keys := make([]string, 0, len(queries))
	for k := range queries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	used := map[string]bool{}
	for _, where := range keys {
		metrics, labels := promQLNames(queries[where])
		if len(metrics) == 0 {
			t.Errorf("%s: no metric in %q", where, queries[where])
		}
		allowed := slices.Concat(targetLabels, wrapLabels)
		for _, name := range metrics {
			m, ok := series[name]
			if !ok {
				t.Errorf("%s: %s is not exported by the code (query %q)", where, name, queries[where])
				continue
			}
			used[name] = true
			allowed = append(allowed, m.labels...)
		}
		for _, l := range labels {
			if !slices.Contains(allowed, l) {
				t.Errorf("%s: label %q is not on %v (query %q)", where, l, metrics, queries[where])
			}
		}
	}
	// Every Portico metric deserves a panel; name the ones without (a log,
	// not a failure, so adding a metric never breaks the build).
	for name := range exported {
		if strings.HasPrefix(name, "portico_") && !slices.ContainsFunc(exported[name].series(name), func(s string) bool { return used[s] }) {
			t.Logf("%s (%s) is exported but on no dashboard panel", name, exported[name].where)
		}
	}
}
