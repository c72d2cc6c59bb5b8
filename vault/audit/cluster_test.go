package audit

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/vault/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// TestRedisCluster runs the Log on a real 3-master Redis Cluster: the
// durability check visits every master, the append script runs on the
// stream's slot, and the chain verifies.
func TestRedisCluster(t *testing.T) {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: testredis.ClusterAddrs(t),
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	t.Cleanup(func() { c.Close() })
	node := uniqueNode("cluster")
	sink := newRedisSink(t, c, node)
	l := newLog(t, testConfig(node, sink))
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() { errs <- l.Append(context.Background(), sampleRecord(l.refs, i)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep := verifyClean(t, sink); rep.Records != 50 || rep.Stored != 50 {
		t.Fatalf("%d records, store at %d; want 50 and 50", rep.Records, rep.Stored)
	}
	// A restart resumes from the cluster.
	l2 := newLog(t, testConfig(node, sink))
	if seq, _ := l2.Head(); seq != 50 {
		t.Fatalf("resumed at %d, want 50", seq)
	}
}

// TestRedisDurabilityCheck: a Redis without appendfsync always is refused.
// It runs its own server, so the shared one keeps its settings.
func TestRedisDurabilityCheck(t *testing.T) {
	port, err := testredis.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := testredis.StartServer(t.TempDir(), port, "--appendfsync", "everysec")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _, _ = srv.Process.Wait() })
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if _, err := NewRedisStreamSink(ctx, RedisConfig{Client: c, Node: "n"}); err == nil {
		t.Fatal("NewRedisStreamSink accepted appendfsync everysec")
	}
	if _, err := NewRedisStreamSink(ctx, RedisConfig{Client: c, Node: "n", SkipDurabilityCheck: true}); err != nil {
		t.Fatalf("SkipDurabilityCheck: %v", err)
	}
}

// TestRedisNodes: writers that register are listed (sorted, once each) on a
// Cluster, where the set and the streams live on different slots; a sink
// opened without Register is not.
func TestRedisNodes(t *testing.T) {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: testredis.ClusterAddrs(t)})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	b, a, reader := uniqueNode("nodes-b"), uniqueNode("nodes-a"), uniqueNode("nodes-reader")
	for _, n := range []string{b, a, a} {
		if err := newRedisSink(t, c, n).Register(ctx); err != nil {
			t.Fatal(err)
		}
	}
	_ = newRedisSink(t, c, reader)
	t.Cleanup(func() { c.SRem(context.Background(), NodesKey(""), a, b) })
	nodes, err := RedisNodes(ctx, c, "")
	if err != nil {
		t.Fatal(err)
	}
	ia, ib := slices.Index(nodes, a), slices.Index(nodes, b)
	if ia < 0 || ib < 0 || ia > ib || slices.Contains(nodes, reader) || !slices.IsSorted(nodes) {
		t.Fatalf("RedisNodes = %v; want %s before %s, sorted, without %s", nodes, a, b, reader)
	}
	if n := len(nodes) - len(slices.Compact(slices.Clone(nodes))); n != 0 {
		t.Fatalf("RedisNodes lists %d nodes twice: %v", n, nodes)
	}
}
