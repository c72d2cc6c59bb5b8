package redis_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/internal/vaulttest"
	"github.com/fieldvault/fieldvault/vault/store"
	fvredis "github.com/fieldvault/fieldvault/vault/store/redis"
)

// Benchmarks report per-row figures: ns/row (wall), rows/s and cpu-ns/row
// (user+system CPU of this process: the client side only; Redis runs in
// its own process). Allocations (-benchmem) are per batch.
//
// Targets: "always" is a private standalone Redis with appendfsync
// always (the production setting), "noaof" the same without AOF (what the
// client and Redis's CPU allow when the disk is out of the way), and
// "cluster" the test run's 3-master Cluster (appendfsync always).

// benchRow returns a realistic row, cheaply (so that the benchmark
// measures the store): 23-byte token, 16-byte subject, 42-byte
// ciphertext, and a 16-byte fingerprint on every other row.
func benchRow(i uint64) store.Token {
	var b [64]byte
	buf := strconv.AppendUint(append(b[:0], "tok_ph_"...), i*0x9E3779B97F4A7C15, 16)
	tl := len(buf)
	buf = strconv.AppendUint(append(buf, "usr_"...), i/4, 10)
	s := string(buf)
	r := store.Token{
		Token: s[:tl], Subject: s[tl:], Category: uint16(1 + i%4), KeyVersion: 1,
		CreatedAt: 1_764_000_000, ExpiresAt: 1_795_536_000,
	}
	ct := make([]byte, 42+16)
	copy(ct, r.Token)
	r.Ciphertext = ct[:42:42]
	if i%2 == 0 {
		r.Fingerprint = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(ct[42:42], i*0xC2B2AE3D27D4EB4F), i)
	}
	return r
}

type benchTarget struct {
	name string
	url  func(b *testing.B) string
}

var benchTargets = []benchTarget{
	{"always", func(b *testing.B) string {
		return privateRedis(b, "--hash-max-listpack-entries", "1024", "--hash-max-listpack-value", "1024").url()
	}},
	{"noaof", func(b *testing.B) string {
		return privateRedis(b, "--appendonly", "no", "--hash-max-listpack-entries", "1024",
			"--hash-max-listpack-value", "1024").url()
	}},
	{"cluster", func(b *testing.B) string {
		tg := cluster(b)
		return tg.url + "?prefix=" + newPrefix(b, tg)
	}},
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU returns the CPU time (user + system) Redis used, summed over
// the masters behind url.
func redisCPU(b *testing.B, url string) time.Duration {
	var opt fvredis.Options
	c, err := fvredis.NewClient(url, &opt)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var total time.Duration
	forEachMaster(b, c, func(n goredis.Cmdable) error {
		info, err := n.Info(context.Background(), "cpu").Result()
		if err != nil {
			return err
		}
		for _, line := range strings.Split(info, "\r\n") {
			k, v, _ := strings.Cut(line, ":")
			if k == "used_cpu_sys" || k == "used_cpu_user" {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return err
				}
				total += time.Duration(f * float64(time.Second))
			}
		}
		return nil
	})
	return total
}

// meter measures a benchmark's client and Redis CPU.
type meter struct {
	url             string
	cpu0, redisCPU0 time.Duration
}

func startMeter(b *testing.B, url string) *meter {
	m := &meter{url: url, redisCPU0: redisCPU(b, url)}
	b.ResetTimer()
	m.cpu0 = cpuTime()
	return m
}

// report adds the per-row metrics for rows rows: wall time, throughput,
// and the CPU time of this process (the client) and of Redis.
func (m *meter) report(b *testing.B, rows int64) {
	b.StopTimer()
	cpu := cpuTime() - m.cpu0
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(rows), "ns/row")
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(rows), "client-cpu-ns/row")
	b.ReportMetric(float64((redisCPU(b, m.url)-m.redisCPU0).Nanoseconds())/float64(rows), "redis-cpu-ns/row")
}

