package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Outcome is what one request did.
type Outcome struct {
	// Fields is the number of fields (items) the request processed
	// successfully.
	Fields int
	// Code is "" for success, otherwise an error code: the API's error
	// code, HTTP_<status>, or TRANSPORT.
	Code string
}

// Worker is the per-goroutine state handed to an Op.
type Worker struct {
	ID   int
	Rand *rand.Rand
	// Buf is scratch space an Op may reuse between requests.
	Buf []byte
	// resp holds the last response body.
	resp []byte
}

// Op performs one request.
type Op func(ctx context.Context, w *Worker) Outcome

// RunConfig says how to drive an Op.
type RunConfig struct {
	// Label names the run in progress lines and reports.
	Label string
	// Concurrency is the number of workers: requests in flight at most.
	Concurrency int
	// Rate, when > 0, is the target request rate (open loop): request i is
	// scheduled at start + i/Rate and its latency is measured from that
	// intended start, so time spent waiting for a free worker counts (no
	// coordinated omission). 0 runs a closed loop: each worker sends its
	// next request as soon as the previous one returned.
	Rate float64
	// Duration of the measured phase; ignored when Requests > 0.
	Duration time.Duration
	// Requests, when > 0, ends the measured phase after that many requests.
	Requests int64
	// Warmup runs before the measured phase; its requests are not counted.
	Warmup time.Duration
	// Interval is the time-series bucket width (default 1s).
	Interval time.Duration
	// Progress, if set, gets a progress line every interval.
	Progress io.Writer
	// Seed makes the workers' random streams reproducible.
	Seed uint64
	// BatchSize is the number of fields per request (for reporting).
	BatchSize int
	// ServerCPU and ClientCPU, if set, are sampled when the measurement
	// starts and when the run ends: CPU time per successful request.
	ServerCPU func() time.Duration
	ClientCPU func() time.Duration
}

// Intended returns the intended start offset of request i at rate req/s.
func Intended(i int64, rate float64) time.Duration {
	return time.Duration(math.Round(float64(i) * float64(time.Second) / rate))
}

// ScheduledBefore returns how many requests the open-loop schedule starts
// in [0, d) at rate req/s.
func ScheduledBefore(d time.Duration, rate float64) int64 {
	if d <= 0 {
		return 0
	}
	n := int64(math.Ceil(d.Seconds() * rate))
	// Correct for rounding at the edge.
	for n > 0 && Intended(n-1, rate) >= d {
		n--
	}
	for Intended(n, rate) < d {
		n++
	}
	return n
}

// slot is one interval of the time series.
type slot struct {
	ok, errs, fields int64
	hist             *Histogram
}

// recorder collects outcomes; safe for concurrent use.
type recorder struct {
	mu       sync.Mutex
	start    time.Time
	measure  time.Time // start of the measured phase
	interval time.Duration
	hist     *Histogram
	errors   map[string]int64
	ok       int64
	fields   int64
	attempts int64
	lastEnd  time.Time
	slots    []*slot
}

func newRecorder(start time.Time, warmup, interval time.Duration) *recorder {
	return &recorder{start: start, measure: start.Add(warmup), interval: interval,
		hist: NewHistogram(PreciseBits), errors: map[string]int64{}}
}

// record counts a request that was (intended to be) started at begin and
// finished at end.
func (r *recorder) record(begin, end time.Time, o Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := int(end.Sub(r.start) / r.interval)
	for len(r.slots) <= i {
		r.slots = append(r.slots, &slot{hist: NewHistogram(CoarseBits)})
	}
	s := r.slots[i]
	lat := end.Sub(begin)
	if o.Code == "" {
		s.ok++
		s.fields += int64(o.Fields)
		s.hist.RecordDuration(lat)
	} else {
		s.errs++
	}
	if begin.Before(r.measure) {
		return // warm-up
	}
	r.attempts++
	if end.After(r.lastEnd) {
		r.lastEnd = end
	}
	if o.Code == "" {
		r.ok++
		r.fields += int64(o.Fields)
		r.hist.RecordDuration(lat)
	} else {
		r.errors[o.Code]++
	}
}

