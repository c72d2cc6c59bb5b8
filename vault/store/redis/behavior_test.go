package redis_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fieldvault/fieldvault/vault/store"
	fvredis "github.com/fieldvault/fieldvault/vault/store/redis"
)

func row(token, subject string, fp string) store.Token {
	r := store.Token{Token: token, Subject: subject, Category: 3, KeyVersion: 1, CreatedAt: 1_764_000_000,
		Ciphertext: []byte("ciphertext of " + token)}
	if fp != "" {
		r.Fingerprint = []byte(fp)
	}
	return r
}

func open(t testing.TB, url string, opt fvredis.Options) *fvredis.Store {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := fvredis.Open(context.Background(), url, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustInsert(t testing.TB, s store.Store, rows ...store.Token) {
	t.Helper()
	res, err := s.InsertTokens(context.Background(), rows)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("row %d: %v", i, r.Err)
		}
	}
}

// TestOutage stops Redis under an open store: calls fail fast with
// store.ErrUnavailable, Ping fails, and the store works again, by itself,
// once Redis is back (scripts included: a restarted Redis has none).
func TestOutage(t *testing.T) {
	r := privateRedis(t)
	s := open(t, r.url(), fvredis.Options{})
	ctx := context.Background()
	mustInsert(t, s, row("tok_1", "sub", "fp-1"))

	r.kill()
	calls := map[string]func() error{
		"Ping":      func() error { return s.Ping(ctx) },
		"GetTokens": func() error { _, err := s.GetTokens(ctx, []string{"tok_1"}); return err },
		"InsertTokens": func() error {
			_, err := s.InsertTokens(ctx, []store.Token{row("tok_2", "sub", "fp-2")})
			return err
		},
		"DeleteTokens": func() error { _, err := s.DeleteTokens(ctx, []string{"tok_1"}); return err },
		"PutRecord": func() error {
			_, err := s.PutRecord(ctx, store.Record{Kind: "k", ID: "a", Value: []byte("v")}, store.AnyRev)
			return err
		},
		"TokenCounts": func() error { _, err := s.TokenCounts(ctx); return err },
	}
	for range 3 {
		for name, call := range calls {
			start := time.Now()
			err := call()
			took := time.Since(start)
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("%s with Redis down: %v, want ErrUnavailable", name, err)
			}
			// A hang check, not a speed claim.
			if took > 3*time.Second {
				t.Errorf("%s with Redis down took %v", name, took)
			}
		}
	}

	r.restart()
	// Recovery: readiness comes back by itself, and then every call works
	// (DeleteTokens runs scripts, which the restarted Redis does not
	// know yet).
	start := time.Now()
	for s.Ping(ctx) != nil {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("Ping still fails 10s after Redis restarted: %v", s.Ping(ctx))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("ready %v after Redis restarted", time.Since(start))
	got, err := s.GetTokens(ctx, []string{"tok_1"})
	if err != nil || got[0] == nil {
		t.Fatalf("GetTokens after recovery: %v, %v", got, err)
	}
	if n, err := s.DeleteTokens(ctx, []string{"tok_1"}); err != nil || n != 1 {
		t.Fatalf("DeleteTokens after recovery: %d, %v", n, err)
	}
	if got := lookup(t, s, "fp-1"); got != "" {
		t.Errorf("binding of a deleted row: %q", got)
	}
}

func lookup(t testing.TB, s store.Store, fp string) string {
	t.Helper()
	got, err := s.LookupFingerprints(context.Background(), 3, [][]byte{[]byte(fp)})
	if err != nil {
		t.Fatal(err)
	}
	return got[0]
}

