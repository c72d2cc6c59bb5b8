package audit

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fixture is one sink backend under test, with the write access an
// attacker has: to the log and to the checkpoint store.
type fixture struct {
	node          string
	sink          Sink
	source        func(t *testing.T) Source // a reader for Verify, opened after tampering
	reopen        func(t *testing.T) Sink   // a new writer sink on the same log
	rewrite       func(t *testing.T, es [][]byte)
	setCheckpoint func(t *testing.T, cp []byte) // nil removes it
}

type backend struct {
	name  string
	setup func(t *testing.T) *fixture
}

func backends() []backend {
	return []backend{
		{"file", func(t *testing.T) *fixture {
			dir := t.TempDir()
			cpPath := filepath.Join(dir, CheckpointFileName)
			first := openFileSink(t, dir)
			cur := first
			return &fixture{
				node: "node-a",
				sink: first,
				reopen: func(t *testing.T) Sink {
					first.Close()
					cur.Close()
					cur = openFileSink(t, dir)
					return cur
				},
				source: func(t *testing.T) Source {
					s, err := OpenFileSink(FileConfig{Dir: dir, ReadOnly: true})
					if err != nil {
						t.Fatal(err)
					}
					return s
				},
				rewrite: func(t *testing.T, es [][]byte) { rewriteFile(t, dir, es) },
				setCheckpoint: func(t *testing.T, cp []byte) {
					if cp == nil {
						if err := os.Remove(cpPath); err != nil {
							t.Fatal(err)
						}
						return
					}
					if err := os.WriteFile(cpPath, cp, 0o600); err != nil {
						t.Fatal(err)
					}
				},
			}
		}},
		{"redis", func(t *testing.T) *fixture {
			c := redisClient(t)
			node := uniqueNode("tamper")
			s := newRedisSink(t, c, node)
			return &fixture{
				node:    node,
				sink:    s,
				source:  func(*testing.T) Source { return s },
				reopen:  func(*testing.T) Sink { return s },
				rewrite: func(t *testing.T, es [][]byte) { rewriteStream(t, c, node, es) },
				setCheckpoint: func(t *testing.T, cp []byte) {
					var err error
					if cp == nil {
						err = c.Del(context.Background(), CheckpointKey("", node)).Err()
					} else {
						err = c.Set(context.Background(), CheckpointKey("", node), cp, 0).Err()
					}
					if err != nil {
						t.Fatal(err)
					}
				},
			}
		}},
	}
}

const chainLen = 20

// buildChain writes chainLen records one by one (so every record has its
// own checkpoint line; the store gets one every 4) and closes the Log.
func buildChain(t *testing.T, fx *fixture) [][]byte {
	t.Helper()
	l := newLog(t, testConfig(fx.node, fx.sink))
	appendN(t, l, chainLen)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return entries(t, fx.sink)
}

type tamperCase struct {
	name   string
	tamper func(t *testing.T, fx *fixture, es [][]byte) [][]byte
	kind   Kind
	seq    uint64
}

// runTamper builds a chain on every backend, applies each case and checks
// that Verify reports tc.kind at tc.seq first, and nothing of another kind.
func runTamper(t *testing.T, cases []tamperCase) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					fx := be.setup(t)
					es := buildChain(t, fx)
					fx.rewrite(t, tc.tamper(t, fx, slices.Clone(es)))
					rep, err := Verify(context.Background(), fx.source(t), testPub)
					if err != nil {
						t.Fatalf("Verify: %v", err)
					}
					if rep.OK() {
						t.Fatalf("Verify found nothing, want %s at seq %d", tc.kind, tc.seq)
					}
					if f := rep.Findings[0]; f.Kind != tc.kind || f.Seq != tc.seq {
						t.Errorf("first finding = %v, want %s at seq %d", f, tc.kind, tc.seq)
					}
					for _, f := range rep.Findings {
						if f.Kind != tc.kind {
							t.Errorf("unexpected finding %v (want only %s)", f, tc.kind)
						}
					}
				})
			}
		})
	}
}

func editPurpose(r *Record) { r.Purpose = "marketing" }

func TestVerifyClean(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			fx := be.setup(t)
			buildChain(t, fx)
			rep, err := Verify(context.Background(), fx.source(t), testPub)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !rep.OK() {
				t.Fatalf("findings on an untampered log: %v", rep.Findings)
			}
			want := Report{Node: fx.node, Entries: 2*chainLen + 1, Records: chainLen, Checkpoints: chainLen + 1,
				Last: chainLen, Anchored: chainLen, Stored: chainLen}
			got := *rep
			got.Latest = nil
			if !reportEqual(got, want) {
				t.Errorf("report = %+v, want %+v", got, want)
			}
			if rep.Latest == nil || rep.Latest.Seq != chainLen || rep.Latest.Node != fx.node {
				t.Errorf("Latest = %+v, want the checkpoint of seq %d", rep.Latest, chainLen)
			}
		})
	}
}

func reportEqual(a, b Report) bool {
	return a.Node == b.Node && a.Entries == b.Entries && a.Records == b.Records && a.Checkpoints == b.Checkpoints &&
		a.Last == b.Last && a.Anchored == b.Anchored && a.Stored == b.Stored && len(a.Findings) == 0 && len(b.Findings) == 0
}

