package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ctlSink wraps a real sink to observe group commits and inject failures.
type ctlSink struct {
	Sink
	mu      sync.Mutex
	sizes   []int         // entries per Append call
	gate    chan struct{} // when set, Append waits until it is closed
	entered chan struct{} // receives once per gated Append
	fail    error         // when set, Append stores `partial` entries and fails
	partial int
}

func (s *ctlSink) Append(ctx context.Context, b *Batch) error {
	s.mu.Lock()
	gate, entered := s.gate, s.entered
	s.mu.Unlock()
	if gate != nil {
		entered <- struct{}{}
		<-gate
	}
	s.mu.Lock()
	s.sizes = append(s.sizes, b.Len())
	fail, partial := s.fail, s.partial
	s.mu.Unlock()
	if fail != nil {
		if partial > 0 {
			var part Batch
			for i := range min(partial, b.Len()) {
				e, seq, cp := b.Entry(i)
				part.buf = append(part.buf, e...)
				part.add(seq, cp)
			}
			if err := s.Sink.Append(ctx, &part); err != nil {
				return err
			}
		}
		return fail
	}
	return s.Sink.Append(ctx, b)
}

func (s *ctlSink) setGate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate, s.entered = make(chan struct{}), make(chan struct{}, 1)
}

func (s *ctlSink) openGate() {
	s.mu.Lock()
	g := s.gate
	s.gate = nil
	s.mu.Unlock()
	close(g)
}

func (s *ctlSink) setFail(err error, partial int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail, s.partial = err, partial
}

func (s *ctlSink) calls() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.sizes...)
}

// waitQueued waits until n appends wait in l's queue.
func waitQueued(t *testing.T, l *Log, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		q := len(l.queue)
		l.mu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d appends queued, want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func verifyClean(t *testing.T, src Source) *Report {
	t.Helper()
	rep, err := Verify(context.Background(), src, testPub)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("Verify findings: %v", rep.Findings)
	}
	return rep
}

func TestAppendChainsRecords(t *testing.T) {
	sink := openFileSink(t, t.TempDir())
	l := newLog(t, testConfig("node-a", sink))
	recs := appendN(t, l, 10)
	stored := map[uint64][]byte{}
	for _, e := range entries(t, sink) {
		if !isCheckpointEntry(e) {
			var r Record
			if err := json.Unmarshal(e, &r); err != nil {
				t.Fatal(err)
			}
			stored[r.Seq] = e
		}
	}
	prev := ""
	for i, r := range recs {
		if r.Seq != uint64(i+1) || r.Node != "node-a" || r.PrevHash != prev {
			t.Fatalf("record %d: seq %d node %q prev %q, want %d %q %q", i, r.Seq, r.Node, r.PrevHash, i+1, "node-a", prev)
		}
		// The hash is SHA-256 of encoding/json's Marshal of the record with
		// an empty hash (the documented canonical encoding), and the stored
		// line is Marshal of the record.
		c := *r
		c.Hash = ""
		enc, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(enc)
		if want := hex.EncodeToString(sum[:]); r.Hash != want {
			t.Fatalf("record %d: hash %s, want %s", r.Seq, r.Hash, want)
		}
		line, _ := json.Marshal(r)
		if !bytes.Equal(stored[r.Seq], line) {
			t.Fatalf("record %d stored as\n%s\nwant\n%s", r.Seq, stored[r.Seq], line)
		}
		if r.TimeICT == "" || !strings.HasSuffix(r.TimeICT, "+07:00") {
			t.Errorf("record %d: ts_ict %q", r.Seq, r.TimeICT)
		}
		prev = r.Hash
	}
	if seq, h := l.Head(); seq != 10 || h != prev {
		t.Errorf("Head = %d %s, want 10 %s", seq, h, prev)
	}
	verifyClean(t, sink)
}