// Run drives op as cfg says and returns the measured result.
func Run(ctx context.Context, cfg RunConfig, op Op) (*Result, error) {
	if cfg.Concurrency < 1 {
		return nil, fmt.Errorf("bench: concurrency must be at least 1")
	}
	if cfg.Duration <= 0 && cfg.Requests <= 0 {
		return nil, fmt.Errorf("bench: give a duration or a request count")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Rate < 0 {
		return nil, fmt.Errorf("bench: rate must not be negative")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	start := time.Now()
	rec := newRecorder(start, cfg.Warmup, cfg.Interval)
	measureStart := start.Add(cfg.Warmup)
	var deadline time.Time
	if cfg.Requests <= 0 {
		deadline = measureStart.Add(cfg.Duration)
	}
	// Requests scheduled (open loop) or started (closed loop) after the
	// warm-up; the count mode stops at cfg.Requests.
	var measured atomic.Int64
	var next atomic.Int64 // open loop: next request index
	warmupCount := int64(0)
	if cfg.Rate > 0 {
		warmupCount = ScheduledBefore(cfg.Warmup, cfg.Rate)
	}

	// take reserves the next request and returns its intended start.
	take := func() (time.Time, bool) {
		if cfg.Rate > 0 {
			i := next.Add(1) - 1
			if cfg.Requests > 0 && i >= warmupCount+cfg.Requests {
				return time.Time{}, false
			}
			at := start.Add(Intended(i, cfg.Rate))
			if !deadline.IsZero() && !at.Before(deadline) {
				return time.Time{}, false
			}
			return at, true
		}
		now := time.Now()
		if !deadline.IsZero() && !now.Before(deadline) {
			return time.Time{}, false
		}
		if cfg.Requests > 0 && !now.Before(measureStart) && measured.Add(1) > cfg.Requests {
			return time.Time{}, false
		}
		return now, true
	}

	// CPU meters, read at the start of the measured phase and at the end.
	// The end readings are taken only after sampleStart has returned, so
	// they always follow the start readings; sampled says whether there
	// were start readings at all (a run can end within its warm-up).
	var cpu0 [2]time.Duration
	var sampled bool
	meters := [2]func() time.Duration{cfg.ServerCPU, cfg.ClientCPU}
	cpuStarted := make(chan struct{})
	sctx, stopSampler := context.WithCancel(ctx)
	defer stopSampler()
	sampleStart := func() {
		defer close(cpuStarted)
		if d := time.Until(measureStart); d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
		}
		for i, m := range meters {
			if m != nil {
				cpu0[i] = m()
			}
		}
		sampled = true
	}
	if cfg.Warmup > 0 {
		go sampleStart()
	} else {
		sampleStart()
	}

	var wg sync.WaitGroup
	for id := 0; id < cfg.Concurrency; id++ {
		w := &Worker{ID: id, Rand: rand.New(rand.NewPCG(cfg.Seed, uint64(id)+1))}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				at, ok := take()
				if !ok {
					return
				}
				if d := time.Until(at); d > 0 {
					t := time.NewTimer(d)
					select {
					case <-ctx.Done():
						t.Stop()
						return
					case <-t.C:
					}
				}
				o := op(ctx, w)
				end := time.Now()
				if ctx.Err() != nil {
					return // interrupted: the request did not really fail
				}
				rec.record(at, end, o)
			}
		}()
	}
	done := make(chan struct{})
	var pwg sync.WaitGroup
	if cfg.Progress != nil {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			progress(cfg, rec, done)
		}()
	}
	wg.Wait()
	if time.Now().Before(measureStart) {
		stopSampler() // the run ended within its warm-up
	}
	<-cpuStarted
	var cpu1 [2]time.Duration
	for i, m := range meters {
		if m != nil && sampled {
			cpu1[i] = m()
		}
	}
	cancel()
	close(done)
	pwg.Wait()
	// An interrupted run still reports what it measured; the caller sees
	// its own context's error.
	res := rec.result(cfg, measureStart)
	if res.OK > 0 {
		perReq := func(i int) float64 {
			if meters[i] == nil || !sampled || cpu1[i] < cpu0[i] {
				return 0
			}
			return float64(cpu1[i]-cpu0[i]) / 1e3 / float64(res.OK)
		}
		res.ServerCPUPerReqUs, res.ClientCPUPerReqUs = perReq(0), perReq(1)
	}
	return res, nil
}