// BenchmarkInsertTokens inserts batches of 1000 new rows, half of them
// with fingerprints, from 1 and from 4 concurrent callers.
func BenchmarkInsertTokens(b *testing.B) {
	const batch = 1000
	for _, tg := range benchTargets {
		for _, callers := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/batch=%d/callers=%d", tg.name, batch, callers), func(b *testing.B) {
				url := tg.url(b)
				s, err := fvredis.Open(context.Background(), url, fvredis.Options{AOFCheck: fvredis.AOFSkip})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				var seq atomic.Uint64
				seq.Store(rand.Uint64() >> 8)
				var total atomic.Int64
				b.SetParallelism(callers)
				m := startMeter(b, url)
				b.RunParallel(func(pb *testing.PB) {
					ctx := context.Background()
					rows := make([]store.Token, batch)
					for pb.Next() {
						start := seq.Add(batch) - batch
						for i := range rows {
							rows[i] = benchRow(start + uint64(i))
						}
						res, err := s.InsertTokens(ctx, rows)
						if err != nil {
							b.Error(err)
							return
						}
						for _, r := range res {
							if r.Err != nil {
								b.Error(r.Err)
								return
							}
						}
						total.Add(batch)
					}
				})
				m.report(b, total.Load())
			})
		}
	}
}

// BenchmarkGetTokens reads batches of 1000 random rows of 100,000.
func BenchmarkGetTokens(b *testing.B) {
	const batch, stored = 1000, 100_000
	for _, tg := range benchTargets {
		for _, callers := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/batch=%d/callers=%d", tg.name, batch, callers), func(b *testing.B) {
				ctx := context.Background()
				url := tg.url(b)
				s, err := fvredis.Open(ctx, url, fvredis.Options{AOFCheck: fvredis.AOFSkip})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				base := rand.Uint64() >> 8
				if err := insertAll(ctx, s, stored, 1000, 4, func(i int) store.Token { return benchRow(base + uint64(i)) }); err != nil {
					b.Fatal(err)
				}
				var total atomic.Int64
				b.SetParallelism(callers)
				m := startMeter(b, url)
				b.RunParallel(func(pb *testing.PB) {
					toks := make([]string, batch)
					r := rand.New(rand.NewPCG(rand.Uint64(), 1))
					for pb.Next() {
						for i := range toks {
							toks[i] = benchRow(base + uint64(r.IntN(stored))).Token
						}
						got, err := s.GetTokens(ctx, toks)
						if err != nil {
							b.Error(err)
							return
						}
						for i, g := range got {
							if g == nil {
								b.Errorf("row %q missing", toks[i])
								return
							}
						}
						total.Add(batch)
					}
				})
				m.report(b, total.Load())
			})
		}
	}
}

// BenchmarkVaultTokenize tokenises batches of 1000 fields through a full
// in-process vault (normalisation, fingerprints, token generation,
// encryption, store) on the Redis store, without HTTP: half phone numbers
// (deterministic), half names (random), for 250 subjects.
func BenchmarkVaultTokenize(b *testing.B) {
	const batch = 1000
	for _, tg := range benchTargets {
		for _, callers := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/batch=%d/callers=%d", tg.name, batch, callers), func(b *testing.B) {
				ctx := context.Background()
				url := tg.url(b)
				s, err := fvredis.Open(ctx, url, fvredis.Options{AOFCheck: fvredis.AOFSkip})
				if err != nil {
					b.Fatal(err)
				}
				stack := vaulttest.New(b, vaulttest.Options{Store: s})
				p := &vault.Principal{Name: "bench", Roles: []string{"service"}}
				var seq atomic.Uint64
				seq.Store(rand.Uint64() % 1_000_000_000)
				var total atomic.Int64
				b.SetParallelism(callers)
				m := startMeter(b, url)
				b.RunParallel(func(pb *testing.PB) {
					req := &vault.TokenizeRequest{Items: make([]vault.TokenizeItem, batch)}
					for pb.Next() {
						start := seq.Add(batch) - batch
						for i := range req.Items {
							n := start + uint64(i)
							it := vault.TokenizeItem{Subject: fmt.Sprintf("bench-%d", n%250)}
							if n%2 == 0 {
								it.Category, it.Value = "contact.phone", fmt.Sprintf("+668%08d", n%100_000_000)
							} else {
								it.Category, it.Value = "identity.name", fmt.Sprintf("Name %d", n)
							}
							req.Items[i] = it
						}
						res, err := stack.Vault.Tokenize(ctx, p, req)
						if err != nil {
							if strings.Contains(err.Error(), "conflict") {
								continue // a repeated phone number of another subject
							}
							b.Error(err)
							return
						}
						total.Add(int64(len(res.Items)))
					}
				})
				m.report(b, total.Load())
			})
		}
	}
}
