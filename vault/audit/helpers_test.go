package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/vault/internal/testredis"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testredis.Cleanup()
	os.Exit(code)
}

// Test keys, derived from fixed seeds so failures reproduce.
var (
	testRefKey     = bytes.Repeat([]byte{0x5a}, RefKeySize)
	testSigningKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x42}, ed25519.SeedSize))
	testPub        = testSigningKey.Public().(ed25519.PublicKey)
	otherKey       = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x17}, ed25519.SeedSize))
)

// fakeClock advances 1 ms per reading.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func testConfig(node string, sink Sink) Config {
	return Config{
		Node:               node,
		RefKey:             testRefKey,
		SigningKey:         testSigningKey,
		Sink:               sink,
		Clock:              newFakeClock().Now,
		CheckpointEvery:    4,
		CheckpointInterval: time.Hour,
		SinkTimeout:        30 * time.Second, // a shared, loaded CI machine can stall fsync for seconds
	}
}

func openFileSink(t testing.TB, dir string) *FileSink {
	t.Helper()
	s, err := OpenFileSink(FileConfig{Dir: dir})
	if err != nil {
		t.Fatalf("OpenFileSink: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newLog(t testing.TB, cfg Config) *Log {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

var nodeCounter atomic.Int64

// uniqueNode returns a node name no other test in this process uses, so
// that tests sharing one Redis never share a stream.
func uniqueNode(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), nodeCounter.Add(1))
}

func redisClient(t testing.TB) redis.UniversalClient {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: testredis.Addr(t), ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

func newRedisSink(t testing.TB, c redis.UniversalClient, node string) *RedisStreamSink {
	t.Helper()
	s, err := NewRedisStreamSink(context.Background(), RedisConfig{Client: c, Node: node})
	if err != nil {
		t.Fatalf("NewRedisStreamSink: %v", err)
	}
	t.Cleanup(func() {
		c.Del(context.Background(), StreamKey("", node), CheckpointKey("", node))
	})
	return s
}

// sampleRecord returns a realistic decision record for subject i%5.
func sampleRecord(refs *Refs, i int) *Record {
	subject := refs.Ref(fmt.Sprintf("user-%d", i%5))
	return &Record{
		Type:          TypeDecision,
		DecisionID:    fmt.Sprintf("d_%06d", i),
		RequestID:     fmt.Sprintf("req-%d", i),
		PolicyVersion: "2020-09-15",
		PolicySHA256:  strings.Repeat("ab", 32),
		Principal:     "svc-booking",
		Roles:         []string{"service"},
		Client:        refs.Ref("10.0.0.7"),
		Purpose:       "service_delivery",
		Ground:        &Ground{Type: "contract", IRI: "https://w3id.org/dpv#Contract", Section: "PDPA s.24(3)", Ref: refs.Ref("contract-9")},
		Recipient:     &Party{ID: "booking", Country: "TH"},
		Reveal:        "full",
		Decision:      Allow,
		Released:      2,
		Items: []Item{
			{Token: refs.Ref(fmt.Sprintf("tok_ph_%d", i)), Subject: subject, SubjectType: "data_subject", AgeBand: "20-64",
				Category: "contact.phone", Tier: "T0", Decision: Allow},
			{Token: refs.Ref(fmt.Sprintf("tok_em_%d", i)), Subject: subject, SubjectType: "data_subject", AgeBand: "20-64",
				Category: "contact.email", Tier: "T0", Decision: Allow},
		},
	}
}

// appendN appends n sample records one after another.
func appendN(t testing.TB, l *Log, n int) []*Record {
	t.Helper()
	recs := make([]*Record, n)
	for i := range n {
		recs[i] = sampleRecord(l.refs, i)
		if err := l.Append(context.Background(), recs[i]); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
	return recs
}

// entries reads every entry of src, copied.
func entries(t testing.TB, src Source) [][]byte {
	t.Helper()
	var out [][]byte
	err := src.Scan(context.Background(), func(e []byte) error {
		out = append(out, bytes.Clone(e))
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return out
}

// recordAt returns the index in es of the record line with seq.
func recordAt(t testing.TB, es [][]byte, seq uint64) int {
	t.Helper()
	prefix := fmt.Appendf(nil, `{"seq":%d,`, seq)
	for i, e := range es {
		if bytes.HasPrefix(e, prefix) {
			return i
		}
	}
	t.Fatalf("no record %d", seq)
	return -1
}

// rehash recomputes a record line's hash after an edit (as an attacker
// without the signing key can), optionally setting its prev_hash.
func rehash(t testing.TB, line []byte, edit func(*Record)) ([]byte, string) {
	t.Helper()
	r, _, err := newRecordHasher().decode(line)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	edit(r)
	r.Hash = ""
	enc, hs, _ := appendRecord(nil, r)
	sum := sha256.Sum256(enc)
	h := hexHash(&sum)
	out := append(append(append([]byte(nil), enc[:hs]...), h...), enc[hs:]...)
	return out, h
}

// rewriteFile replaces the log file of dir with es.
func rewriteFile(t testing.TB, dir string, es [][]byte) {
	t.Helper()
	var b bytes.Buffer
	for _, e := range es {
		b.Write(e)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, LogFileName), b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rewriteStream replaces node's stream with es, as someone with write access
// to Redis can.
func rewriteStream(t testing.TB, c redis.UniversalClient, node string, es [][]byte) {
	t.Helper()
	ctx := context.Background()
	key := StreamKey("", node)
	if err := c.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if err := c.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"e", e}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
}