// TestKill9UnderLoad kills Redis (SIGKILL) while writers insert rows,
// restarts it on its AOF and checks that every acknowledged row, its
// fingerprint binding and its subject-index entry survived, and that no
// binding points to a missing row.
func TestKill9UnderLoad(t *testing.T) {
	r := privateRedis(t)
	s := open(t, r.url(), fvredis.Options{BucketBits: 8})
	ctx := context.Background()

	var (
		mu       sync.Mutex
		acked    []store.Token
		tried    []store.Token
		seq      atomic.Int64
		failures atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				rows := make([]store.Token, 100)
				for i := range rows {
					n := seq.Add(1)
					fp := ""
					if n%2 == 0 {
						fp = fmt.Sprintf("fp-%d", n)
					}
					rows[i] = row(fmt.Sprintf("tok_%d", n), fmt.Sprintf("sub_%d", w), fp)
				}
				mu.Lock()
				tried = append(tried, rows...)
				mu.Unlock()
				res, err := s.InsertTokens(ctx, rows)
				if err != nil {
					failures.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				mu.Lock()
				for i, x := range res {
					if x.Err != nil {
						t.Errorf("row %q: %v", rows[i].Token, x.Err)
					} else {
						acked = append(acked, rows[i])
					}
				}
				mu.Unlock()
			}
		})
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	for deadline := time.Now().Add(10 * time.Second); count() < 3000 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	r.kill()
	time.Sleep(200 * time.Millisecond)
	r.restart()
	for deadline := time.Now().Add(10 * time.Second); failures.Load() == 0 || count() < 4000; {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d rows acknowledged, %d calls failed", len(acked), failures.Load())
	if failures.Load() == 0 {
		t.Fatal("no call failed: Redis did not go down under the load")
	}

	toks := make([]string, len(acked))
	for i := range acked {
		toks[i] = acked[i].Token
	}
	got, err := s.GetTokens(ctx, toks)
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for i, g := range got {
		if g == nil || !bytes.Equal(g.Ciphertext, acked[i].Ciphertext) {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged rows lost", lost, len(acked))
	}
	subjects := make(map[string]map[string]bool)
	for _, r := range acked {
		if subjects[r.Subject] == nil {
			list, err := s.SubjectTokens(ctx, r.Subject)
			if err != nil {
				t.Fatal(err)
			}
			subjects[r.Subject] = make(map[string]bool)
			for _, tok := range list {
				subjects[r.Subject][tok] = true
			}
		}
		if !subjects[r.Subject][r.Token] {
			t.Errorf("acknowledged %q missing from its subject's index", r.Token)
		}
	}
	// Every binding, of acknowledged rows or not, names a stored row;
	// every acknowledged row with a fingerprint is bound to itself.
	var fps [][]byte
	for _, r := range tried {
		if len(r.Fingerprint) > 0 {
			fps = append(fps, r.Fingerprint)
		}
	}
	bound, err := s.LookupFingerprints(ctx, 3, fps)
	if err != nil {
		t.Fatal(err)
	}
	var boundToks []string
	for _, b := range bound {
		if b != "" {
			boundToks = append(boundToks, b)
		}
	}
	rows, err := s.GetTokens(ctx, boundToks)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if r == nil {
			t.Errorf("fingerprint bound to %q, which has no row", boundToks[i])
		}
	}
	byFP := make(map[string]string)
	for i, fp := range fps {
		byFP[string(fp)] = bound[i]
	}
	for _, r := range acked {
		if len(r.Fingerprint) > 0 && byFP[string(r.Fingerprint)] != r.Token {
			t.Errorf("acknowledged %q: its fingerprint is bound to %q", r.Token, byFP[string(r.Fingerprint)])
		}
	}
}

