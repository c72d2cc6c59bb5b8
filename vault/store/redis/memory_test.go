package redis_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fieldvault/fieldvault/vault/internal/testredis"
	"github.com/fieldvault/fieldvault/vault/store"
	fvredis "github.com/fieldvault/fieldvault/vault/store/redis"
)

// redisProc is a redis-server of the test's own (AOF, appendfsync always,
// then extra settings) on its own directory and port, killed when the test
// ends.
type redisProc struct {
	t     testing.TB
	dir   string
	port  int
	extra []string
	mu    sync.Mutex
	cmd   *exec.Cmd
}

func privateRedis(t testing.TB, extra ...string) *redisProc {
	t.Helper()
	r := &redisProc{t: t, dir: t.TempDir(), extra: extra}
	var err error
	for range 5 {
		if r.port, err = testredis.FreePort(); err != nil {
			t.Fatal(err)
		}
		if r.cmd, err = testredis.StartServer(r.dir, r.port, extra...); err == nil {
			t.Cleanup(r.kill)
			return r
		}
	}
	t.Fatalf("redis: %v", err)
	return nil
}

func (r *redisProc) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }
func (r *redisProc) url() string  { return "redis://" + r.addr() + "/0" }

// kill sends SIGKILL and waits for the process to end.
func (r *redisProc) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Kill()
		_, _ = r.cmd.Process.Wait()
		r.cmd = nil
	}
}

// restart starts the server again on its directory (its AOF) and port.
func (r *redisProc) restart() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		cmd, err := testredis.StartServer(r.dir, r.port, r.extra...)
		if err == nil {
			r.cmd = cmd
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("restarting redis: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// memProfile is one shape of token row.
type memProfile struct {
	name        string
	perSubject  int // tokens per subject
	row         func(i int) store.Token
	description string
}

var memProfiles = []memProfile{
	{
		name: "phone-deterministic", perSubject: 4,
		description: "phone-format token (13 B), 12 B subject, 16 B fingerprint, 42 B ciphertext, no expiry",
		row: func(i int) store.Token {
			return store.Token{
				Token:   fmt.Sprintf("+66%010d", uint64(i)*2654435761%10_000_000_000),
				Subject: fmt.Sprintf("u-%010d", i/4), Category: 2, KeyVersion: 1, CreatedAt: 1_764_000_000 + int64(i%86400),
				Fingerprint: []byte(fmt.Sprintf("%016x", uint64(i)*0x9E3779B97F4A7C15)),
				Ciphertext:  make([]byte, 42),
			}
		},
	},
	{
		name: "opaque-random", perSubject: 4,
		description: "opaque token (29 B), 36 B UUID subject, no fingerprint, 60 B ciphertext, expiry set",
		row: func(i int) store.Token {
			return store.Token{
				Token:   fmt.Sprintf("tok_nm_%022x", uint64(i)*0x9E3779B97F4A7C15),
				Subject: fmt.Sprintf("%08x-0000-4000-8000-%012x", i/4, i/4), Category: 1, KeyVersion: 1,
				CreatedAt: 1_764_000_000 + int64(i%86400), ExpiresAt: 1_795_536_000,
				Ciphertext: make([]byte, 60),
			}
		},
	},
}

func usedMemory(t testing.TB, c *goredis.Client) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no used_memory in INFO memory")
	return 0
}

// payloadBytes is what the store must keep for a row, before any Redis
// overhead: the row (token and encoding), the subject-index entry (1 +
// token) and the fingerprint binding (2 + fingerprint + token).
func payloadBytes(r *store.Token) int {
	n := len(r.Token) + store.EncodedTokenSize(r) + 1 + len(r.Token)
	if len(r.Fingerprint) > 0 {
		n += 2 + len(r.Fingerprint) + len(r.Token)
	}
	return n
}

// BenchmarkMemoryPerToken measures Redis memory per stored token at 1M
// tokens (FIELDVAULT_REDIS_MEMTEST_TOKENS overrides the count; it takes
// minutes, so it is a benchmark, run on demand:
// go test ./vault/store/redis -run '^$' -bench MemoryPerToken -benchtime 1x):
// used_memory after inserting, minus before, divided by the tokens,
// reported as bytes/token. It fails if the Redis overhead beyond the
// payload exceeds 50 bytes per token, as happens when buckets fall back to
// the hashtable encoding.
func BenchmarkMemoryPerToken(b *testing.B) {
	for b.Loop() {
		measureMemoryPerToken(b)
	}
}

func measureMemoryPerToken(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("FIELDVAULT_REDIS_MEMTEST_TOKENS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	for _, prof := range memProfiles {
		for _, settings := range []struct {
			name  string
			bits  int
			extra []string
			limit bool
		}{
			{"recommended", 0, []string{"--hash-max-listpack-entries", "1024", "--hash-max-listpack-value", "1024"}, true},
			{"recommended-bits14", 14, []string{"--hash-max-listpack-entries", "1024", "--hash-max-listpack-value", "1024"}, true},
			{"redis-defaults", 0, nil, false},
		} {
			b.Run(prof.name+"/"+settings.name, func(t *testing.B) {
				// Durability is not what is measured here: no AOF, so the
				// inserts go fast.
				addr := privateRedis(t, append([]string{"--appendonly", "no"}, settings.extra...)...).addr()
				admin := goredis.NewClient(&goredis.Options{Addr: addr})
				defer admin.Close()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				s, err := fvredis.Open(ctx, "redis://"+addr+"/0",
					fvredis.Options{AOFCheck: fvredis.AOFSkip, BucketBits: settings.bits})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				before := usedMemory(t, admin)
				if err := insertAll(ctx, s, n, 1000, 4, prof.row); err != nil {
					t.Fatal(err)
				}
				payload := 0
				for i := range n {
					r := prof.row(i)
					payload += payloadBytes(&r)
				}
				after := usedMemory(t, admin)
				perToken := float64(after-before) / float64(n)
				perPayload := float64(payload) / float64(n)
				t.ReportMetric(perToken, "bytes/token")
				t.Logf("%s (%s), %d tokens, %d per subject: %.1f bytes of Redis memory per token "+
					"(payload %.1f, overhead %.1f)", prof.name, prof.description, n, prof.perSubject,
					perToken, perPayload, perToken-perPayload)
				if settings.limit && perToken-perPayload > 50 {
					t.Errorf("overhead %.1f bytes per token beyond the payload, want at most 50", perToken-perPayload)
				}
			})
		}
	}
}

// insertAll inserts rows 0..n-1 in batches with parallel writers.
func insertAll(ctx context.Context, s store.Store, n, batch, writers int, row func(int) store.Token) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	errc := make(chan error, writers)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			rows := make([]store.Token, 0, batch)
			for start := range next {
				rows = rows[:0]
				for i := start; i < min(start+batch, n); i++ {
					rows = append(rows, row(i))
				}
				res, err := s.InsertTokens(ctx, rows)
				if err == nil {
					for j, r := range res {
						if r.Err != nil {
							err = fmt.Errorf("row %d: %w", start+j, r.Err)
							break
						}
					}
				}
				if err != nil {
					errc <- err
					cancel()
					return
				}
			}
		})
	}
feed:
	for start := 0; start < n; start += batch {
		select {
		case next <- start:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return ctx.Err()
	}
}
