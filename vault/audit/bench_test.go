package audit

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"
)

// benchLog opens a Log with production pacing (real clock, default
// checkpoint store pacing) on a file or Redis sink, wrapped to count sink
// writes.
func benchLog(b *testing.B, kind string) (*Log, *ctlSink) {
	b.Helper()
	var sink Sink
	node := uniqueNode("bench")
	switch kind {
	case "file":
		sink = openFileSink(b, b.TempDir())
	case "redis":
		sink = newRedisSink(b, redisClient(b), node)
	}
	cs := &ctlSink{Sink: sink}
	l := newLog(b, Config{Node: node, RefKey: testRefKey, SigningKey: testSigningKey, Sink: cs,
		SinkTimeout: 30 * time.Second})
	return l, cs
}

func reportRate(b *testing.B, cs *ctlSink, before int) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if writes := len(cs.calls()) - before; writes > 0 {
		b.ReportMetric(float64(b.N)/float64(writes), "records/write")
	}
}

// BenchmarkAppend measures committed (durable) appends: one caller at a
// time, where every record pays a full sink sync, and 64 or 1024 callers
// per CPU, where group commit shares each sync among everything waiting.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	for _, kind := range []string{"file", "redis"} {
		b.Run(kind+"/sequential", func(b *testing.B) {
			l, cs := benchLog(b, kind)
			rec := sampleRecord(l.refs, 1)
			before := len(cs.calls())
			b.ReportAllocs()
			for b.Loop() {
				if err := l.Append(ctx, rec); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b, cs, before)
		})
		for _, perCPU := range []int{64, 1024} {
			b.Run(fmt.Sprintf("%s/parallel-%dx", kind, perCPU), func(b *testing.B) {
				l, cs := benchLog(b, kind)
				before := len(cs.calls())
				b.ReportAllocs()
				b.SetParallelism(perCPU)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					rec := sampleRecord(l.refs, 1)
					for pb.Next() {
						if err := l.Append(ctx, rec); err != nil {
							b.Error(err)
							return
						}
					}
				})
				reportRate(b, cs, before)
			})
		}
	}
}

// BenchmarkEncode is the committer's per-record work: canonical encoding
// and hashing.
func BenchmarkEncode(b *testing.B) {
	refs, _ := NewRefs(testRefKey)
	r := sampleRecord(refs, 1)
	r.Time = time.Now()
	r.TimeICT = r.Time.In(ict).Format(time.RFC3339Nano)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _, _ = appendRecord(buf[:0], r)
		_ = sha256.Sum256(buf)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkRef(b *testing.B) {
	refs, _ := NewRefs(testRefKey)
	b.ReportAllocs()
	for b.Loop() {
		_ = refs.Ref("tok_ph_0123456789abcdef")
	}
}

// BenchmarkVerify measures Verify's throughput on a file log.
func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	sink := openFileSink(b, dir)
	l := newLog(b, Config{Node: "n", RefKey: testRefKey, SigningKey: testSigningKey, Sink: sink})
	const n = 5000
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- l.Append(context.Background(), sampleRecord(l.refs, i)) }()
	}
	for range n {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	l.Close()
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Verify(context.Background(), sink, testPub)
		if err != nil || !rep.OK() {
			b.Fatalf("Verify: %v %v", err, rep.Findings)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}