// TestGroupCommit queues 199 appends behind a sink write in progress and
// checks that they go to the sink in one write, each caller getting its own
// record back.
func TestGroupCommit(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			fx := be.setup(t)
			cs := &ctlSink{Sink: fx.sink}
			l := newLog(t, testConfig(fx.node, cs))
			before := len(cs.calls())

			cs.setGate()
			const n = 200
			recs := make([]*Record, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := func(i int) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					recs[i] = sampleRecord(l.refs, i)
					errs[i] = l.Append(context.Background(), recs[i])
				}()
			}
			start(0)
			<-cs.entered // the first group is in the sink
			for i := 1; i < n; i++ {
				start(i)
			}
			waitQueued(t, l, n-1)
			cs.openGate()
			wg.Wait()

			calls := cs.calls()[before:]
			if len(calls) != 2 || calls[0] != 2 || calls[1] != n { // records plus one checkpoint line
				t.Fatalf("sink writes (entries each) = %v, want [2 %d]", calls, n)
			}
			lines := map[uint64]string{}
			for _, e := range entries(t, fx.sink) {
				if !isCheckpointEntry(e) {
					var r Record
					if err := json.Unmarshal(e, &r); err != nil {
						t.Fatal(err)
					}
					lines[r.Seq] = r.Hash
				}
			}
			seen := map[uint64]bool{}
			for i, r := range recs {
				if errs[i] != nil {
					t.Fatalf("Append %d: %v", i, errs[i])
				}
				if seen[r.Seq] || r.Seq < 1 || r.Seq > n {
					t.Fatalf("Append %d got seq %d (duplicate or out of range)", i, r.Seq)
				}
				seen[r.Seq] = true
				if lines[r.Seq] != r.Hash {
					t.Fatalf("Append %d: seq %d hash %s, stored %s", i, r.Seq, r.Hash, lines[r.Seq])
				}
			}
			verifyClean(t, fx.sink)
		})
	}
}

// TestGroupCommitOwnErrors: a record that cannot be encoded fails alone;
// the rest of its group commits.
func TestGroupCommitOwnErrors(t *testing.T) {
	cs := &ctlSink{Sink: openFileSink(t, t.TempDir())}
	l := newLog(t, testConfig("node-a", cs))
	cs.setGate()
	var wg sync.WaitGroup
	errs := make([]error, 11)
	recs := make([]*Record, 11)
	for i := range recs {
		recs[i] = sampleRecord(l.refs, i)
	}
	recs[5].Details = map[string]string{"x": strings.Repeat("y", maxEntry)}
	wg.Add(1)
	go func() { defer wg.Done(); errs[0] = l.Append(context.Background(), recs[0]) }()
	<-cs.entered
	for i := 1; i < len(recs); i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = l.Append(context.Background(), recs[i]) }()
	}
	waitQueued(t, l, len(recs)-1)
	cs.openGate()
	wg.Wait()
	for i, err := range errs {
		if i == 5 {
			if !errors.Is(err, ErrInvalidRecord) || recs[i].Seq != 0 || recs[i].Hash != "" {
				t.Errorf("oversized record: err %v, seq %d hash %q; want ErrInvalidRecord and no chain fields", err, recs[i].Seq, recs[i].Hash)
			}
			continue
		}
		if err != nil {
			t.Errorf("Append %d: %v", i, err)
		}
	}
	if seq, _ := l.Head(); seq != 10 {
		t.Errorf("head %d, want 10", seq)
	}
	verifyClean(t, cs)
}

// TestGroupFailure: when the sink fails, every Append of the group fails,
// nothing is reported committed and the head stays; appends continue a
// valid chain after recovery. With partial > 0 the sink keeps part of the
// failed group (as a write torn by an error, or a Redis reply lost after
// the write), and the Log continues after what was kept.
func TestGroupFailure(t *testing.T) {
	for _, partial := range []int{0, 7} {
		t.Run(fmt.Sprintf("partial=%d", partial), func(t *testing.T) {
			for _, be := range backends() {
				t.Run(be.name, func(t *testing.T) {
					fx := be.setup(t)
					cs := &ctlSink{Sink: fx.sink}
					l := newLog(t, testConfig(fx.node, cs))
					appendN(t, l, 3)
					_, head := l.Head()

					cs.setGate()
					cs.setFail(errors.New("disk on fire"), partial)
					const n = 30
					recs := make([]*Record, n)
					errs := make([]error, n)
					var wg sync.WaitGroup
					for i := range n {
						recs[i] = sampleRecord(l.refs, 100+i)
						wg.Add(1)
						go func() { defer wg.Done(); errs[i] = l.Append(context.Background(), recs[i]) }()
						if i == 0 {
							<-cs.entered
						}
					}
					waitQueued(t, l, n-1)
					cs.openGate()
					wg.Wait()
					for i := range n {
						if !errors.Is(errs[i], ErrUnavailable) {
							t.Fatalf("Append %d during the failure: %v, want ErrUnavailable", i, errs[i])
						}
						if recs[i].Seq != 0 || recs[i].Hash != "" || recs[i].PrevHash != "" {
							t.Fatalf("failed Append %d left chain fields: seq %d", i, recs[i].Seq)
						}
					}
					// The head never runs ahead of what the sink holds; without
					// a partial write it does not move at all.
					stored := uint64(0)
					for _, e := range entries(t, fx.sink) {
						if !isCheckpointEntry(e) {
							stored++
						}
					}
					if seq, h := l.Head(); seq > stored || (partial == 0 && (seq != 3 || h != head)) {
						t.Fatalf("head at %d during the failure; the sink holds %d records", seq, stored)
					}

					cs.setFail(nil, 0)
					after := appendN(t, l, 4)
					kept := uint64(partial) // both failed groups kept `partial` entries: records only
					if partial > 0 {
						kept = uint64(partial) + 1 // group 1 (one record) kept 1; group 2 (29) kept 7
					}
					if got, want := after[0].Seq, 3+kept+1; got != want {
						t.Errorf("first seq after recovery = %d, want %d", got, want)
					}
					rep := verifyClean(t, fx.source(t))
					if rep.Last != after[3].Seq {
						t.Errorf("chain ends at %d, want %d", rep.Last, after[3].Seq)
					}
				})
			}
		})
	}
}

