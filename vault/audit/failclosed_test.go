package audit

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/vault/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// TestFailClosedRedisStopped stops a real Redis under the Log: every Append
// fails, no record is reported committed, and after Redis restarts (from its
// AOF) appends continue a chain that verifies.
func TestFailClosedRedisStopped(t *testing.T) {
	dir := t.TempDir()
	port, err := testredis.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	var srv *exec.Cmd
	start := func() {
		t.Helper()
		if srv, err = testredis.StartServer(dir, port); err != nil {
			t.Fatal(err)
		}
	}
	stop := func() {
		if srv != nil {
			_ = srv.Process.Kill()
			_, _ = srv.Process.Wait()
			srv = nil
		}
	}
	start()
	t.Cleanup(stop)

	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port),
		DialTimeout: 300 * time.Millisecond, ReadTimeout: 2 * time.Second, MaxRetries: 1})
	t.Cleanup(func() { c.Close() })
	node := uniqueNode("stop")
	sink, err := NewRedisStreamSink(context.Background(), RedisConfig{Client: c, Node: node})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(node, sink)
	cfg.SinkTimeout = 3 * time.Second
	l := newLog(t, cfg)
	appendN(t, l, 3)
	_, head := l.Head()

	stop()
	for i := range 3 {
		r := sampleRecord(l.refs, 50+i)
		err := l.Append(context.Background(), r)
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Append with Redis down: %v, want ErrUnavailable", err)
		}
		if r.Seq != 0 || r.Hash != "" {
			t.Fatalf("failed Append reported seq %d", r.Seq)
		}
	}
	if seq, h := l.Head(); seq != 3 || h != head {
		t.Fatalf("head moved to %d while Redis was down", seq)
	}

	start()
	recs := appendN(t, l, 3)
	if recs[0].Seq != 4 || recs[0].PrevHash != head {
		t.Fatalf("after recovery: seq %d prev %s, want 4 %s", recs[0].Seq, recs[0].PrevHash, head)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep := verifyClean(t, sink); rep.Records != 6 || rep.Stored != 6 {
		t.Fatalf("after recovery: %d records, store at %d; want 6 and 6", rep.Records, rep.Stored)
	}
}