// TestStaleBindingRepaired: a binding whose row is gone (as after a
// failover that lost the row's write) is treated as unbound, and of
// several writers repairing it at once exactly one wins.
func TestStaleBindingRepaired(t *testing.T) {
	tg := standalone(t)
	prefix := newPrefix(t, tg)
	s := open(t, tg.url, fvredis.Options{Prefix: prefix})
	ctx := context.Background()
	mustInsert(t, s, row("tok_old", "sub", "fp"))
	// Lose the row behind the store's back.
	admin := adminClient(t, tg)
	if n := deleteRowDirectly(t, admin, prefix, "tok_old"); n != 1 {
		t.Fatalf("deleted %d rows directly", n)
	}
	if got := lookup(t, s, "fp"); got != "tok_old" {
		t.Fatalf("binding before the repair: %q", got)
	}

	const writers = 8
	res := make([]store.InsertResult, writers)
	errs := make([]error, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			<-start
			var r []store.InsertResult
			r, errs[i] = s.InsertTokens(ctx, []store.Token{row(fmt.Sprintf("tok_new_%d", i), "sub", "fp")})
			if errs[i] == nil {
				res[i] = r[0]
			}
		})
	}
	close(start)
	wg.Wait()
	winner := ""
	for i := range writers {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
		if res[i].Err == nil {
			if winner != "" {
				t.Fatalf("two writers replaced the stale binding: %s and tok_new_%d", winner, i)
			}
			winner = fmt.Sprintf("tok_new_%d", i)
		}
	}
	if winner == "" {
		t.Fatal("no writer replaced the stale binding")
	}
	for i := range writers {
		if res[i].Err != nil && (!errors.Is(res[i].Err, store.ErrFingerprintBound) || res[i].Existing != winner) {
			t.Errorf("writer %d: %+v, want ErrFingerprintBound(%s)", i, res[i], winner)
		}
	}
	if got := lookup(t, s, "fp"); got != winner {
		t.Errorf("binding after the repair: %q, want %q", got, winner)
	}
	toks, err := s.SubjectTokens(ctx, "sub")
	if err != nil || len(toks) != 1 || toks[0] != winner {
		t.Errorf("SubjectTokens = %q, %v; want only %q", toks, err, winner)
	}
	counts, err := s.TokenCounts(ctx)
	if err != nil || len(counts) != 1 || counts[0].Count != 2 {
		// tok_old was counted and then removed behind the store's back.
		t.Errorf("TokenCounts = %+v, %v; want 2 (one of them the lost row)", counts, err)
	}
}

// deleteRowDirectly removes a token row with HDEL, as a Redis losing the
// write would, and returns how many fields it removed.
func deleteRowDirectly(t testing.TB, c goredis.UniversalClient, prefix, token string) int64 {
	t.Helper()
	var n int64
	forEachMaster(t, c, func(m goredis.Cmdable) error {
		ctx := context.Background()
		iter := m.Scan(ctx, 0, prefix+"t:*", 1000).Iterator()
		for iter.Next(ctx) {
			k, err := m.HDel(ctx, iter.Val(), token).Result()
			if err != nil {
				return err
			}
			n += k
		}
		return iter.Err()
	})
	return n
}

// TestAOFCheck: Open warns about, or refuses, a Redis whose persistence
// settings lose acknowledged writes.
func TestAOFCheck(t *testing.T) {
	r := privateRedis(t, "--appendfsync", "everysec")
	_, err := fvredis.Open(context.Background(), r.url(), fvredis.Options{AOFCheck: fvredis.AOFRequire})
	if err == nil || !strings.Contains(err.Error(), "appendfsync") {
		t.Errorf("Open(AOFRequire) on appendfsync everysec: %v, want a refusal", err)
	}
	var logs bytes.Buffer
	s := open(t, r.url(), fvredis.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !strings.Contains(logs.String(), "up to about a second") || !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("Open(AOFWarn) logged %q, want a warning about everysec", logs.String())
	}
	if !strings.Contains(logs.String(), "hash-max-listpack") {
		t.Errorf("Open logged %q, want a warning about Redis's default listpack limits", logs.String())
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The URL parameter chooses the check too.
	if _, err := fvredis.Open(context.Background(), r.url()+"?aof_check=require", fvredis.Options{}); err == nil {
		t.Error("Open with aof_check=require on appendfsync everysec succeeded")
	}
}

// TestWaitReplicas: with WaitReplicas, a write fails unless a replica
// acknowledged it, and succeeds once one does.
func TestWaitReplicas(t *testing.T) {
	master := privateRedis(t, "--repl-diskless-sync-delay", "0")
	s := open(t, master.url()+"?wait_replicas=1&wait_timeout=200ms", fvredis.Options{})
	ctx := context.Background()
	start := time.Now()
	_, err := s.InsertTokens(ctx, []store.Token{row("tok_1", "sub", "fp-1")})
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "replicas") {
		t.Errorf("InsertTokens with no replica: %v, want ErrUnavailable naming replicas", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("InsertTokens with no replica took %v", took)
	}
	if err := s.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Ping with no replica: %v, want ErrUnavailable (not ready)", err)
	}
	replica := privateRedis(t, "--replicaof", "127.0.0.1", fmt.Sprint(master.port))
	rc := goredis.NewClient(&goredis.Options{Addr: replica.addr()})
	defer rc.Close()
	mc := goredis.NewClient(&goredis.Options{Addr: master.addr()})
	defer mc.Close()
	for deadline := time.Now().Add(20 * time.Second); ; {
		info, _ := mc.Info(ctx, "replication").Result()
		if strings.Contains(info, "state=online") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica did not connect: %s", info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A store with a wait timeout that a loaded test machine meets.
	s2 := open(t, master.url()+"?wait_replicas=1&wait_timeout=2s", fvredis.Options{})
	mustInsert(t, s2, row("tok_2", "sub", "fp-2"))
	if _, err := s2.PutRecord(ctx, store.Record{Kind: "k", ID: "a", Value: []byte("v")}, 0); err != nil {
		t.Errorf("PutRecord with a replica: %v", err)
	}
	if err := s2.Ping(ctx); err != nil {
		t.Errorf("Ping with a replica: %v", err)
	}
	// The replica has the row.
	keys, err := rc.Keys(ctx, "fv:t:*").Result()
	if err != nil || len(keys) == 0 {
		t.Errorf("replica has no token bucket: %v, %v", keys, err)
	}
}

// TestWaitReplicasCluster: in a Cluster the WAIT goes to every node
// client, so with no replicas (the test Cluster has none) writes fail.
func TestWaitReplicasCluster(t *testing.T) {
	tg := cluster(t)
	s := open(t, tg.url+"?wait_replicas=1&wait_timeout=100ms&prefix="+newPrefix(t, tg), fvredis.Options{})
	ctx := context.Background()
	var rows []store.Token
	for i := range 50 { // rows on every master
		rows = append(rows, row(fmt.Sprintf("tok_%d", i), "sub", ""))
	}
	_, err := s.InsertTokens(ctx, rows)
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "replicas") {
		t.Errorf("InsertTokens with no replicas: %v, want ErrUnavailable naming replicas", err)
	}
	if got, err := s.GetTokens(ctx, []string{"tok_1"}); err != nil || len(got) != 1 {
		t.Errorf("GetTokens (no write, no WAIT): %v, %v", got, err)
	}
}

