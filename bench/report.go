package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// ReportVersion is bumped when the JSON shape changes incompatibly.
const ReportVersion = 1

// Report is everything one `fieldvault bench` invocation measured. It is
// what --json writes.
type Report struct {
	Version   int       `json:"version"`
	StartedAt time.Time `json:"started_at"`
	Command   []string  `json:"command,omitempty"`
	Machine   Machine   `json:"machine"`
	// MachineAfter is the load when the run ended.
	LoadAfter  string          `json:"load_after,omitempty"`
	Config     Config          `json:"config"`
	Prefill    *PrefillResult  `json:"prefill,omitempty"`
	Results    []*Result       `json:"results"`
	Comparison []ComparisonRow `json:"comparison,omitempty"`
	Rewrap     *RewrapResult   `json:"rewrap,omitempty"`
	Notes      []string        `json:"notes,omitempty"`
	Extra      map[string]any  `json:"extra,omitempty"`
}

// Config is the invocation's settings, as reported.
type Config struct {
	Label       string  `json:"label,omitempty"`
	Scenario    string  `json:"scenario"`
	Target      string  `json:"target"` // the fieldvault address, or "started"/"in-process"
	Store       string  `json:"store,omitempty"`
	BatchSize   int     `json:"batch_size"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate,omitempty"`
	DurationS   float64 `json:"duration_s,omitempty"`
	Requests    int64   `json:"requests,omitempty"`
	WarmupS     float64 `json:"warmup_s"`
	Category    string  `json:"category"`
	ReadRatio   float64 `json:"read_ratio,omitempty"`
	Distinct    int     `json:"distinct,omitempty"`
	Subjects    int     `json:"subjects"`
	Prefill     int64   `json:"prefill,omitempty"`
	Baseline    string  `json:"baseline,omitempty"`
	PayloadMean float64 `json:"payload_mean_bytes,omitempty"`
}