func TestResume(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			fx := be.setup(t)
			l := newLog(t, testConfig(fx.node, fx.sink))
			recs := appendN(t, l, 5)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if err := l.Append(context.Background(), sampleRecord(l.refs, 9)); !errors.Is(err, ErrClosed) {
				t.Fatalf("Append after Close: %v, want ErrClosed", err)
			}
			l2 := newLog(t, testConfig(fx.node, fx.sink))
			if seq, h := l2.Head(); seq != 5 || h != recs[4].Hash {
				t.Fatalf("resumed head = %d %s, want 5 %s", seq, h, recs[4].Hash)
			}
			r := sampleRecord(l2.refs, 6)
			if err := l2.Append(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			if r.Seq != 6 || r.PrevHash != recs[4].Hash {
				t.Fatalf("after resume: seq %d prev %s", r.Seq, r.PrevHash)
			}
			l2.Close()
			verifyClean(t, fx.source(t))
		})
	}
}

// TestRefuseTamperedTail: New does not continue a chain whose tail does not
// verify, on either sink.
func TestRefuseTamperedTail(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, fx *fixture, es [][]byte) [][]byte
	}{
		{"last record edited", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			i := recordAt(t, es, 6)
			es[i] = bytes.Replace(es[i], []byte("service_delivery"), []byte("marketing"), 1)
			return es
		}},
		{"last record rehashed", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			i := recordAt(t, es, 6)
			es[i], _ = rehash(t, es[i], editPurpose)
			return es
		}},
		{"garbage last line", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			return append(es, []byte("garbage"))
		}},
		{"truncated before the stored checkpoint", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			return es[:recordAt(t, es, 3)]
		}},
		{"checkpoint store removed", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			fx.setCheckpoint(t, nil)
			return es
		}},
		{"another node's checkpoint", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			line, _ := appendCheckpoint(nil, &Checkpoint{Node: "node-z", Seq: 6, Hash: "00"}, testSigningKey, nil)
			fx.setCheckpoint(t, line)
			return es
		}},
	}
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					fx := be.setup(t)
					cfg := testConfig(fx.node, fx.sink)
					cfg.CheckpointEvery = 2
					l := newLog(t, cfg)
					appendN(t, l, 6)
					l.Close()
					es := entries(t, fx.sink)
					tampered := tc.tamper(t, fx, es)
					fx.rewrite(t, tampered)
					cfg.Sink = fx.reopen(t)
					if _, err := New(cfg); !errors.Is(err, ErrTampered) {
						t.Fatalf("New on a tampered tail: %v, want ErrTampered", err)
					}
					// Refusing changes nothing.
					if got := entries(t, fx.reopen(t)); len(got) != len(tampered) {
						t.Fatalf("New changed the log: %d entries, had %d", len(got), len(tampered))
					}
				})
			}
		})
	}
}

func TestAllowMissingCheckpoint(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			fx := be.setup(t)
			l := newLog(t, testConfig(fx.node, fx.sink))
			appendN(t, l, 3)
			l.Close()
			fx.setCheckpoint(t, nil)
			cfg := testConfig(fx.node, fx.sink)
			cfg.AllowMissingCheckpoint = true
			l2 := newLog(t, cfg)
			if seq, _ := l2.Head(); seq != 3 {
				t.Fatalf("head %d, want 3", seq)
			}
			raw, err := fx.sink.Checkpoint(context.Background())
			if err != nil || raw == nil {
				t.Fatalf("checkpoint store after start: %q, %v; want a checkpoint", raw, err)
			}
			appendN(t, l2, 1)
			l2.Close()
			verifyClean(t, fx.source(t))
		})
	}
}