// TestLayoutRecorded: the bucket bits a store was created with win over
// later Options, and a foreign layout is refused.
func TestLayoutRecorded(t *testing.T) {
	tg := standalone(t)
	prefix := newPrefix(t, tg)
	s := open(t, tg.url, fvredis.Options{Prefix: prefix, BucketBits: 10})
	mustInsert(t, s, row("tok_1", "sub", "fp-1"))
	s2 := open(t, tg.url, fvredis.Options{Prefix: prefix, BucketBits: 12})
	got, err := s2.GetTokens(context.Background(), []string{"tok_1"})
	if err != nil || got[0] == nil {
		t.Fatalf("GetTokens through a store opened with other bucket bits: %v, %v", got, err)
	}
	admin := adminClient(t, tg)
	if err := admin.HSet(context.Background(), prefix+"meta", "layout", "99").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := fvredis.Open(context.Background(), tg.url, fvredis.Options{Prefix: prefix}); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("Open of a foreign layout: %v, want ErrCorrupt", err)
	}
}

// TestCursorAcrossRedisRestart: a scan cursor taken before Redis
// restarts resumes after it, seeing every row exactly once.
func TestCursorAcrossRedisRestart(t *testing.T) {
	r := privateRedis(t)
	s := open(t, r.url(), fvredis.Options{BucketBits: 6})
	ctx := context.Background()
	var rows []store.Token
	for i := range 300 {
		rows = append(rows, row(fmt.Sprintf("tok_%03d", i), "sub", ""))
	}
	mustInsert(t, s, rows...)
	first, cursor, err := s.ScanTokens(ctx, "", 100)
	if err != nil || cursor == "" {
		t.Fatalf("ScanTokens = %q, %v", cursor, err)
	}
	r.kill()
	r.restart()
	seen := make(map[string]int)
	for _, x := range first {
		seen[x.Token]++
	}
	for deadline := time.Now().Add(10 * time.Second); s.Ping(ctx) != nil; {
		if time.Now().After(deadline) {
			t.Fatal("store did not recover")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for cursor != "" {
		var page []store.Token
		page, cursor, err = s.ScanTokens(ctx, cursor, 37)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range page {
			seen[x.Token]++
		}
	}
	for _, x := range rows {
		if seen[x.Token] != 1 {
			t.Errorf("%q seen %d times", x.Token, seen[x.Token])
		}
	}
}