// Result is one measured run against one target.
type Result struct {
	Label string `json:"label"`
	// Target is "fieldvault" or "transit".
	Target string `json:"target"`
	// Operation is what each request did, e.g. "tokenize" or
	// "transit encrypt batch_input".
	Operation      string  `json:"operation"`
	BatchSize      int     `json:"batch_size"`
	Mode           string  `json:"mode"` // closed | open
	Concurrency    int     `json:"concurrency"`
	TargetRate     float64 `json:"target_rate,omitempty"`
	WarmupS        float64 `json:"warmup_s"`
	DurationS      float64 `json:"duration_s"`
	Requests       int64   `json:"requests"`
	OK             int64   `json:"ok"`
	Fields         int64   `json:"fields"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	FieldsPerSec   float64 `json:"fields_per_sec"`
	Latency        Latency `json:"latency"`
	// ServerCPUPerReqUs is the server's CPU time per successful request
	// (µs), when the bench started it as a child. ClientCPUPerReqUs is
	// this process's: the load generator, plus the server with
	// --inprocess (then ServerCPUPerReqUs is 0).
	ServerCPUPerReqUs float64           `json:"server_cpu_us_per_request,omitempty"`
	ClientCPUPerReqUs float64           `json:"client_cpu_us_per_request,omitempty"`
	Errors            map[string]int64  `json:"errors"`
	Distribution      []PercentilePoint `json:"distribution,omitempty"`
	Series            []SeriesPoint     `json:"series,omitempty"`

	// hist is the latency histogram (not in the JSON).
	hist *Histogram
}

// Latency is the latency summary of the successful requests, in
// milliseconds.
type Latency struct {
	Count  uint64  `json:"count"`
	MinMs  float64 `json:"min_ms"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p99_9_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// PercentilePoint is one point of the latency distribution.
type PercentilePoint struct {
	Quantile float64 `json:"q"`
	Ms       float64 `json:"ms"`
}

// SeriesPoint is one interval of the run (T is the interval's end, seconds
// from the start of the warm-up).
type SeriesPoint struct {
	T              float64 `json:"t"`
	Warmup         bool    `json:"warmup,omitempty"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	FieldsPerSec   float64 `json:"fields_per_sec"`
	ErrorsPerSec   float64 `json:"errors_per_sec,omitempty"`
	P50Ms          float64 `json:"p50_ms"`
	P99Ms          float64 `json:"p99_ms"`
}

// PrefillResult is the loading of tokens before the measurement.
type PrefillResult struct {
	Tokens       int64   `json:"tokens"`
	BatchSize    int     `json:"batch_size"`
	Concurrency  int     `json:"concurrency"`
	Seconds      float64 `json:"seconds"`
	TokensPerSec float64 `json:"tokens_per_sec"`
	Errors       int64   `json:"errors"`
}

// RewrapResult is a rewrap job after a rotation.
type RewrapResult struct {
	Category     string  `json:"category"`
	Scanned      int64   `json:"scanned"`
	Moved        int64   `json:"moved"`
	Seconds      float64 `json:"seconds"`
	TokensPerSec float64 `json:"tokens_per_sec"`
	State        string  `json:"state"`
}

// ComparisonRow sets a fieldvault figure beside the Transit one.
type ComparisonRow struct {
	// Label is the scenario's label.
	Label      string  `json:"label,omitempty"`
	Metric     string  `json:"metric"`
	Fieldvault float64 `json:"fieldvault"`
	Transit    float64 `json:"transit"`
	// Ratio is fieldvault / transit.
	Ratio float64 `json:"ratio"`
	// HigherIsBetter tells how to read the ratio.
	HigherIsBetter bool `json:"higher_is_better"`
}

// Compare builds the side-by-side rows of a fieldvault result and a
// baseline result.
func Compare(fv, tr *Result) []ComparisonRow {
	row := func(m string, a, b float64, hib bool) ComparisonRow {
		r := ComparisonRow{Metric: m, Fieldvault: a, Transit: b, HigherIsBetter: hib}
		if b != 0 {
			r.Ratio = a / b
		}
		return r
	}
	return []ComparisonRow{
		row("requests/s", fv.RequestsPerSec, tr.RequestsPerSec, true),
		row("fields/s", fv.FieldsPerSec, tr.FieldsPerSec, true),
		row("p50 ms", fv.Latency.P50Ms, tr.Latency.P50Ms, false),
		row("p90 ms", fv.Latency.P90Ms, tr.Latency.P90Ms, false),
		row("p99 ms", fv.Latency.P99Ms, tr.Latency.P99Ms, false),
		row("p99.9 ms", fv.Latency.P999Ms, tr.Latency.P999Ms, false),
		row("max ms", fv.Latency.MaxMs, tr.Latency.MaxMs, false),
	}
}

// WriteJSON writes the report to path (indented).
func (r *Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// ReadReport reads a report written by WriteJSON.
func ReadReport(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Version != ReportVersion {
		return nil, fmt.Errorf("%s: report version %d, want %d", path, r.Version, ReportVersion)
	}
	return &r, nil
}

func fmtNum(f float64) string {
	switch {
	case f >= 100:
		return groupThousands(fmt.Sprintf("%.0f", f))
	case f >= 10:
		return fmt.Sprintf("%.1f", f)
	default:
		return fmt.Sprintf("%.2f", f)
	}
}

func fmtMs(f float64) string {
	switch {
	case f >= 100:
		return fmt.Sprintf("%.0f", f)
	case f >= 1:
		return fmt.Sprintf("%.2f", f)
	default:
		return fmt.Sprintf("%.3f", f)
	}
}

func groupThousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func fmtCPU(us float64) string {
	if us <= 0 {
		return "-"
	}
	return fmtNum(us)
}

func fmtErrors(m map[string]int64) string {
	if len(m) == 0 {
		return "0"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// WriteText prints the human table.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "machine: %s, %d cores, %s, %s; load %s", r.Machine.CPU, r.Machine.Cores, r.Machine.Kernel,
		r.Machine.Go, r.Machine.Load)
	if r.LoadAfter != "" {
		fmt.Fprintf(w, " (after: %s)", r.LoadAfter)
	}
	fmt.Fprintln(w)
	if p := r.Prefill; p != nil {
		fmt.Fprintf(w, "prefill: %s tokens in %.1fs = %s tokens/s (batches of %d, %d in flight, %d errors)\n",
			groupThousands(fmt.Sprint(p.Tokens)), p.Seconds, fmtNum(p.TokensPerSec), p.BatchSize, p.Concurrency, p.Errors)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\toperation\tbatch\tmode\tconc\tsecs\treq/s\tfields/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\tsrv CPU µs/req\town CPU µs/req\terrors\t")
	for _, x := range r.Results {
		mode := x.Mode
		if x.Mode == "open" {
			mode = fmt.Sprintf("open@%s", fmtNum(x.TargetRate))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			x.Target, x.Operation, x.BatchSize, mode, x.Concurrency, x.DurationS,
			fmtNum(x.RequestsPerSec), fmtNum(x.FieldsPerSec),
			fmtMs(x.Latency.P50Ms), fmtMs(x.Latency.P90Ms), fmtMs(x.Latency.P99Ms), fmtMs(x.Latency.P999Ms),
			fmtMs(x.Latency.MaxMs), fmtCPU(x.ServerCPUPerReqUs), fmtCPU(x.ClientCPUPerReqUs), fmtErrors(x.Errors))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Comparison) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "scenario\tmetric\tfieldvault\ttransit\tfieldvault/transit\t")
		for _, c := range r.Comparison {
			f := fmtNum
			if !c.HigherIsBetter {
				f = fmtMs
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2fx\t\n", c.Label, c.Metric, f(c.Fieldvault), f(c.Transit), c.Ratio)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if rw := r.Rewrap; rw != nil {
		fmt.Fprintf(w, "rewrap %s: %s tokens moved (%s scanned) in %.1fs = %s tokens/s (%s)\n", rw.Category,
			groupThousands(fmt.Sprint(rw.Moved)), groupThousands(fmt.Sprint(rw.Scanned)), rw.Seconds,
			fmtNum(rw.TokensPerSec), rw.State)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}
