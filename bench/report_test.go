package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleResult(label, target string, rps, fps, p99 float64) *Result {
	return &Result{Label: label, Target: target, Operation: "tokenize", BatchSize: 1, Mode: "closed", Concurrency: 32,
		DurationS: 10, Requests: 100, OK: 100, Fields: 100, RequestsPerSec: rps, FieldsPerSec: fps,
		Latency:      Latency{Count: 100, P50Ms: p99 / 4, P90Ms: p99 / 2, P99Ms: p99, P999Ms: p99 * 2, MaxMs: p99 * 3},
		Errors:       map[string]int64{"TIMEOUT": 2},
		Distribution: []PercentilePoint{{0, 0.1}, {0.5, p99 / 4}, {0.9, p99 / 2}, {0.99, p99}},
		Series:       []SeriesPoint{{T: 1, Warmup: true, RequestsPerSec: rps}, {T: 2, RequestsPerSec: rps, P99Ms: p99}},
	}
}

func sampleReport() *Report {
	fv := sampleResult("pebble/tokenize", "fieldvault", 40000, 40000, 3)
	tr := sampleResult("pebble/tokenize/transit", "transit", 8000, 8000, 12)
	return &Report{Version: ReportVersion, StartedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Machine: Machine{CPU: "AMD EPYC", Cores: 2, Kernel: "Linux 6", Go: "go1.26", Load: "3.00 2.00 1.00"},
		Config:  Config{Scenario: "tokenize", BatchSize: 1, Concurrency: 32},
		Results: []*Result{fv, tr}, Comparison: Compare(fv, tr),
		Prefill: &PrefillResult{Tokens: 1000, BatchSize: 1000, Concurrency: 4, Seconds: 2, TokensPerSec: 500},
		Rewrap:  &RewrapResult{Category: "identity.name", Moved: 1000, Scanned: 1000, Seconds: 4, TokensPerSec: 250, State: "done"}}
}

// The JSON report has stable field names and reads back.
func TestReportJSON(t *testing.T) {
	rep := sampleReport()
	path := filepath.Join(t.TempDir(), "r.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	res := raw["results"].([]any)[0].(map[string]any)
	for _, k := range []string{"label", "target", "operation", "batch_size", "mode", "concurrency", "requests_per_sec",
		"fields_per_sec", "latency", "errors", "distribution", "series", "duration_s", "ok"} {
		if _, ok := res[k]; !ok {
			t.Errorf("result has no %q", k)
		}
	}
	lat := res["latency"].(map[string]any)
	for _, k := range []string{"p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "max_ms"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("latency has no %q", k)
		}
	}
	for _, k := range []string{"version", "machine", "config", "comparison", "prefill", "rewrap"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("report has no %q", k)
		}
	}
	if raw["machine"].(map[string]any)["load"] != "3.00 2.00 1.00" {
		t.Error("load missing")
	}
	back, err := ReadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Results[1].Latency.P99Ms != 12 || back.Results[0].Errors["TIMEOUT"] != 2 || back.Rewrap.TokensPerSec != 250 {
		t.Errorf("read back %+v", back.Results[1])
	}
	raw["version"] = 99
	data, _ = json.Marshal(raw)
	_ = os.WriteFile(path, data, 0o644)
	if _, err := ReadReport(path); err == nil {
		t.Error("a report of another version was accepted")
	}
}

func TestCompare(t *testing.T) {
	rows := Compare(sampleResult("a", "fieldvault", 40000, 40000, 3), sampleResult("b", "transit", 8000, 8000, 12))
	got := map[string]ComparisonRow{}
	for _, r := range rows {
		got[r.Metric] = r
	}
	if r := got["requests/s"]; r.Ratio != 5 || !r.HigherIsBetter {
		t.Errorf("requests/s %+v", r)
	}
	if r := got["p99 ms"]; r.Ratio != 0.25 || r.HigherIsBetter {
		t.Errorf("p99 %+v", r)
	}
	if r := Compare(sampleResult("a", "fieldvault", 1, 1, 1), sampleResult("b", "transit", 0, 0, 0))[0]; r.Ratio != 0 {
		t.Errorf("ratio over zero: %v", r.Ratio)
	}
}

