package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// contractMetric is one row of the metrics contract in README.md.
type contractMetric struct {
	name, typ, status string
	labels            []string
}

// metricsContract parses the "Metrics contract" table of README.md.
func metricsContract(t *testing.T) map[string]contractMetric {
	t.Helper()
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Metrics contract\n")
	if !ok {
		t.Fatal(`README.md has no "## Metrics contract" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("^\\|\\s*`([A-Za-z_:][A-Za-z0-9_:]*)`\\s*\\|\\s*([a-z]+)\\s*\\|\\s*([a-z_, ]*?)\\s*\\|\\s*([a-z]+)\\s*\\|")
	out := map[string]contractMetric{}
	for _, l := range strings.Split(section, "\n") {
		m := row.FindStringSubmatch(l)
		if m == nil {
			if strings.HasPrefix(l, "| `") {
				t.Errorf("README.md contract row does not parse: %s", l)
			}
			continue
		}
		var labels []string
		for _, l := range strings.Split(m[3], ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
		if _, dup := out[m[1]]; dup {
			t.Errorf("README.md lists %s twice", m[1])
		}
		out[m[1]] = contractMetric{name: m[1], typ: m[2], labels: labels, status: m[4]}
		switch m[4] {
		case "exported", "contracted", "recorded", "prometheus", "runtime":
		default:
			t.Errorf("README.md: %s has status %q", m[1], m[4])
		}
	}
	if len(out) < 10 {
		t.Fatalf("README.md contract lists only %d metrics", len(out))
	}
	return out
}

// codeMetric is a metric registered by cmd/fieldvault.
type codeMetric struct {
	typ    string
	labels []string
}

// evalString evaluates a string expression made of literals, + and the
// parameters bound in env; false when it is anything else.
func evalString(e ast.Expr, env map[string]string) (string, bool) {
	switch x := e.(type) {
	case *ast.BasicLit:
		if x.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(x.Value)
		return s, err == nil
	case *ast.ParenExpr:
		return evalString(x.X, env)
	case *ast.Ident:
		s, ok := env[x.Name]
		return s, ok
	case *ast.BinaryExpr:
		if x.Op != token.ADD {
			return "", false
		}
		l, ok1 := evalString(x.X, env)
		r, ok2 := evalString(x.Y, env)
		return l + r, ok1 && ok2
	}
	return "", false
}

// codeMetrics parses cmd/fieldvault's non-test Go files for
// prometheus.NewXxx(Vec) calls: the name from the Opts literal, the type from
// the constructor, the labels from the []string literal. A name built from a
// function's string parameters ("fieldvault_" + subsystem + "_errors_total")
// is resolved once for every call of that function with literal arguments.
func codeMetrics(t *testing.T) map[string]codeMetric {
	t.Helper()
	dir := filepath.Join(repoRoot, "cmd", "fieldvault")
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	// The string parameters of every function, and the bindings of its calls.
	params := map[string][]string{}
	for _, f := range files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv != nil {
				continue
			}
			var names []string
			for _, fld := range fd.Type.Params.List {
				for _, n := range fld.Names {
					names = append(names, n.Name)
				}
				if len(fld.Names) == 0 {
					names = append(names, "_")
				}
			}
			params[fd.Name.Name] = names
		}
	}
	bindings := map[string][]map[string]string{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			id, ok := call.Fun.(*ast.Ident)
			if !ok || params[id.Name] == nil {
				return true
			}
			env := map[string]string{}
			for i, a := range call.Args {
				if s, ok := evalString(a, nil); ok && i < len(params[id.Name]) {
					env[params[id.Name][i]] = s
				}
			}
			bindings[id.Name] = append(bindings[id.Name], env)
			return true
		})
	}

	types := map[string]string{"NewCounter": "counter", "NewGauge": "gauge", "NewHistogram": "histogram", "NewSummary": "summary"}
	out := map[string]codeMetric{}
	for _, f := range files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			envs := []map[string]string{nil}
			if fd.Recv == nil && len(bindings[fd.Name.Name]) > 0 {
				envs = bindings[fd.Name.Name]
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); !ok || id.Name != "prometheus" {
					return true
				}
				typ, ok := types[strings.TrimSuffix(sel.Sel.Name, "Vec")]
				if !ok || len(call.Args) == 0 {
					return true
				}
				opts, ok := call.Args[0].(*ast.CompositeLit)
				if !ok {
					t.Errorf("%s: %s with non-literal options", fset.Position(call.Pos()), sel.Sel.Name)
					return true
				}
				for _, env := range envs {
					parts := map[string]string{}
					for _, e := range opts.Elts {
						kv, ok := e.(*ast.KeyValueExpr)
						if !ok {
							continue
						}
						k, _ := kv.Key.(*ast.Ident)
						if k == nil || (k.Name != "Name" && k.Name != "Namespace" && k.Name != "Subsystem") {
							continue
						}
						v, ok := evalString(kv.Value, env)
						if !ok {
							t.Errorf("%s: cannot resolve the metric %s", fset.Position(kv.Pos()), k.Name)
						}
						parts[k.Name] = v
					}
					name := parts["Name"]
					if parts["Subsystem"] != "" {
						name = parts["Subsystem"] + "_" + name
					}
					if parts["Namespace"] != "" {
						name = parts["Namespace"] + "_" + name
					}
					var labels []string
					if len(call.Args) > 1 {
						if l, ok := call.Args[1].(*ast.CompositeLit); ok {
							for _, e := range l.Elts {
								s, ok := evalString(e, env)
								if !ok {
									t.Errorf("%s: cannot resolve a label of %s", fset.Position(e.Pos()), name)
								}
								labels = append(labels, s)
							}
						}
					}
					out[name] = codeMetric{typ: typ, labels: labels}
				}
				return true
			})
		}
	}
	if len(out) == 0 || out["fieldvault_decisions_total"].typ != "counter" {
		t.Fatalf("did not find fieldvault_decisions_total in %s: found %v", dir, out)
	}
	return out
}

