package main

// End-to-end tests of the Redis store and the Redis audit stream through
// the real binary: replicas sharing one Redis, Redis crashing under load,
// Redis outages, and a Redis Cluster.

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/client"
)

// startRedisServer starts redis-server on dir and port with AOF and
// appendfsync always, as vault/internal/testredis does (which this package
// cannot import), and waits until it answers PING.
func startRedisServer(dir string, port int, extra ...string) (*exec.Cmd, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found in PATH: install it (apt-get install redis-server) or run .ci/test.sh")
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no",
		"--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log")}
	cmd := exec.Command(bin, append(args, extra...)...)
	setChildAttrs(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if redisPing(addr) {
			return cmd, nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
			return nil, fmt.Errorf("redis on %s did not answer PING", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisPing reports whether a Redis answers PING at addr.
func redisPing(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := io.ReadFull(conn, buf)
	return string(buf[:n]) == "+PONG\r\n"
}

// redisServer is a redis-server this test started (AOF, appendfsync
// always) on its own directory and port; it is killed when the test ends.
type redisServer struct {
	t    testing.TB
	dir  string
	port int
	mu   sync.Mutex
	cmd  *exec.Cmd
}

func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	r := &redisServer{t: t, dir: t.TempDir()}
	var err error
	for range 5 {
		r.port = freePort(t)
		if r.cmd, err = startRedisServer(r.dir, r.port, extra...); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	t.Cleanup(func() { r.kill() })
	return r
}

func (r *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

// kill sends SIGKILL and waits for the process to end.
func (r *redisServer) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_, _ = r.cmd.Process.Wait()
	r.cmd = nil
}

// restart starts redis-server again on the same directory (its AOF) and
// port.
func (r *redisServer) restart(extra ...string) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	deadline := time.Now().Add(20 * time.Second)
	for {
		if r.cmd, err = startRedisServer(r.dir, r.port, extra...); err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("restarting redis on port %d: %v\n%s", r.port, err, readFile(filepath.Join(r.dir, "redis.log")))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// sharedRedisAddr is the standalone Redis of the test run
// (FIELDVAULT_TEST_REDIS, set by .ci/test.sh), or a private one.
func sharedRedisAddr(t testing.TB) string {
	if a := os.Getenv("FIELDVAULT_TEST_REDIS"); a != "" {
		return a
	}
	return startRedis(t).addr()
}

// clusterSeeds is the Cluster of the test run
// (FIELDVAULT_TEST_REDIS_CLUSTER), or a private 3-master one.
func clusterSeeds(t testing.TB) []string {
	t.Helper()
	if a := os.Getenv("FIELDVAULT_TEST_REDIS_CLUSTER"); a != "" {
		return strings.Split(a, ",")
	}
	var addrs []string
	for i := range 3 {
		r := startRedis(t, "--cluster-enabled", "yes", "--cluster-node-timeout", "5000",
			"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", i))
		addrs = append(addrs, r.addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range addrs {
		host, port, _ := strings.Cut(a, ":")
		for {
			out, _ := exec.Command("redis-cli", "-h", host, "-p", port, "cluster", "info").Output()
			if strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster did not become ok: %s", out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return addrs
}

// uniqueName returns prefix-<random hex>, so that tests sharing a Redis
// (and runs sharing it) never share keys or audit streams.
func uniqueName(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// dropRedisKeys deletes, when the test ends (after its servers stopped),
// every key starting with prefix (the store's and, since the URL's prefix
// applies to them too, the audit streams'), from the Redis or Cluster at
// addrs.
func dropRedisKeys(t testing.TB, addrs []string, prefix string) {
	t.Cleanup(func() {
		ctx := context.Background()
		c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: addrs, IsClusterMode: len(addrs) > 1})
		defer c.Close()
		drop := func(ctx context.Context, n goredis.Cmdable) error {
			iter := n.Scan(ctx, 0, prefix+"*", 1000).Iterator()
			for iter.Next(ctx) {
				if err := n.Unlink(ctx, iter.Val()).Err(); err != nil {
					return err
				}
			}
			return iter.Err()
		}
		var err error
		if cc, ok := c.(*goredis.ClusterClient); ok {
			err = cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return drop(ctx, n) })
		} else {
			err = drop(ctx, c)
		}
		if err != nil {
			t.Errorf("cleaning up the test's Redis keys: %v", err)
		}
	})
}

// redisReplica starts `fieldvault serve --dev` on storeURL with the Redis
// audit stream, its own node name and data directory. kekFrom, when not
// "", is a data directory whose kek.key the replica shares: replicas over
// one store must share the KEK that wraps its keysets.
func redisReplica(t testing.TB, storeURL, node, kekFrom string) *server {
	t.Helper()
	dir := t.TempDir()
	if kekFrom != "" {
		b, err := os.ReadFile(filepath.Join(kekFrom, "kek.key"))
		if err != nil {
			t.Fatalf("reading the first replica's KEK: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "kek.key"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return startServer(t, dir, devLaunch(t, dir, "--store", storeURL, "--audit", "redis-stream", "--node", node), nil)
}

// tokenizeOne tokenises one value and fails the test on any error.
func tokenizeOne(t testing.TB, c *client.Client, it vault.TokenizeItem) string {
	t.Helper()
	res, err := c.Tokenize(context.Background(), &vault.TokenizeRequest{Items: []vault.TokenizeItem{it}})
	if err != nil {
		t.Fatalf("tokenize: %v", err)
	}
	if res.Items[0].Error != nil || res.Items[0].Token == "" {
		t.Fatalf("tokenize: %+v", res.Items[0].Error)
	}
	return res.Items[0].Token
}

// TestRedisReplicas runs two replicas over one Redis: a consent withdrawn
// through one is honoured by the other on its very next call, and both
// tokenising the same value at the same moment get the same token.
func TestRedisReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	addr, prefix := sharedRedisAddr(t), uniqueName("fve2e")+":"
	url := fmt.Sprintf("redis://%s/0?prefix=%s", addr, prefix)
	nodeA, nodeB := uniqueName("node-a"), uniqueName("node-b")
	dropRedisKeys(t, []string{addr}, prefix)
	a := redisReplica(t, url, nodeA, "")
	b := redisReplica(t, url, nodeB, a.dataDir)
	ca, cb := a.root(), b.root()

	subj := uniqueName("replica-subject")
	putAdult(t, ca, subj)
	tok := tokenizeOne(t, ca, vault.TokenizeItem{Category: "contact.phone", Value: "+66812345678", Subject: subj})
	consentID := grantMarketing(t, ca, subj, false, "contact.phone")

	res, err := cb.Detokenize(ctx, marketingRequest(consentID, tok))
	if err != nil || res.Items[0].Value != "+66812345678" {
		t.Fatalf("replica B before the withdrawal: %+v, %v", res, err)
	}
	if _, err := ca.WithdrawConsent(ctx, consentID, &vault.WithdrawConsentRequest{Channel: "app"}); err != nil {
		t.Fatalf("withdraw through replica A: %v", err)
	}
	res, err = cb.Detokenize(ctx, marketingRequest(consentID, tok))
	if res == nil {
		t.Fatalf("replica B after the withdrawal: %v", err)
	}
	if it := res.Items[0]; it.Value != "" || it.Denied == nil || it.Denied.Code != "CONSENT_WITHDRAWN" {
		t.Fatalf("replica B's next call after the withdrawal through A: %+v (value released: %v), want CONSENT_WITHDRAWN",
			it.Denied, it.Value != "")
	}

	// The access report is complete whichever replica answers: A's chain
	// holds the consent's grant and withdrawal, B's the two decisions.
	var reports [2]*vault.AccessReport
	for k, c := range []*client.Client{ca, cb} {
		if reports[k], err = c.AccessReport(ctx, subj); err != nil {
			t.Fatalf("access report through replica %d: %v", k, err)
		}
	}
	for k, rep := range reports {
		perNode := map[string][]string{}
		for _, e := range rep.Entries {
			perNode[e.Node] = append(perNode[e.Node], cmp.Or(e.Action, fmt.Sprintf("decision %d/%d", e.Allowed, e.Denied)))
		}
		if !slices.Contains(rep.Nodes, nodeA) || !slices.Contains(rep.Nodes, nodeB) ||
			!slices.Contains(perNode[nodeA], "consent.grant") || !slices.Contains(perNode[nodeA], "consent.withdraw") ||
			!slices.Contains(perNode[nodeB], "decision 1/0") || !slices.Contains(perNode[nodeB], "decision 0/1") {
			t.Fatalf("access report through replica %d: nodes %v, entries by node %v", k, rep.Nodes, perNode)
		}
		if !slices.IsSortedFunc(rep.Entries, func(a, b vault.AccessReportEntry) int { return a.Time.Compare(b.Time) }) {
			t.Fatalf("access report through replica %d is not in time order", k)
		}
	}
	if len(reports[0].Entries) != len(reports[1].Entries) {
		t.Fatalf("the replicas' reports differ: %d and %d entries", len(reports[0].Entries), len(reports[1].Entries))
	}
	// Both chains verify with the deployment's key, found through the set
	// of registered nodes.
	out, errOut, code := runCLI(t, nil, nil, "audit", "verify", "--redis", url, "--all-nodes",
		"--public-key", "@"+filepath.Join(a.dataDir, "audit", auditPublicKeyFile))
	if code != 0 || !strings.Contains(out, "all 2 chains verify") || !strings.Contains(out, nodeA) || !strings.Contains(out, nodeB) {
		t.Fatalf("audit verify --all-nodes: exit %d\n%s%s", code, out, errOut)
	}

	// The deterministic race: both replicas tokenise the same new value at
	// the same moment, many times.
	const rounds = 60
	for i := range rounds {
		value := fmt.Sprintf("race.%d.%s@example.com", i, subj)
		var toks [2]string
		var errs [2]error
		start := make(chan struct{})
		var wg sync.WaitGroup
		for k, c := range []*client.Client{ca, cb} {
			wg.Go(func() {
				<-start
				r, err := c.Tokenize(ctx, &vault.TokenizeRequest{Items: []vault.TokenizeItem{
					{Category: "contact.email", Value: value, Subject: subj}}})
				switch {
				case err != nil:
					errs[k] = err
				case r.Items[0].Error != nil:
					errs[k] = fmt.Errorf("%s: %s", r.Items[0].Error.Code, r.Items[0].Error.Message)
				default:
					toks[k] = r.Items[0].Token
				}
			})
		}
		close(start)
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: replica errors %v, %v", i, errs[0], errs[1])
		}
		if toks[0] != toks[1] {
			t.Fatalf("round %d: replicas returned different deterministic tokens %q and %q for one value", i, toks[0], toks[1])
		}
	}
}

// tokenizeLoad tokenises in the background with several clients until
// stop is closed, recording every acknowledged token and value.
type tokenizeLoad struct {
	mu     sync.Mutex
	acked  map[string]string // token -> value
	nreq   atomic.Int64
	nfail  atomic.Int64
	seq    atomic.Int64
	stop   chan struct{}
	wg     sync.WaitGroup
	errors []string
}

func startTokenizeLoad(s *server, subj string, workers, batch int) *tokenizeLoad {
	l := &tokenizeLoad{acked: make(map[string]string), stop: make(chan struct{})}
	for range workers {
		l.wg.Go(func() {
			c := s.root()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				req := &vault.TokenizeRequest{}
				for range batch {
					n := l.seq.Add(1)
					it := vault.TokenizeItem{Category: "contact.email", Value: fmt.Sprintf("load%d@example.com", n), Subject: subj}
					if n%2 == 0 {
						it = vault.TokenizeItem{Category: "identity.name", Value: fmt.Sprintf("Load Name %d", n), Subject: subj}
					}
					req.Items = append(req.Items, it)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				res, err := c.Tokenize(ctx, req)
				cancel()
				l.nreq.Add(1)
				if err != nil {
					l.nfail.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				l.mu.Lock()
				for k, it := range res.Items {
					if it.Error != nil || it.Token == "" {
						l.errors = append(l.errors, fmt.Sprintf("acknowledged batch with a failed item: %+v", it.Error))
						continue
					}
					l.acked[it.Token] = req.Items[k].Value
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

func (l *tokenizeLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func (l *tokenizeLoad) end() {
	close(l.stop)
	l.wg.Wait()
}

// waitAcked waits until n tokens were acknowledged (bounded in time).
func (l *tokenizeLoad) waitAcked(t testing.TB, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for l.count() < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if l.count() == 0 {
		t.Fatal("no token was acknowledged")
	}
}

// checkAcked detokenises every acknowledged token and fails on any loss.
func checkAcked(t testing.TB, c *client.Client, consentID string, acked map[string]string) {
	t.Helper()
	toks := make([]string, 0, len(acked))
	for tok := range acked {
		toks = append(toks, tok)
	}
	got := detokenizeAll(t, c, consentID, toks)
	lost := 0
	for tok, v := range acked {
		if got[tok] != v {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged token %q: got %q, want %q", tok, got[tok], v)
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged tokens lost or wrong", lost, len(acked))
	}
}

// waitReadyStatus polls /readyz until it answers want, and returns how long
// that took.
func waitReadyStatus(t testing.TB, s *server, want int, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < d {
		resp, err := s.httpc.Get(s.addr + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return time.Since(start)
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("/readyz did not answer %d within %v (last: %s)\nstderr:\n%s", want, d, last, s.stderr)
	return 0
}

// TestRedisKill9UnderLoad kills redis-server with SIGKILL while clients
// tokenise through fieldvault, restarts it on the same AOF, and checks that
// every token fieldvault acknowledged detokenises to its value.
func TestRedisKill9UnderLoad(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	url := fmt.Sprintf("redis://%s/0", r.addr())
	s := redisReplica(t, url, uniqueName("node"), "")
	c := s.root()
	subj := uniqueName("kill9-subject")
	putAdult(t, c, subj)
	consentID := grantMarketing(t, c, subj, false, "contact.email", "identity.name")

	load := startTokenizeLoad(s, subj, 4, 32)
	load.waitAcked(t, 2000, 10*time.Second)
	r.kill()
	killedAt := load.count()
	// Requests fail while Redis is down.
	time.Sleep(300 * time.Millisecond)
	r.restart()
	waitReadyStatus(t, s, http.StatusOK, 30*time.Second)
	// The load goes on after the restart, then stops.
	load.waitAcked(t, killedAt+500, 10*time.Second)
	load.end()
	for _, e := range load.errors {
		t.Error(e)
	}
	t.Logf("%d requests, %d failed; %d tokens acknowledged (%d before the kill)",
		load.nreq.Load(), load.nfail.Load(), len(load.acked), killedAt)
	if load.nfail.Load() == 0 {
		t.Error("no request failed: Redis was not down while the load ran")
	}
	checkAcked(t, c, consentID, load.acked)
}

// TestRedisOutage stops Redis under a running fieldvault: calls answer 503
// STORE_UNAVAILABLE promptly, /readyz turns 503, and once Redis is back the
// service recovers by itself.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	url := fmt.Sprintf("redis://%s/0", r.addr())
	s := redisReplica(t, url, uniqueName("node"), "")
	c := s.root()
	subj := uniqueName("outage-subject")
	putAdult(t, c, subj)
	tok := tokenizeOne(t, c, vault.TokenizeItem{Category: "contact.phone", Value: "+66812340000", Subject: subj})
	consentID := grantMarketing(t, c, subj, false, "contact.phone")

	r.kill()
	// A hang check, not a speed claim: every call must answer well within
	// this while Redis is down.
	const bound = 3 * time.Second
	body := fmt.Sprintf(`{"items":[{"category":"contact.phone","value":"+66812349999","subject":%q}]}`, subj)
	for i := range 5 {
		start := time.Now()
		resp := s.do(http.MethodPost, "/v1/tokenize", e2eRootToken, "application/json", []byte(body))
		took := time.Since(start)
		if resp.status != http.StatusServiceUnavailable || apiError(t, resp).Error.Code != "STORE_UNAVAILABLE" {
			t.Errorf("tokenize %d with Redis down: %s, want 503 STORE_UNAVAILABLE", i, resp)
		}
		if took > bound {
			t.Errorf("tokenize %d with Redis down took %v (bound %v)", i, took, bound)
		}
		start = time.Now()
		resp = s.do(http.MethodGet, "/readyz", "", "", nil)
		if took := time.Since(start); resp.status != http.StatusServiceUnavailable || took > bound {
			t.Errorf("/readyz with Redis down: %s in %v, want 503 within %v", resp, took, bound)
		}
	}
	start := time.Now()
	_, err := c.Detokenize(context.Background(), marketingRequest(consentID, tok))
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		t.Errorf("detokenize with Redis down: %v, want a 503", err)
	}
	if took := time.Since(start); took > bound {
		t.Errorf("detokenize with Redis down took %v (bound %v)", took, bound)
	}

	r.restart()
	took := waitReadyStatus(t, s, http.StatusOK, 30*time.Second)
	t.Logf("ready again %v after Redis restarted", took)
	res, err := c.Detokenize(context.Background(), marketingRequest(consentID, tok))
	if err != nil || res.Items[0].Value != "+66812340000" {
		t.Fatalf("detokenize after recovery: %+v, %v", res, err)
	}
	tokenizeOne(t, c, vault.TokenizeItem{Category: "contact.phone", Value: "+66812349999", Subject: subj})
	if code := s.stop(syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("SIGTERM after the outage: exit code %d\nstderr:\n%s", code, s.stderr)
	}
}

// TestRedisCluster runs a tokenise/detokenise round trip on a 3-master
// Redis Cluster, with the audit stream on the Cluster too.
func TestRedisCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	seeds, prefix, node := clusterSeeds(t), uniqueName("fve2e")+":", uniqueName("node")
	url := fmt.Sprintf("redis-cluster://%s?prefix=%s", strings.Join(seeds, ","), prefix)
	dropRedisKeys(t, seeds, prefix)
	s := redisReplica(t, url, node, "")
	c := s.root()
	subj := uniqueName("cluster-subject")
	putAdult(t, c, subj)
	items := []vault.TokenizeItem{
		{Category: "contact.phone", Value: "+66812345678", Subject: subj},
		{Category: "contact.email", Value: "cluster.user@example.com", Subject: subj},
		{Category: "identity.name", Value: "Somchai Cluster", Subject: subj},
	}
	res, err := c.Tokenize(ctx, &vault.TokenizeRequest{Items: items})
	if err != nil {
		t.Fatalf("tokenize: %v", err)
	}
	toks := make([]string, len(items))
	for i, it := range res.Items {
		if it.Error != nil {
			t.Fatalf("item %d: %+v", i, it.Error)
		}
		toks[i] = it.Token
	}
	consentID := grantMarketing(t, c, subj, false, "contact.phone", "contact.email", "identity.name")
	got := detokenizeAll(t, c, consentID, toks)
	for i, it := range items {
		if got[toks[i]] != it.Value {
			t.Errorf("token %d: %q, want %q", i, got[toks[i]], it.Value)
		}
	}
	// Deterministic tokens are stable.
	again := tokenizeOne(t, c, items[0])
	if again != toks[0] {
		t.Errorf("deterministic phone token changed: %q then %q", toks[0], again)
	}
}
