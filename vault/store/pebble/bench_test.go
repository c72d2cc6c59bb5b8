package pebble

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/fieldvault/fieldvault/vault/store"
)

// Benchmarks report per-row figures: ns/row (wall), cpu-ns/row (user+system
// CPU of the whole process, Pebble's background work included) and, for
// writes, fsyncs/row. Run with -benchmem; allocations are per call.

// benchRow returns a realistic row: 23-character random-looking token,
// 30-byte subject, 32-byte fingerprint on every other row, 60-byte
// ciphertext.
func benchRow(i int) store.Token {
	tok := fmt.Sprintf("tok_ph_%016x", uint64(i)*0x9E3779B97F4A7C15) // a bijection: distinct, unordered
	r := store.Token{
		Token: tok, Subject: fmt.Sprintf("usr_%026d", i/3), Category: uint16(1 + i%4), KeyVersion: 1,
		CreatedAt: 1_764_000_000, ExpiresAt: 1_795_536_000,
		Ciphertext: make([]byte, 60),
	}
	copy(r.Ciphertext, tok)
	if i%2 == 0 {
		r.Fingerprint = make([]byte, 32)
		copy(r.Fingerprint, "fp"+strconv.Itoa(i))
	}
	return r
}

type cpuClock struct{ start time.Duration }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (c *cpuClock) reset() { c.start = cpuTime() }

// report adds the per-row metrics for rows rows.
func (c *cpuClock) report(b *testing.B, rows int, syncs *atomic.Int64) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
	b.ReportMetric(float64((cpuTime()-c.start).Nanoseconds())/float64(rows), "cpu-ns/row")
	if syncs != nil {
		b.ReportMetric(float64(syncs.Load())/float64(rows), "fsyncs/row")
	}
}

// benchStore opens a store on disk whose main WAL fsyncs are counted.
func benchStore(b *testing.B) (*Store, *atomic.Int64) {
	dir := b.TempDir()
	syncs := new(atomic.Int64)
	fs := hookFS{FS: vfs.Default, onSync: func(name string) {
		if isWAL(dir, name) {
			syncs.Add(1)
		}
	}}
	s, err := open(dir, Options{}, fs)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s, syncs
}

func BenchmarkInsertTokens(b *testing.B) {
	for _, batch := range []int{1, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s, syncs := benchStore(b)
			rows := make([]store.Token, b.N*batch)
			for i := range rows {
				rows[i] = benchRow(i)
			}
			ctx := b.Context()
			var cpu cpuClock
			syncs.Store(0)
			b.ResetTimer()
			cpu.reset()
			for i := range b.N {
				if _, err := s.InsertTokens(ctx, rows[i*batch:(i+1)*batch]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			cpu.report(b, b.N*batch, syncs)
		})
	}
}

// BenchmarkInsertTokensParallel inserts single rows from many goroutines:
// the fsyncs/row figure shows commits sharing WAL fsyncs.
func BenchmarkInsertTokensParallel(b *testing.B) {
	s, syncs := benchStore(b)
	b.SetParallelism(32) // 32 x GOMAXPROCS writers
	var next atomic.Int64
	ctx := b.Context()
	var cpu cpuClock
	syncs.Store(0)
	b.ResetTimer()
	cpu.reset()
	b.RunParallel(func(pb *testing.PB) {
		rows := make([]store.Token, 1)
		for pb.Next() {
			rows[0] = benchRow(int(next.Add(1)))
			if _, err := s.InsertTokens(ctx, rows); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	cpu.report(b, b.N, syncs)
}

// BenchmarkReads looks up batches of 1000 in a store of 200,000 rows,
// mostly flushed to tables, with 10% of the lookups missing.
func BenchmarkReads(b *testing.B) {
	const stored, batch = 200_000, 1000
	s, _ := benchStore(b)
	ctx := b.Context()
	for i := 0; i < stored; i += batch {
		rows := make([]store.Token, batch)
		for j := range rows {
			rows[j] = benchRow(i + j)
		}
		if _, err := s.InsertTokens(ctx, rows); err != nil {
			b.Fatal(err)
		}
	}
	// Steady state: everything compacted into the bottom level.
	if err := s.main.db.Compact(ctx, []byte{0}, []byte{0xff}, true); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	pick := func() int {
		if r.IntN(10) == 0 {
			return stored + r.IntN(stored) // absent
		}
		return r.IntN(stored)
	}

	b.Run("GetTokens/batch=1000", func(b *testing.B) {
		reqs := make([][]string, 64)
		for i := range reqs {
			reqs[i] = make([]string, batch)
			for j := range reqs[i] {
				reqs[i][j] = benchRow(pick()).Token
			}
		}
		var cpu cpuClock
		b.ResetTimer()
		cpu.reset()
		for i := range b.N {
			if _, err := s.GetTokens(ctx, reqs[i%len(reqs)]); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cpu.report(b, b.N*batch, nil)
	})
	b.Run("LookupFingerprints/batch=1000", func(b *testing.B) {
		type req struct {
			cat uint16
			fps [][]byte
		}
		reqs := make([]req, 64)
		for i := range reqs {
			reqs[i].cat = uint16(1 + 2*(i%2)) // categories 1 and 3 have fingerprints
			for len(reqs[i].fps) < batch {
				// Rows with a fingerprint in this category: i%2 == 0, 1+i%4 == cat.
				n := pick()&^3 + int(reqs[i].cat-1)
				if n%2 != 0 {
					continue
				}
				reqs[i].fps = append(reqs[i].fps, benchRow(n).Fingerprint)
			}
		}
		var cpu cpuClock
		b.ResetTimer()
		cpu.reset()
		for i := range b.N {
			q := reqs[i%len(reqs)]
			if _, err := s.LookupFingerprints(ctx, q.cat, q.fps); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cpu.report(b, b.N*batch, nil)
	})
}