func TestTextAndPlot(t *testing.T) {
	rep := sampleReport()
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"load 3.00 2.00 1.00", "40,000", "TIMEOUT=2", "5.00x", "0.25x", "rewrap identity.name", "prefill: 1,000 tokens"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	html := PlotHTML(rep)
	if n := strings.Count(html, "<svg"); n != 3 {
		t.Errorf("%d charts", n)
	}
	if n := strings.Count(html, "<polyline"); n != 3*len(rep.Results) {
		t.Errorf("%d lines, want one per result per chart", n)
	}
	if strings.Contains(html, "<script") || strings.Count(html, "http") != strings.Count(html, `xmlns="http://www.w3.org/2000/svg"`) {
		t.Error("the plot is not self-contained")
	}
	if !strings.Contains(html, "stroke-dasharray") || !strings.Contains(html, "warm-up") {
		t.Error("transit lines are not dashed or the warm-up is not shaded")
	}
}

func TestTargets(t *testing.T) {
	mk := func(label string, rps, fps, p99 float64) *Result {
		return sampleResult(label, "fieldvault", rps, fps, p99)
	}
	tok := mk("pebble/tokenize", 50000, 50000, 3)
	tok.ServerCPUPerReqUs = 40 // 2 cores: 50,000 req/s
	batch := mk("pebble/tokenize-batch", 550, 550000, 100)
	batch.BatchSize, batch.ServerCPUPerReqUs = 1000, 4000 // 500,000 fields/s
	reps := []*Report{{Machine: Machine{Cores: 2}, Results: []*Result{
		tok,
		mk("pebble/detokenize", 30000, 30000, 3),
		batch,
		mk("pebble/detokenize-batch", 400, 400000, 100),
		mk("pebble-prefilled/tokenize", 40000, 40000, 6),
	}}}
	got := map[string]TargetCheck{}
	for _, c := range CheckTargets(reps) {
		got[c.Target] = c
	}
	want := map[string]string{
		"single-field tokenise, embedded, concurrency 32":                 "met",
		"single-field tokenise p99, embedded":                             "met",
		"single-field detokenise with consent and audit, embedded":        "missed",
		"1000-field batches tokenised, embedded":                          "met",
		"1000-field batches tokenised, Redis":                             "not measured",
		"1000-field batches detokenised, embedded":                        "missed",
		"detokenise with audit ÷ tokenise throughput, single field":       "missed", // 30000 / 50000 = 0.6
		"detokenise with audit ÷ tokenise throughput, 1000-field batches": "met",
		"single-field tokenise p99 with the prefilled store":              "missed",
		"single-field detokenise p99 with the prefilled store":            "not measured",
	}
	for name, st := range want {
		if got[name].Status != st {
			t.Errorf("%s: %s (%s), want %s", name, got[name].Status, got[name].Measured, st)
		}
	}
	if c := got["single-field tokenise, embedded, concurrency 32"].Ceiling; !strings.HasPrefix(c, "50,000 req/s") {
		t.Errorf("ceiling %q", c)
	}
	if c := got["1000-field batches tokenised, embedded"].Ceiling; !strings.HasPrefix(c, "500,000 fields/s") {
		t.Errorf("batch ceiling %q", c)
	}
	if c := got["single-field detokenise with consent and audit, embedded"].Ceiling; c != "" {
		t.Errorf("ceiling without a CPU figure: %q", c)
	}
	if len(got) != len(want) {
		t.Errorf("%d targets, want %d", len(got), len(want))
	}
	var b bytes.Buffer
	WriteMarkdownTargets(&b, reps)
	WriteMarkdownReference(&b, reps)
	WriteMarkdownResults(&b, reps)
	out := b.String()
	for _, want := range []string{"**missed**", "reference figure, not measured today", "| 6.49× |", "7,700 req/s", "pebble-prefilled/tokenize"} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
}