// runtimeMetrics gathers what client_golang's Go and process collectors,
// the ones cmd/fieldvault registers, really expose.
func runtimeMetrics(t *testing.T) map[string]string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, mf := range mfs {
		out[mf.GetName()] = strings.ToLower(mf.GetType().String())
	}
	return out
}

func TestMetricsContract(t *testing.T) {
	contract := metricsContract(t)
	code := codeMetrics(t)
	runtime := runtimeMetrics(t)
	for name, cm := range code {
		c, ok := contract[name]
		if !ok {
			t.Errorf("cmd/fieldvault/metrics.go registers %s, which README.md's contract does not list", name)
			continue
		}
		if c.status != "exported" {
			t.Errorf("%s is exported by the code but listed as %s", name, c.status)
		}
		if c.typ != cm.typ {
			t.Errorf("%s is a %s in the code, a %s in README.md", name, cm.typ, c.typ)
		}
		if !slices.Equal(c.labels, cm.labels) {
			t.Errorf("%s has labels %v in the code, %v in README.md", name, cm.labels, c.labels)
		}
	}
	recorded := recordedNames(t)
	for name, c := range contract {
		switch c.status {
		case "exported":
			if _, ok := code[name]; !ok {
				t.Errorf("README.md says %s is exported, but cmd/fieldvault/metrics.go does not register it", name)
			}
		case "contracted":
			if !strings.HasPrefix(name, "fieldvault_") {
				t.Errorf("contracted metric %s lacks the fieldvault_ prefix", name)
			}
			if _, ok := code[name]; ok {
				t.Logf("note: %s is now exported by the code: mark it exported in README.md", name)
			}
		case "recorded":
			if !recorded[name] {
				t.Errorf("README.md says %s is recorded, but rules.yml records no such series", name)
			}
		case "runtime":
			if typ, ok := runtime[name]; !ok {
				t.Errorf("README.md lists %s, which client_golang's Go and process collectors do not expose", name)
			} else if typ != c.typ {
				t.Errorf("%s is a %s, README.md says %s", name, typ, c.typ)
			}
		case "prometheus":
			if name != "up" {
				t.Errorf("%s: only up is synthesised by Prometheus here", name)
			}
		}
	}
	for name := range recorded {
		if _, ok := contract[name]; !ok {
			t.Errorf("rules.yml records %s, which README.md's contract does not list", name)
		}
	}
}

