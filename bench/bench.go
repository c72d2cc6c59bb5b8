// Package bench is fieldvault's load harness: it drives a fieldvault server
// over HTTP with the scenarios of `fieldvault bench` (tokenise and
// detokenise, single and batch, mixed, deterministic, rewrap), closed loop
// (fixed concurrency) or open loop (target rate, latency measured from each
// request's intended start so that coordinated omission does not hide
// queueing), and drives HashiCorp Vault's or OpenBao's Transit engine with
// the same payloads and HTTP client settings as the baseline.
//
// Latencies go into an HDR-style log-linear histogram (hist.go); reports are
// a human table, JSON (Report) and a self-contained HTML/SVG plot.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"
)

// Options is one `fieldvault bench` invocation.
type Options struct {
	// Scenarios run in order against the same server.
	Scenarios []string
	// Batch is the fields per request; 0 takes each scenario's default.
	Batch       int
	Concurrency int
	// Rate > 0 runs an open loop at that many requests per second.
	Rate     float64
	Duration time.Duration
	Requests int64
	Warmup   time.Duration
	// Category tokenised ("" = identity.name, contact.email for the
	// deterministic scenario).
	Category string
	// Subjects is the number of subjects tokenise requests spread over;
	// DetSubjects the number of consenting subjects detokenise requests
	// read, each with PoolPerSubject tokens (at least the batch size).
	Subjects       int
	DetSubjects    int
	PoolPerSubject int
	// Distinct is the number of distinct values of the deterministic
	// scenario.
	Distinct int
	// ReadRatio is the share of detokenise requests in the mixed scenario.
	ReadRatio float64
	// Prefill loads that many tokens, in PrefillBatch-sized batches with
	// PrefillConcurrency in flight, before measuring.
	Prefill            int64
	PrefillBatch       int
	PrefillConcurrency int

	// Addr and Token name a running server; Start starts one.
	Addr   string
	Token  string
	Start  bool
	Server ServerOptions

	// Baseline "transit" runs the same work against Vault Transit.
	Baseline     string
	VaultAddr    string
	VaultToken   string
	TransitMount string
	TransitKey   string

	Label      string
	Seed       uint64
	CPUProfile string
	// Progress gets progress lines; Log gets setup messages.
	Progress io.Writer
	Log      io.Writer
	Command  []string
}

// Validate checks the options and fills defaults.
func (o *Options) Validate() error {
	if len(o.Scenarios) == 0 {
		return errors.New("no scenario")
	}
	for _, s := range o.Scenarios {
		known := false
		for _, k := range Scenarios {
			known = known || k.Name == s
		}
		if !known {
			return fmt.Errorf("unknown scenario %q", s)
		}
		if s == ScenarioRewrap && o.Prefill <= 0 {
			return errors.New("the rewrap scenario needs --prefill N (the tokens to rewrap)")
		}
	}
	if o.Concurrency < 1 {
		return errors.New("concurrency must be at least 1")
	}
	if o.Batch < 0 || o.Batch > 100000 {
		return errors.New("batch must be between 1 and 100000")
	}
	if o.Duration <= 0 && o.Requests <= 0 {
		return errors.New("give --duration or --requests")
	}
	if o.ReadRatio < 0 || o.ReadRatio > 1 {
		return errors.New("read ratio must be between 0 and 1")
	}
	if o.Start && o.Addr != "" {
		return errors.New("give --start or --addr, not both")
	}
	if !o.Start && (o.Addr == "" || o.Token == "") {
		return errors.New("give --start, or --addr and --token (or FIELDVAULT_ADDR and FIELDVAULT_TOKEN)")
	}
	switch o.Baseline {
	case "":
	case "transit":
		if o.VaultAddr == "" || o.VaultToken == "" {
			return errors.New("--baseline transit needs --vault-addr and --vault-token (or VAULT_ADDR and VAULT_TOKEN)")
		}
	default:
		return fmt.Errorf("unknown baseline %q (transit)", o.Baseline)
	}
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&o.Subjects, 1000)
	def(&o.DetSubjects, 16)
	def(&o.PoolPerSubject, 1024)
	def(&o.Distinct, 10000)
	def(&o.PrefillBatch, 1000)
	def(&o.PrefillConcurrency, 4)
	if o.TransitKey == "" {
		o.TransitKey = "fieldvault-bench"
	}
	return nil
}