func TestVerifyEdited(t *testing.T) {
	runTamper(t, []tamperCase{
		{"content", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			i := recordAt(t, es, 5)
			es[i] = bytes.Replace(es[i], []byte(`"purpose_code":"service_delivery"`), []byte(`"purpose_code":"marketing"`), 1)
			return es
		}, Edited, 5},
		{"decision", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			i := recordAt(t, es, 7)
			es[i] = bytes.ReplaceAll(es[i], []byte(`"ALLOW"`), []byte(`"DENY"`))
			return es
		}, Edited, 7},
		{"not canonical", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			i := recordAt(t, es, 5)
			es[i] = bytes.Replace(es[i], []byte(`"node":`), []byte(`"node" :`), 1)
			return es
		}, Edited, 5},
		{"rehashed", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			i := recordAt(t, es, 5)
			es[i], _ = rehash(t, es[i], editPurpose)
			return es
		}, Edited, 5},
		{"chain rewritten", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			// Without the signing key, the rewritten records no longer match
			// the checkpoints.
			prev := ""
			for seq := uint64(5); seq <= chainLen; seq++ {
				i := recordAt(t, es, seq)
				es[i], prev = rehash(t, es[i], func(r *Record) {
					if seq == 5 {
						editPurpose(r)
					} else {
						r.PrevHash = prev
					}
				})
			}
			return es
		}, Edited, 5},
	})
}

func TestVerifyDeleted(t *testing.T) {
	runTamper(t, []tamperCase{
		{"one record", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			return slices.Delete(es, recordAt(t, es, 5), recordAt(t, es, 5)+1)
		}, Deleted, 5},
		{"a run with its checkpoints", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			return slices.Delete(es, recordAt(t, es, 5), recordAt(t, es, 8))
		}, Deleted, 5},
		{"the first record", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			return slices.Delete(es, recordAt(t, es, 1), recordAt(t, es, 1)+1)
		}, Deleted, 1},
	})
}

func TestVerifyReordered(t *testing.T) {
	move := func(t *testing.T, es [][]byte, seq, after uint64) [][]byte {
		i := recordAt(t, es, seq)
		line := es[i]
		es = slices.Delete(es, i, i+1)
		j := recordAt(t, es, after)
		return slices.Insert(es, j+1, line)
	}
	runTamper(t, []tamperCase{
		{"swapped", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			i, j := recordAt(t, es, 5), recordAt(t, es, 6)
			es[i], es[j] = es[j], es[i]
			return es
		}, Reordered, 6},
		{"moved later", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			return move(t, es, 5, 9)
		}, Reordered, 5},
		{"moved earlier", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			return move(t, es, 9, 4)
		}, Reordered, 9},
	})
}

func TestVerifyInserted(t *testing.T) {
	runTamper(t, []tamperCase{
		{"forged after the original", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			i := recordAt(t, es, 5)
			forged, _ := rehash(t, es[i], editPurpose)
			return slices.Insert(es, i+1, forged)
		}, Inserted, 5},
		{"forged before the original", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			i := recordAt(t, es, 5)
			forged, _ := rehash(t, es[i], editPurpose)
			return slices.Insert(es, i, forged)
		}, Inserted, 5},
		{"replayed", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			return slices.Insert(es, recordAt(t, es, 7)+1, es[recordAt(t, es, 3)])
		}, Inserted, 3},
		{"another node's record", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			other, _ := rehash(t, es[recordAt(t, es, 12)], func(r *Record) { r.Node = "node-z" })
			return slices.Insert(es, recordAt(t, es, 10)+1, other)
		}, Inserted, 12},
		{"appended past the end", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			last := es[recordAt(t, es, chainLen)]
			r, _, _ := newRecordHasher().decode(last)
			forged, _ := rehash(t, last, func(n *Record) { n.Seq, n.PrevHash = chainLen+1, r.Hash })
			return append(es, forged)
		}, Unsigned, chainLen + 1},
	})
}

func TestVerifyTruncated(t *testing.T) {
	runTamper(t, []tamperCase{
		{"tail with its checkpoints", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			return es[:recordAt(t, es, 17)]
		}, Truncated, 17},
		{"last record", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			return es[:recordAt(t, es, chainLen)]
		}, Truncated, chainLen},
		{"everything", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			return nil
		}, Truncated, 1},
	})
}

func TestVerifyCheckpointStore(t *testing.T) {
	runTamper(t, []tamperCase{
		{"removed", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			fx.setCheckpoint(t, nil)
			return es
		}, MissingCheckpoint, 0},
		{"signed by another key", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			line, _ := appendCheckpoint(nil, &Checkpoint{Node: fx.node, Seq: chainLen + 5, Hash: "00"}, otherKey, nil)
			fx.setCheckpoint(t, line)
			return es
		}, BadCheckpoint, chainLen + 5},
		{"forged checkpoint line in the log", func(t *testing.T, fx *fixture, es [][]byte) [][]byte {
			line, _ := appendCheckpoint(nil, &Checkpoint{Node: fx.node, Seq: 3, Hash: "00"}, otherKey, nil)
			return slices.Insert(es, recordAt(t, es, 3)+1, line)
		}, BadCheckpoint, 3},
	})
}

// TestVerifyLimits pins down what the package documentation says the chain
// does not prove: a log cut back together with its checkpoint store, to a
// consistent earlier state, verifies.
func TestVerifyLimits(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			fx := be.setup(t)
			es := buildChain(t, fx)
			cut := recordAt(t, es, 12) + 2 // record 12 and its checkpoint line
			fx.rewrite(t, es[:cut])
			fx.setCheckpoint(t, es[cut-1])
			rep, err := Verify(context.Background(), fx.source(t), testPub)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() || rep.Last != 12 {
				t.Fatalf("report = %+v, want a clean chain ending at 12", rep)
			}
		})
	}
}