// progress prints one line per interval until done.
func progress(cfg RunConfig, rec *recorder, done <-chan struct{}) {
	tty := isTerminal(cfg.Progress)
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	end := "\n"
	if tty {
		end = "\x1b[K\r"
	}
	for {
		select {
		case <-done:
			if tty {
				fmt.Fprint(cfg.Progress, "\x1b[K")
			}
			return
		case now := <-t.C:
			rec.mu.Lock()
			i := int(now.Sub(rec.start)/rec.interval) - 1
			var ok, errs, fields int64
			var p99 time.Duration
			if i >= 0 && i < len(rec.slots) {
				s := rec.slots[i]
				ok, errs, fields = s.ok, s.errs, s.fields
				p99 = time.Duration(s.hist.ValueAt(0.99))
			}
			var totalErr int64
			for _, n := range rec.errors {
				totalErr += n
			}
			phase := ""
			if now.Before(rec.measure) {
				phase = " (warm-up)"
			}
			rec.mu.Unlock()
			perSec := float64(time.Second) / float64(cfg.Interval)
			fmt.Fprintf(cfg.Progress, "[%s] %5.0fs%s  %9.0f req/s  %10.0f fields/s  p99 %-9s  errors %d (last interval %d)%s",
				cfg.Label, now.Sub(rec.start).Seconds(), phase, float64(ok)*perSec, float64(fields)*perSec,
				fmtDur(p99), totalErr, errs, end)
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	}
}

// result summarises the recorder.
func (r *recorder) result(cfg RunConfig, measureStart time.Time) *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	elapsed := r.lastEnd.Sub(measureStart)
	if cfg.Requests <= 0 && cfg.Duration > elapsed {
		// A closed loop's last request ends after the deadline; an open
		// loop's schedule ends at it. Divide by the scheduled window unless
		// the run was cut short.
		elapsed = cfg.Duration
	}
	if elapsed <= 0 {
		elapsed = time.Nanosecond
	}
	res := &Result{
		Label:       cfg.Label,
		BatchSize:   cfg.BatchSize,
		Concurrency: cfg.Concurrency,
		TargetRate:  cfg.Rate,
		Mode:        "closed",
		WarmupS:     cfg.Warmup.Seconds(),
		DurationS:   elapsed.Seconds(),
		Requests:    r.attempts,
		OK:          r.ok,
		Fields:      r.fields,
		Errors:      map[string]int64{},
	}
	if cfg.Rate > 0 {
		res.Mode = "open"
	}
	for k, v := range r.errors {
		res.Errors[k] = v
	}
	res.RequestsPerSec = float64(r.ok) / elapsed.Seconds()
	res.FieldsPerSec = float64(r.fields) / elapsed.Seconds()
	res.hist = r.hist
	res.Latency = summarize(r.hist)
	res.Distribution = distribution(r.hist)
	warmSlots := int(cfg.Warmup / r.interval)
	span := r.lastEnd.Sub(r.start)
	for i, s := range r.slots {
		// The last interval ends with the run; rate it over its real width
		// and drop it when it is a sliver.
		width := r.interval
		if rest := span - time.Duration(i)*r.interval; rest < width {
			if rest < r.interval/4 {
				break
			}
			width = rest
		}
		secs := width.Seconds()
		res.Series = append(res.Series, SeriesPoint{
			T:              (time.Duration(i)*r.interval + width).Seconds(),
			Warmup:         i < warmSlots,
			RequestsPerSec: float64(s.ok) / secs,
			FieldsPerSec:   float64(s.fields) / secs,
			ErrorsPerSec:   float64(s.errs) / secs,
			P50Ms:          ms(s.hist.ValueAt(0.5)),
			P99Ms:          ms(s.hist.ValueAt(0.99)),
		})
	}
	return res
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// summarize reads the standard percentiles.
func summarize(h *Histogram) Latency {
	return Latency{
		Count:  h.Count(),
		MinMs:  ms(h.Min()),
		MeanMs: h.Mean() / 1e6,
		P50Ms:  ms(h.ValueAt(0.50)),
		P90Ms:  ms(h.ValueAt(0.90)),
		P99Ms:  ms(h.ValueAt(0.99)),
		P999Ms: ms(h.ValueAt(0.999)),
		MaxMs:  ms(h.Max()),
	}
}

// distributionQuantiles are the points of the percentile plot: denser
// towards the tail, as HdrHistogram's percentile output is.
func distributionQuantiles() []float64 {
	var qs []float64
	for _, base := range []float64{0, 0.9, 0.99, 0.999, 0.9999} {
		step := (1 - base) / 10
		for k := 0; k < 9; k++ {
			qs = append(qs, base+float64(k)*step)
		}
	}
	qs = append(qs, 0.99999, 1)
	sort.Float64s(qs)
	return qs
}

func distribution(h *Histogram) []PercentilePoint {
	if h.Count() == 0 {
		return nil
	}
	var out []PercentilePoint
	for _, q := range distributionQuantiles() {
		out = append(out, PercentilePoint{Quantile: q, Ms: ms(h.ValueAt(q))})
	}
	return out
}