func (o *Options) batch(scenario string) int {
	if o.Batch > 0 {
		return o.Batch
	}
	return DefaultBatch(scenario)
}

func (o *Options) label(scenario string) string {
	if o.Label == "" {
		return scenario
	}
	return o.Label + "/" + scenario
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// Execute runs the invocation and returns its report. An interrupted run
// returns what it measured with the context's error.
func Execute(ctx context.Context, o *Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	rep := &Report{Version: ReportVersion, StartedAt: time.Now().UTC(), Command: o.Command, Machine: ReadMachine(),
		Config: Config{Label: o.Label, Scenario: strings.Join(o.Scenarios, ","), Target: o.Addr, Store: o.Server.Store,
			BatchSize: o.Batch, Concurrency: o.Concurrency, Rate: o.Rate, DurationS: o.Duration.Seconds(),
			Requests: o.Requests, WarmupS: o.Warmup.Seconds(), Category: o.Category, Subjects: o.Subjects,
			Prefill: o.Prefill, Baseline: o.Baseline}}
	if contains(o.Scenarios, ScenarioMixed) {
		rep.Config.ReadRatio = o.ReadRatio
	}
	if contains(o.Scenarios, ScenarioDeterministic) {
		rep.Config.Distinct = o.Distinct
	}
	defer func() { rep.LoadAfter = LoadAverage() }()

	tc, err := TLSFromEnv()
	if err != nil {
		return nil, err
	}
	hc := NewHTTPClient(max(o.Concurrency, o.PrefillConcurrency), tc)
	defer hc.CloseIdleConnections()

	addr, token := o.Addr, o.Token
	var serverCPU func() time.Duration
	if o.Start {
		o.logf("starting fieldvault serve --dev (store %s)...", orDefault(o.Server.Store, "pebble"))
		srv, err := StartServer(ctx, o.Server)
		if err != nil {
			return nil, fmt.Errorf("start server: %w", err)
		}
		defer func() {
			if err := srv.Close(); err != nil {
				o.logf("stopping the server: %v", err)
			}
		}()
		addr, token = srv.Addr, srv.Token
		serverCPU = srv.CPU
		rep.Config.Target = "started"
		if o.Server.InProcess != nil {
			rep.Config.Target = "in-process"
		}
		o.logf("server at %s (data %s, log %s)", addr, srv.DataDir, srv.LogPath)
	}
	fv, err := newFieldvault(addr, token, hc)
	if err != nil {
		return nil, err
	}
	if err := fv.sdk.Ready(ctx); err != nil {
		return nil, fmt.Errorf("fieldvault at %s: %w", addr, err)
	}
	var tr *Transit
	if o.Baseline == "transit" {
		tr = NewTransit(o.VaultAddr, o.VaultToken, o.TransitMount, o.TransitKey, hc)
		if err := tr.Setup(ctx); err != nil {
			return nil, err
		}
	}

	if o.Prefill > 0 {
		p, err := prefill(ctx, o, fv)
		rep.Prefill = p
		if err != nil {
			return rep, err
		}
	}

	for _, sc := range o.Scenarios {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if sc == ScenarioRewrap {
			cat := orDefault(o.Category, "identity.name")
			o.logf("rotating %s and rewrapping %d tokens...", cat, o.Prefill)
			rw, err := fv.rewrap(ctx, cat, 250*time.Millisecond)
			rep.Rewrap = rw
			if err != nil {
				return rep, err
			}
			continue
		}
		if err := runScenario(ctx, o, rep, sc, fv, tr, serverCPU); err != nil {
			return rep, err
		}
	}
	return rep, ctx.Err()
}

// prefill loads o.Prefill tokens before the measurement.
func prefill(ctx context.Context, o *Options, fv *fieldvault) (*PrefillResult, error) {
	wl, err := newWorkload(ScenarioTokenizeBatch, o.Category, o.PrefillBatch, o.Subjects, o.Distinct, 0, fv)
	if err != nil {
		return nil, err
	}
	n := (o.Prefill + int64(o.PrefillBatch) - 1) / int64(o.PrefillBatch)
	o.logf("prefill: %d tokens in %d batches of %d, %d in flight...", o.Prefill, n, o.PrefillBatch, o.PrefillConcurrency)
	res, err := Run(ctx, RunConfig{Label: "prefill", Concurrency: o.PrefillConcurrency, Requests: n,
		Interval: 5 * time.Second, Progress: o.Progress, Seed: o.Seed + 1000, BatchSize: o.PrefillBatch},
		fv.tokenizeOp(wl, o.PrefillBatch))
	if err != nil {
		return nil, err
	}
	var errs int64
	for _, v := range res.Errors {
		errs += v
	}
	p := &PrefillResult{Tokens: res.Fields, BatchSize: o.PrefillBatch, Concurrency: o.PrefillConcurrency,
		Seconds: res.DurationS, TokensPerSec: res.FieldsPerSec, Errors: errs}
	if errs > 0 {
		return p, fmt.Errorf("prefill: %d failed batches (%s)", errs, fmtErrors(res.Errors))
	}
	return p, ctx.Err()
}

func runScenario(ctx context.Context, o *Options, rep *Report, sc string, fv *fieldvault, tr *Transit, serverCPU func() time.Duration) error {
	batch := o.batch(sc)
	wl, err := newWorkload(sc, o.Category, batch, o.Subjects, o.Distinct, o.ReadRatio, fv)
	if err != nil {
		return err
	}
	if needsPools(sc) {
		per := max(o.PoolPerSubject, batch)
		o.logf("%s: registering %d subjects, tokenising %d values each and granting consents (not measured)...",
			sc, o.DetSubjects, per)
		if err := fv.setupPools(ctx, wl, o.DetSubjects, per); err != nil {
			return err
		}
	}
	rc := RunConfig{Label: o.label(sc), Concurrency: o.Concurrency, Rate: o.Rate, Duration: o.Duration,
		Requests: o.Requests, Warmup: o.Warmup, Progress: o.Progress, Seed: o.Seed, BatchSize: batch,
		ServerCPU: serverCPU, ClientCPU: SelfCPU}

	stopProfile := func() {}
	if o.CPUProfile != "" {
		path := o.CPUProfile
		if len(o.Scenarios) > 1 {
			ext := filepath.Ext(path)
			path = strings.TrimSuffix(path, ext) + "." + sc + ext
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		o.logf("CPU profile of this process -> %s", path)
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
	}
	res, err := Run(ctx, rc, fv.op(sc, wl))
	stopProfile()
	if err != nil {
		return err
	}
	res.Target = "fieldvault"
	res.Operation = operationName(sc, batch)
	rep.Results = append(rep.Results, res)
	if tr == nil || ctx.Err() != nil {
		return nil
	}

	// The same work against Transit.
	tc := rc
	tc.Label = o.label(sc) + "/transit"
	tc.ServerCPU = nil
	var op Op
	encrypt := tr.EncryptOp(batch, func(w *Worker) string {
		if wl.deterministic {
			return valueFor(wl.category, fv.run, w.Rand.Uint64N(uint64(wl.distinct)))
		}
		return valueFor(wl.category, fv.run, w.Rand.Uint64N(1<<32))
	})
	opName := "encrypt"
	if needsPools(sc) {
		var values []string
		for _, p := range wl.pools {
			values = append(values, p.values...)
		}
		o.logf("transit: encrypting the %d pool values for the decrypt run (not measured)...", len(values))
		cts, err := tr.Encrypt(ctx, values)
		if err != nil {
			return err
		}
		decrypt := tr.DecryptOp(batch, cts)
		op, opName = decrypt, "decrypt"
		if sc == ScenarioMixed {
			opName = "decrypt+encrypt"
			op = func(ctx context.Context, w *Worker) Outcome {
				if w.Rand.Float64() < wl.readRatio {
					return decrypt(ctx, w)
				}
				return encrypt(ctx, w)
			}
		}
	} else {
		op = encrypt
	}
	tres, err := Run(ctx, tc, op)
	if err != nil {
		return err
	}
	tres.Target = "transit"
	tres.Operation = "transit " + opName
	if batch > 1 {
		tres.Operation += " batch_input"
	}
	rep.Results = append(rep.Results, tres)
	for _, row := range Compare(res, tres) {
		row.Label = o.label(sc)
		rep.Comparison = append(rep.Comparison, row)
	}
	return nil
}

func operationName(sc string, batch int) string {
	name := sc
	switch sc {
	case ScenarioTokenizeBatch:
		name = "tokenize"
	case ScenarioDetokenizeBatch:
		name = "detokenize"
	}
	if batch > 1 && !strings.HasSuffix(name, "-batch") {
		name += fmt.Sprintf(" x%d", batch)
	}
	return name
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