func TestTornTailRepaired(t *testing.T) {
	dir := t.TempDir()
	sink := openFileSink(t, dir)
	l := newLog(t, testConfig("node-a", sink))
	appendN(t, l, 5)
	l.Close()
	sink.Close()
	path := filepath.Join(dir, LogFileName)
	whole := readBytes(t, path)
	torn := []byte(`{"seq":6,"node":"node-a","prev_hash":"ab`)
	if err := os.WriteFile(path, append(bytes.Clone(whole), torn...), 0o600); err != nil {
		t.Fatal(err)
	}
	// A reader ignores the torn line and reports it; it does not repair.
	ro, err := OpenFileSink(FileConfig{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	verifyClean(t, ro)
	if ro.TornBytes() != int64(len(torn)) {
		t.Errorf("reader TornBytes = %d, want %d", ro.TornBytes(), len(torn))
	}
	sink2 := openFileSink(t, dir)
	if sink2.TornBytes() != int64(len(torn)) {
		t.Fatalf("TornBytes = %d, want %d", sink2.TornBytes(), len(torn))
	}
	if got := readBytes(t, path); !bytes.Equal(got, whole) {
		t.Fatalf("after repair the file has %d bytes, want the %d whole ones", len(got), len(whole))
	}
	l2 := newLog(t, testConfig("node-a", sink2))
	r := appendN(t, l2, 1)[0]
	if r.Seq != 6 {
		t.Fatalf("seq after repair %d, want 6", r.Seq)
	}
	verifyClean(t, sink2)
}

func TestFileSinkModeAndLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	sink := openFileSink(t, dir)
	l := newLog(t, testConfig("node-a", sink))
	appendN(t, l, 1)
	l.Close()
	for _, p := range []string{filepath.Join(dir, LogFileName), filepath.Join(dir, CheckpointFileName)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", fi.Mode().Perm())
	}
	if _, err := OpenFileSink(FileConfig{Dir: dir}); !errors.Is(err, errLogInUse) {
		t.Fatalf("second writer: %v, want errLogInUse", err)
	}
}

// TestSecondRedisWriter: two Logs configured with one node name: the
// second one's write conflicts on the stream ID and fails closed; the chain
// stays valid.
func TestSecondRedisWriter(t *testing.T) {
	c := redisClient(t)
	node := uniqueNode("twin")
	sink := newRedisSink(t, c, node)
	a := newLog(t, testConfig(node, sink))
	appendN(t, a, 1)
	b := newLog(t, testConfig(node, sink))
	appendN(t, a, 1)
	if err := b.Append(context.Background(), sampleRecord(b.refs, 7)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("second writer's Append: %v, want ErrUnavailable", err)
	}
	verifyClean(t, sink)
}

func TestCheckpointPacing(t *testing.T) {
	sink := openFileSink(t, t.TempDir())
	cfg := testConfig("node-a", sink)
	cfg.CheckpointEvery = 5
	l := newLog(t, cfg)
	appendN(t, l, 12)
	if got := storedSeq(t, sink); got != 10 {
		t.Errorf("checkpoint store at seq %d after 12 records, want 10", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := storedSeq(t, sink); got != 12 {
		t.Errorf("checkpoint store at seq %d after Close, want 12", got)
	}
	if rep := verifyClean(t, sink); rep.Checkpoints != 13 {
		t.Errorf("%d checkpoint lines, want 13 (genesis and one per group)", rep.Checkpoints)
	}
}

func TestCheckpointInterval(t *testing.T) {
	sink := openFileSink(t, t.TempDir())
	cfg := testConfig("node-a", sink)
	cfg.Clock = nil // real time
	cfg.CheckpointEvery = 1 << 20
	cfg.CheckpointInterval = 30 * time.Millisecond
	l := newLog(t, cfg)
	appendN(t, l, 3)
	deadline := time.Now().Add(3 * time.Second)
	for storedSeq(t, sink) != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint store at seq %d, want 3 within the interval", storedSeq(t, sink))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func storedSeq(t *testing.T, s Source) uint64 {
	t.Helper()
	raw, err := s.Checkpoint(context.Background())
	if err != nil || raw == nil {
		t.Fatalf("Checkpoint: %q %v", raw, err)
	}
	cp, err := parseCheckpoint(raw, testPub)
	if err != nil {
		t.Fatal(err)
	}
	return cp.Seq
}

func TestAppendCanceledBeforeCommit(t *testing.T) {
	cs := &ctlSink{Sink: openFileSink(t, t.TempDir())}
	l := newLog(t, testConfig("node-a", cs))
	cs.setGate()
	done := make(chan error)
	go func() { done <- l.Append(context.Background(), sampleRecord(l.refs, 1)) }()
	<-cs.entered
	ctx, cancel := context.WithCancel(context.Background())
	r := sampleRecord(l.refs, 2)
	canceled := make(chan error)
	go func() { canceled <- l.Append(ctx, r) }()
	waitQueued(t, l, 1)
	cancel()
	if err := <-canceled; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Append: %v", err)
	}
	cs.openGate()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r.Seq != 0 {
		t.Fatalf("canceled record got seq %d", r.Seq)
	}
	if rep := verifyClean(t, cs); rep.Records != 1 {
		t.Fatalf("%d records, want only the uncanceled one", rep.Records)
	}
}

func TestRefs(t *testing.T) {
	key := bytes.Repeat([]byte{1}, RefKeySize)
	a, _ := NewRefs(key)
	b, _ := NewRefs(bytes.Clone(key))
	other, _ := NewRefs(bytes.Repeat([]byte{2}, RefKeySize))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("fieldvault audit ref v1\x00u1"))
	want := Ref(hex.EncodeToString(mac.Sum(nil))[:RefLen])
	if got := a.Ref("u1"); got != want || b.Ref("u1") != want {
		t.Fatalf("Ref(u1) = %s / %s, want %s", got, b.Ref("u1"), want)
	}
	if other.Ref("u1") == want || a.Ref("u2") == want {
		t.Fatal("Ref does not depend on the key or the identifier")
	}
	if _, err := NewRefs(key[:16]); err == nil {
		t.Fatal("NewRefs accepted a 16-byte key")
	}
	// The Log's Refs use Config.RefKey, across restarts.
	l := newLog(t, Config{Node: "n", RefKey: key, SigningKey: testSigningKey, Sink: openFileSink(t, t.TempDir())})
	if l.Ref("u1") != want {
		t.Fatal("Log.Ref differs from Refs.Ref with the same key")
	}
}

func TestConfigRedactsKeys(t *testing.T) {
	cfg := testConfig("node-a", nil)
	cfg.RefKey = bytes.Repeat([]byte{0xc3}, RefKeySize)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%s", cfg)} {
		for _, secret := range [][]byte{cfg.RefKey, cfg.SigningKey, cfg.SigningKey.Seed()} {
			for _, form := range []string{string(secret), hex.EncodeToString(secret), fmt.Sprint(secret), fmt.Sprintf("%x", secret)} {
				if strings.Contains(s, form) {
					t.Fatalf("formatted Config shows key material: %s", s)
				}
			}
		}
		if !strings.Contains(s, "node-a") {
			t.Fatalf("formatted Config lost the node: %s", s)
		}
	}
}