var (
	promqlStrings  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promqlBraces   = regexp.MustCompile(`\{[^{}]*\}`)
	promqlBrackets = regexp.MustCompile(`\[[^\[\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promqlIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	labelValues    = regexp.MustCompile(`^\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)`)
	promqlKeywords = map[string]bool{"and": true, "or": true, "unless": true, "by": true, "without": true,
		"on": true, "ignoring": true, "group_left": true, "group_right": true, "offset": true, "bool": true,
		"inf": true, "nan": true, "atan2": true, "start": true, "end": true}
)

// promqlMetricNames returns the metric names a PromQL expression (or a
// Grafana label_values() query) selects. It strips strings, label matchers,
// ranges and grouping clauses, then keeps the identifiers that are not
// functions, keywords, numbers, durations or $variables.
func promqlMetricNames(expr string) []string {
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		return []string{m[1]}
	}
	s := promqlStrings.ReplaceAllString(expr, `""`)
	for prev := ""; prev != s; {
		prev = s
		s = promqlBraces.ReplaceAllString(s, "")
		s = promqlBrackets.ReplaceAllString(s, "")
	}
	s = promqlGrouping.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range promqlIdent.FindAllStringIndex(s, -1) {
		id := s[loc[0]:loc[1]]
		if loc[0] > 0 {
			if c := s[loc[0]-1]; c == '$' || c == '.' || (c >= '0' && c <= '9') {
				continue // $var, 1.5e3, 5m
			}
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		if promqlKeywords[strings.ToLower(id)] {
			continue
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func TestPromQLMetricNames(t *testing.T) {
	cases := []struct{ expr, want string }{
		{`up{job="fieldvault"} == 0`, "up"},
		{`sum by (job, reason) (rate(fieldvault_decisions_total{decision="DENY"}[10m]))`, "fieldvault_decisions_total"},
		{`histogram_quantile(0.99, sum by (job, route, le) (rate(x_bucket{route=~".* /v1/.*"}[5m]))) > 0.5
		  and on (job, route) sum by (job, route) (rate(x_count[5m])) > 0.05`, "x_bucket x_count"},
		{`a unless a offset 5m and on (job, instance) (up offset 5m == 1) or increase(b[5m])`, "a b up"},
		{`changes((sum by (job) (increase(c{route="GET /readyz", code!="200"}[2m])) > bool 0)[30m:1m]) >= 4`, "c"},
		{`rate(d{job=~"$job"}[$__rate_interval]) * 1e3`, "d"},
		{`label_values(fieldvault_http_requests_total{job=~"$job"}, instance)`, "fieldvault_http_requests_total"},
		{`fieldvault:rewrap_progress:ratio{instance="a"} / clamp_min(e, 1)`, "e fieldvault:rewrap_progress:ratio"},
		{`sum(f) by (instance) / ignoring(code) group_left sum without (code) (g)`, "f g"},
		{`h{label="a{b}[c] and d"}`, "h"},
	}
	for _, c := range cases {
		want := strings.Fields(c.want)
		slices.Sort(want)
		if got := promqlMetricNames(c.expr); !slices.Equal(got, want) {
			t.Errorf("promqlMetricNames(%q) = %v, want %v", c.expr, got, want)
		}
	}
}

// inContract reports whether a selected series belongs to a contract metric
// (a histogram through _bucket/_sum/_count, a summary through _sum/_count).
func inContract(contract map[string]contractMetric, name string) bool {
	if _, ok := contract[name]; ok {
		return true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if c, ok := contract[base]; ok && (c.typ == "histogram" || c.typ == "summary" && suf != "_bucket") {
				return true
			}
		}
	}
	return false
}

func TestInContract(t *testing.T) {
	c := map[string]contractMetric{"h": {typ: "histogram"}, "s": {typ: "summary"}, "c": {typ: "counter"}}
	for name, want := range map[string]bool{"h": true, "h_bucket": true, "h_count": true, "s_sum": true,
		"s_bucket": false, "c": true, "c_count": false, "x": false} {
		if got := inContract(c, name); got != want {
			t.Errorf("inContract(%s) = %v, want %v", name, got, want)
		}
	}
}

// alertRules returns the rule groups of rules.yml.
func ruleGroups(t *testing.T) []any {
	t.Helper()
	groups := getList(readYAML(t, "prometheus/rules.yml"), "groups")
	if len(groups) == 0 {
		t.Fatal("rules.yml has no groups")
	}
	return groups
}

func recordedNames(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, g := range ruleGroups(t) {
		for _, r := range getList(g, "rules") {
			if n := getStr(r, "record"); n != "" {
				out[n] = true
			}
		}
	}
	return out
}

func TestAlertRules(t *testing.T) {
	contract := metricsContract(t)
	alerts := map[string]bool{}
	used := map[string]bool{}
	for _, g := range ruleGroups(t) {
		if getStr(g, "name") == "" {
			t.Error("a rule group without a name")
		}
		for _, r := range getList(g, "rules") {
			name := getStr(r, "alert") + getStr(r, "record")
			expr := getStr(r, "expr")
			if strings.TrimSpace(expr) == "" {
				t.Errorf("rule %s has no expr", name)
			}
			for _, m := range promqlMetricNames(expr) {
				used[m] = true
				if !inContract(contract, m) {
					t.Errorf("rule %s uses %s, which is not in README.md's metrics contract", name, m)
				}
			}
			if getStr(r, "record") != "" {
				if !strings.HasPrefix(name, "fieldvault:") {
					t.Errorf("recorded series %s does not follow fieldvault:<metric>:<op>", name)
				}
				continue
			}
			if getStr(r, "alert") == "" {
				t.Errorf("a rule that neither records nor alerts: %v", r)
				continue
			}
			if alerts[name] {
				t.Errorf("alert %s is defined twice", name)
			}
			alerts[name] = true
			if getStr(r, "for") == "" {
				t.Errorf("alert %s has no for", name)
			}
			switch sev := getStr(r, "labels", "severity"); sev {
			case "critical", "warning", "info":
			default:
				t.Errorf("alert %s has severity %q", name, sev)
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(getStr(r, "annotations", a)) == "" {
					t.Errorf("alert %s has no %s annotation", name, a)
				}
			}
		}
	}
	// The alerts the deployment promises, and the signals they watch.
	for alert, metric := range map[string]string{
		"FieldvaultAuditUnavailable":          `reason="AUDIT_UNAVAILABLE"`,
		"FieldvaultDenialSpike":               "fieldvault:deny_rate1d:by_reason",
		"FieldvaultStoreErrors":               `code="503"`,
		"FieldvaultStoreUnavailableDecisions": `reason="STORE_UNAVAILABLE"`,
		"FieldvaultKEKErrors":                 "fieldvault_kek_errors_total",
		"FieldvaultRewrapStalled":             "fieldvault_rewrap_tokens_done",
		"FieldvaultReadinessFlapping":         `route="GET /readyz"`,
		"FieldvaultHighP99Latency":            "histogram_quantile(0.99",
	} {
		if !alerts[alert] {
			t.Errorf("alert %s is missing", alert)
			continue
		}
		if !strings.Contains(alertExpr(t, alert), metric) {
			t.Errorf("alert %s does not watch %s", alert, metric)
		}
	}
	for _, m := range []string{"fieldvault_rewrap_running", "fieldvault_rewrap_tokens_total", "fieldvault_decisions_total",
		"fieldvault_http_requests_total", "fieldvault_http_request_duration_seconds_bucket"} {
		if !used[m] {
			t.Errorf("no rule uses %s", m)
		}
	}
}

func alertExpr(t *testing.T, alert string) string {
	for _, g := range ruleGroups(t) {
		for _, r := range getList(g, "rules") {
			if getStr(r, "alert") == alert {
				return getStr(r, "expr")
			}
		}
	}
	return ""
}

// dashboardQueries returns every query of the dashboard: panel targets
// (nested rows too) and templating queries.
func dashboardQueries(t *testing.T, dash map[string]any) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	var walk func(panels []any)
	walk = func(panels []any) {
		for _, p := range panels {
			for _, tg := range getList(p, "targets") {
				out[getStr(p, "title")] = append(out[getStr(p, "title")], getStr(tg, "expr"))
			}
			walk(getList(p, "panels"))
		}
	}
	walk(getList(dash, "panels"))
	for _, v := range getList(dash, "templating", "list") {
		q := getStr(v, "query", "query")
		if q == "" {
			q = getStr(v, "query")
		}
		if q != "" {
			out["$"+getStr(v, "name")] = append(out["$"+getStr(v, "name")], q)
		}
	}
	return out
}

func TestDashboard(t *testing.T) {
	contract := metricsContract(t)
	dash := readJSON(t, "grafana/dashboards/fieldvault.json")
	if getStr(dash, "uid") == "" || getStr(dash, "title") == "" {
		t.Error("the dashboard needs a uid and a title")
	}
	ds := readYAML(t, "grafana/provisioning/datasources/prometheus.yml")
	dsUID := getStr(ds, "datasources", 0, "uid")
	if dsUID == "" || getStr(ds, "datasources", 0, "type") != "prometheus" {
		t.Fatal("the provisioned datasource needs a uid and type prometheus")
	}

	type rect struct{ x, y, w, h int }
	var rects []rect
	ids := map[int]string{}
	var panels []any
	var collect func([]any)
	collect = func(ps []any) {
		for _, p := range ps {
			panels = append(panels, p)
			collect(getList(p, "panels"))
		}
	}
	collect(getList(dash, "panels"))
	for _, p := range panels {
		title := getStr(p, "title")
		id := getInt(t, p, "id")
		if prev, dup := ids[id]; dup {
			t.Errorf("panels %q and %q share id %d", prev, title, id)
		}
		ids[id] = title
		r := rect{getInt(t, p, "gridPos", "x"), getInt(t, p, "gridPos", "y"), getInt(t, p, "gridPos", "w"), getInt(t, p, "gridPos", "h")}
		if r.x < 0 || r.w <= 0 || r.x+r.w > 24 || r.h <= 0 {
			t.Errorf("panel %q: gridPos %+v is outside the 24-column grid", title, r)
		}
		for _, o := range rects {
			if r.x < o.x+o.w && o.x < r.x+r.w && r.y < o.y+o.h && o.y < r.y+r.h {
				t.Errorf("panel %q at %+v overlaps another at %+v", title, r, o)
			}
		}
		rects = append(rects, r)
		if getStr(p, "type") == "row" {
			continue
		}
		if len(getList(p, "targets")) == 0 {
			t.Errorf("panel %q has no query", title)
		}
		if u := getStr(p, "datasource", "uid"); u != dsUID {
			t.Errorf("panel %q uses datasource %q, not the provisioned %q", title, u, dsUID)
		}
		for _, tg := range getList(p, "targets") {
			if u := getStr(tg, "datasource", "uid"); u != "" && u != dsUID {
				t.Errorf("a query of panel %q uses datasource %q", title, u)
			}
			if strings.TrimSpace(getStr(tg, "expr")) == "" {
				t.Errorf("panel %q has an empty query", title)
			}
		}
	}

	for _, v := range getList(dash, "templating", "list") {
		if u := getStr(v, "datasource", "uid"); getStr(v, "type") == "query" && u != dsUID {
			t.Errorf("dashboard variable $%s uses datasource %q, not the provisioned %q", getStr(v, "name"), u, dsUID)
		}
	}
	used := map[string]bool{}
	for where, qs := range dashboardQueries(t, dash) {
		for _, q := range qs {
			for _, m := range promqlMetricNames(q) {
				used[m] = true
				if !inContract(contract, m) {
					t.Errorf("dashboard %q queries %s, which is not in README.md's metrics contract", where, m)
				}
			}
		}
	}
	// Every fieldvault metric is on the dashboard.
	for name, c := range contract {
		if !strings.HasPrefix(name, "fieldvault") {
			continue
		}
		seen := used[name]
		if c.typ == "histogram" {
			seen = seen || used[name+"_bucket"]
		}
		if !seen {
			t.Errorf("the dashboard shows nothing of %s", name)
		}
	}
	// The panels the operators asked for.
	titles := strings.ToLower(strings.Join(slices.Collect(func(yield func(string) bool) {
		for _, p := range panels {
			if !yield(getStr(p, "title")) {
				return
			}
		}
	}), "\n"))
	for _, want := range []string{"request rate by route", "p50", "p99", "decisions by decision and reason",
		"tokenised by category", "detokenised by category", "denials by purpose", "audit", "store", "kek",
		"rewrap progress", "go runtime"} {
		if !strings.Contains(titles, want) {
			t.Errorf("no dashboard panel or row titled like %q", want)
		}
	}
	for _, m := range []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "process_cpu_seconds_total"} {
		if !used[m] {
			t.Errorf("the Go runtime row does not show %s", m)
		}
	}
}
