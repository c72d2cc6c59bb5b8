package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fieldvault/fieldvault/vault/internal/testredis"
	"github.com/fieldvault/fieldvault/vault/store"
	fvredis "github.com/fieldvault/fieldvault/vault/store/redis"
	"github.com/fieldvault/fieldvault/vault/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testredis.Cleanup()
	os.Exit(code)
}

// target is a Redis the tests run against: the URL of the shared
// standalone server or Cluster, and a client for test setup.
type target struct {
	name string
	url  string
}

func standalone(t testing.TB) target {
	return target{"standalone", "redis://" + testredis.Addr(t) + "/0"}
}

func cluster(t testing.TB) target {
	return target{"cluster", "redis-cluster://" + strings.Join(testredis.ClusterAddrs(t), ",")}
}

var configOnce sync.Map // url -> struct{}

// adminClient returns a client of tg for setup and inspection, closed at
// the end of the test. The first call per Redis sets the hash encoding
// limits the package documentation asks for.
func adminClient(t testing.TB, tg target) goredis.UniversalClient {
	t.Helper()
	var opt fvredis.Options
	c, err := fvredis.NewClient(tg.url, &opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, done := configOnce.LoadOrStore(tg.url, struct{}{}); !done {
		forEachMaster(t, c, func(n goredis.Cmdable) error {
			return n.ConfigSet(context.Background(), "hash-max-listpack-entries", "1024").Err()
		})
		forEachMaster(t, c, func(n goredis.Cmdable) error {
			return n.ConfigSet(context.Background(), "hash-max-listpack-value", "1024").Err()
		})
	}
	return c
}

func forEachMaster(t testing.TB, c goredis.UniversalClient, fn func(goredis.Cmdable) error) {
	t.Helper()
	ctx := context.Background()
	var err error
	if cc, ok := c.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return fn(n) })
	} else {
		err = fn(c)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// newPrefix returns a key prefix no other test uses, and deletes its keys
// when the test ends.
func newPrefix(t testing.TB, tg target) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "fvtest:" + hex.EncodeToString(b[:]) + ":"
	c := adminClient(t, tg)
	t.Cleanup(func() { dropPrefix(t, c, prefix) })
	return prefix
}

// dropPrefix deletes every key starting with prefix.
func dropPrefix(t testing.TB, c goredis.UniversalClient, prefix string) {
	t.Helper()
	forEachMaster(t, c, func(n goredis.Cmdable) error {
		ctx := context.Background()
		iter := n.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return err
		}
		for _, k := range keys {
			// One key per call: keys are on many slots.
			if err := n.Unlink(ctx, k).Err(); err != nil {
				return err
			}
		}
		return nil
	})
}

// opener opens stores on tg with fresh prefixes and remembers each
// store's prefix for reopening.
type opener struct {
	tg       target
	bits     int
	prefixes sync.Map // *fvredis.Store -> string
}

func (o *opener) openPrefix(t testing.TB, prefix string) *fvredis.Store {
	t.Helper()
	s, err := fvredis.Open(context.Background(), o.tg.url,
		fvredis.Options{Prefix: prefix, BucketBits: o.bits, AOFCheck: fvredis.AOFRequire})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	o.prefixes.Store(s, prefix)
	return s
}

func (o *opener) open(t *testing.T) store.Store {
	t.Helper()
	return o.openPrefix(t, newPrefix(t, o.tg))
}

func (o *opener) reopen(t *testing.T, s store.Store) store.Store {
	t.Helper()
	prefix, ok := o.prefixes.Load(s)
	if !ok {
		t.Fatal("reopen of a store not opened by open")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return o.openPrefix(t, prefix.(string))
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		tg   func(testing.TB) target
		bits int
	}{
		{"standalone", standalone, 0},
		// Four buckets: every bucket holds many rows, so scans page
		// inside buckets.
		{"standalone-4-buckets", standalone, 2},
		{"cluster", cluster, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &opener{tg: tc.tg(t), bits: tc.bits}
			storetest.Run(t, o.open)
		})
	}
}

func TestDurability(t *testing.T) {
	for _, tc := range []struct {
		name string
		tg   func(testing.TB) target
	}{
		{"standalone", standalone},
		{"cluster", cluster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &opener{tg: tc.tg(t)}
			storetest.RunDurability(t, o.open, o.reopen)
		})
	}
}