func TestNewValidates(t *testing.T) {
	sink := openFileSink(t, t.TempDir())
	good := testConfig("node-a", sink)
	for name, mut := range map[string]func(*Config){
		"node empty":      func(c *Config) { c.Node = "" },
		"node with brace": func(c *Config) { c.Node = "a}b" },
		"short ref key":   func(c *Config) { c.RefKey = c.RefKey[:31] },
		"no signing key":  func(c *Config) { c.SigningKey = nil },
		"no sink":         func(c *Config) { c.Sink = nil },
	} {
		cfg := good
		mut(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendRejectsInvalid(t *testing.T) {
	l := newLog(t, testConfig("node-a", openFileSink(t, t.TempDir())))
	for name, r := range map[string]*Record{
		"nil":                nil,
		"year 10000":         {Type: TypeAdmin, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"expiry before 0000": {Type: TypeAdmin, Evidence: &Snapshot{Expires: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}},
		"details key":        {Type: TypeAdmin, Details: map[string]string{"a\xff": "x", "a\xfe": "y"}},
	} {
		if err := l.Append(context.Background(), r); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%s: Append = %v, want ErrInvalidRecord", name, err)
		}
	}
	if seq, _ := l.Head(); seq != 0 {
		t.Errorf("head %d after invalid appends", seq)
	}
}
