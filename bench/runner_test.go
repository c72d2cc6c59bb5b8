package bench

import (
	"context"
	"math"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

func TestIntendedSchedule(t *testing.T) {
	cases := []struct {
		i    int64
		rate float64
		want time.Duration
	}{
		{0, 1000, 0},
		{1, 1000, time.Millisecond},
		{1000, 1000, time.Second},
		{3, 3, time.Second},
		{1, 3, 333333333},
		{2, 3, 666666667},
		{15, 7.5, 2 * time.Second},
		{45_000_000, 46000, time.Duration(45_000_000) * time.Second / 46000},
	}
	for _, c := range cases {
		if got := Intended(c.i, c.rate); got != c.want {
			t.Errorf("Intended(%d, %v) = %v, want %v", c.i, c.rate, got, c.want)
		}
	}
	// Monotonic and evenly spaced: no drift over a long run.
	prev := time.Duration(-1)
	for i := int64(0); i < 100000; i++ {
		d := Intended(i, 46000)
		if d <= prev {
			t.Fatalf("Intended not increasing at %d", i)
		}
		prev = d
	}
	if d := Intended(46000*3600, 46000); d != time.Hour {
		t.Errorf("after an hour at 46k/s the schedule is at %v", d)
	}
}

func TestScheduledBefore(t *testing.T) {
	cases := []struct {
		d    time.Duration
		rate float64
		want int64
	}{
		{0, 100, 0},
		{-time.Second, 100, 0},
		{time.Second, 1000, 1000},       // 0 .. 999 ms
		{1500 * time.Millisecond, 3, 5}, // 0, .333, .667, 1.0, 1.333
		{time.Second, 3, 3},             // 1.0 itself is not before 1s
		{2 * time.Second, 7.5, 15},
		{time.Millisecond, 1000, 1},
		{time.Millisecond + 1, 1000, 2},
	}
	for _, c := range cases {
		if got := ScheduledBefore(c.d, c.rate); got != c.want {
			t.Errorf("ScheduledBefore(%v, %v) = %d, want %d", c.d, c.rate, got, c.want)
		}
	}
}

// stallOp answers at once except the n-th call, which takes stall.
func stallOp(n int64, stall time.Duration) (Op, *atomic.Int64) {
	var calls atomic.Int64
	return func(ctx context.Context, w *Worker) Outcome {
		if calls.Add(1) == n {
			time.Sleep(stall)
		}
		return Outcome{Fields: 1}
	}, &calls
}

// A stall in an open loop delays every request scheduled during it, and
// they are counted as late: the latency is measured from the intended
// start. A closed loop (coordinated omission) sees one slow request.
func TestOpenLoopCountsQueueing(t *testing.T) {
	const stall = 500 * time.Millisecond
	op, _ := stallOp(20, stall)
	res, err := Run(context.Background(), RunConfig{Concurrency: 1, Rate: 200, Duration: 1500 * time.Millisecond}, op)
	if err != nil {
		t.Fatal(err)
	}
	// 100 requests are scheduled during the stall; those in its first half
	// wait at least 250 ms.
	if res.OK < 250 {
		t.Fatalf("only %d requests", res.OK)
	}
	slow := res.hist.CountAtLeast(int64(250 * time.Millisecond))
	if slow < 40 {
		t.Errorf("open loop: %d of %d requests at >= 250 ms; want >= 40 (p90 %.1f ms, max %.1f ms)",
			slow, res.OK, res.Latency.P90Ms, res.Latency.MaxMs)
	}
	if res.Latency.MaxMs < 490 {
		t.Errorf("open loop max %.1f ms, want the whole stall", res.Latency.MaxMs)
	}

	op, calls := stallOp(20, stall)
	res, err = Run(context.Background(), RunConfig{Concurrency: 1, Requests: 300}, op)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 300 || calls.Load() != 300 {
		t.Fatalf("closed loop: %d ok, %d calls, want 300", res.OK, calls.Load())
	}
	if res.Latency.MaxMs < 490 {
		t.Errorf("closed loop max %.1f ms, want the stall", res.Latency.MaxMs)
	}
	if res.Latency.P99Ms >= 250 {
		t.Errorf("closed loop p99 %.1f ms: only one request was slow", res.Latency.P99Ms)
	}
}

// The open-loop schedule decides exactly which requests are warm-up and
// which are measured.
func TestOpenLoopWarmupAndCount(t *testing.T) {
	var calls atomic.Int64
	op := func(ctx context.Context, w *Worker) Outcome { calls.Add(1); return Outcome{Fields: 3} }
	res, err := Run(context.Background(), RunConfig{Concurrency: 4, Rate: 500, Warmup: 200 * time.Millisecond,
		Duration: 400 * time.Millisecond}, op)
	if err != nil {
		t.Fatal(err)
	}
	want := ScheduledBefore(600*time.Millisecond, 500) - ScheduledBefore(200*time.Millisecond, 500)
	if res.Requests != want || res.OK != want || res.Fields != 3*want {
		t.Errorf("measured %d requests (%d ok, %d fields), want %d", res.Requests, res.OK, res.Fields, want)
	}
	if calls.Load() != ScheduledBefore(600*time.Millisecond, 500) {
		t.Errorf("%d calls, want %d", calls.Load(), ScheduledBefore(600*time.Millisecond, 500))
	}
	if res.Mode != "open" || res.TargetRate != 500 {
		t.Errorf("mode %q rate %v", res.Mode, res.TargetRate)
	}

	calls.Store(0)
	res, err = Run(context.Background(), RunConfig{Concurrency: 3, Rate: 1000, Requests: 77, Warmup: 50 * time.Millisecond}, op)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 77 || calls.Load() != 77+ScheduledBefore(50*time.Millisecond, 1000) {
		t.Errorf("count mode: %d measured, %d calls", res.Requests, calls.Load())
	}
}

func TestClosedLoopErrorsAndThroughput(t *testing.T) {
	var n atomic.Int64
	op := func(ctx context.Context, w *Worker) Outcome {
		i := n.Add(1)
		switch {
		case i%10 == 0:
			return Outcome{Code: "TRANSPORT"}
		case i%5 == 0:
			return Outcome{Code: "CONSENT_WITHDRAWN"}
		}
		time.Sleep(time.Millisecond)
		return Outcome{Fields: 10}
	}
	res, err := Run(context.Background(), RunConfig{Concurrency: 2, Requests: 1000}, op)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 1000 || res.OK != 800 || res.Fields != 8000 {
		t.Fatalf("requests %d ok %d fields %d", res.Requests, res.OK, res.Fields)
	}
	if res.Errors["TRANSPORT"] != 100 || res.Errors["CONSENT_WITHDRAWN"] != 100 || len(res.Errors) != 2 {
		t.Errorf("errors %v", res.Errors)
	}
	if got, want := res.FieldsPerSec, 10*res.RequestsPerSec; math.Abs(got-want) > 1e-9*want {
		t.Errorf("fields/s %v, want 10 x req/s = %v", got, want)
	}
	if want := float64(res.OK) / res.DurationS; math.Abs(res.RequestsPerSec-want) > 1e-9*want {
		t.Errorf("req/s %v, want ok/duration %v", res.RequestsPerSec, want)
	}
	// Errors are not in the latency histogram.
	if res.Latency.Count != 800 || res.Latency.MinMs < 1 {
		t.Errorf("latency count %d min %.3f ms", res.Latency.Count, res.Latency.MinMs)
	}
}

// A recorder fed fixed times computes the throughput and the series
// exactly.
func TestRecorderArithmetic(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := newRecorder(t0, time.Second, time.Second)
	// Warm-up: 5 requests in the first second.
	for i := 0; i < 5; i++ {
		at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		r.record(at, at.Add(2*time.Millisecond), Outcome{Fields: 1})
	}
	// Measured: 20 requests over two seconds, 2 of them errors.
	for i := 0; i < 20; i++ {
		at := t0.Add(time.Second + time.Duration(i)*100*time.Millisecond)
		o := Outcome{Fields: 4}
		if i%10 == 9 {
			o = Outcome{Code: "HTTP_503"}
		}
		r.record(at, at.Add(time.Duration(i+1)*time.Millisecond), o)
	}
	res := r.result(RunConfig{Label: "x", Concurrency: 1, Duration: 2 * time.Second, Warmup: time.Second, BatchSize: 4}, t0.Add(time.Second))
	if res.Requests != 20 || res.OK != 18 || res.Fields != 72 || res.Errors["HTTP_503"] != 2 {
		t.Fatalf("%+v", res)
	}
	if res.DurationS != 2 || res.RequestsPerSec != 9 || res.FieldsPerSec != 36 {
		t.Errorf("duration %v req/s %v fields/s %v", res.DurationS, res.RequestsPerSec, res.FieldsPerSec)
	}
	if len(res.Series) != 3 || !res.Series[0].Warmup || res.Series[1].Warmup || res.Series[0].RequestsPerSec != 5 ||
		res.Series[1].RequestsPerSec != 9 || res.Series[1].ErrorsPerSec != 1 ||
		// The last interval ends with the last request, at 2.92 s.
		math.Abs(res.Series[2].T-2.92) > 1e-9 || math.Abs(res.Series[2].FieldsPerSec-36/0.92) > 1e-9 {
		t.Errorf("series %+v", res.Series)
	}
	if res.Latency.MaxMs != 19 || res.Latency.MinMs != 1 || res.Latency.P50Ms < 9 || res.Latency.P50Ms > 9.01 {
		t.Errorf("latency %+v", res.Latency)
	}
	// A last interval narrower than a quarter of the others is left out.
	r.record(t0.Add(3*time.Second), t0.Add(3050*time.Millisecond), Outcome{Fields: 4})
	if res := r.result(RunConfig{Duration: 2 * time.Second, Warmup: time.Second}, t0.Add(time.Second)); len(res.Series) != 3 {
		t.Errorf("%d intervals, want the sliver dropped", len(res.Series))
	}
}

func TestCPUPerRequest(t *testing.T) {
	var calls atomic.Int64
	meter := func(step time.Duration) func() time.Duration {
		var v time.Duration
		return func() time.Duration {
			calls.Add(1)
			v += step
			return v
		}
	}
	op := func(ctx context.Context, w *Worker) Outcome { return Outcome{Fields: 1} }
	res, err := Run(context.Background(), RunConfig{Concurrency: 2, Requests: 100,
		ServerCPU: meter(time.Second), ClientCPU: meter(time.Millisecond)}, op)
	if err != nil {
		t.Fatal(err)
	}
	// One reading at the start of the measurement and one at the end.
	if calls.Load() != 4 || res.ServerCPUPerReqUs != 10000 || res.ClientCPUPerReqUs != 10 {
		t.Errorf("%d readings, server %v µs/req, client %v µs/req", calls.Load(), res.ServerCPUPerReqUs, res.ClientCPUPerReqUs)
	}
	res, err = Run(context.Background(), RunConfig{Concurrency: 1, Requests: 10, Warmup: 20 * time.Millisecond,
		ServerCPU: meter(time.Second)}, op)
	if err != nil {
		t.Fatal(err)
	}
	if res.ServerCPUPerReqUs != 100000 || res.ClientCPUPerReqUs != 0 {
		t.Errorf("after a warm-up: server %v µs/req, client %v", res.ServerCPUPerReqUs, res.ClientCPUPerReqUs)
	}
}

func TestProcStatCPU(t *testing.T) {
	// Fields 14 and 15 (utime, stime) of a process whose name has spaces
	// and a parenthesis.
	line := "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 130 0 0 20 0 9 0 12345 1000000 500 18446744073709551615"
	got, err := parseProcStatCPU(line)
	if err != nil || got != 3800*time.Millisecond {
		t.Errorf("parse: %v, %v; want 3.8s", got, err)
	}
	if _, err := parseProcStatCPU("4242 (x) S 1 2"); err == nil {
		t.Error("a short line was accepted")
	}
	self, err := ProcCPU(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	// Burn some CPU; both meters must see this process advance.
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i % 7
	}
	_ = x
	if after, _ := ProcCPU(os.Getpid()); after < self || SelfCPU() <= 0 {
		t.Errorf("proc CPU went from %v to %v; self %v", self, after, SelfCPU())
	}
}
