package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
)

// Kind is a kind of tampering found by Verify. The zero Kind is invalid.
type Kind int

// Kinds of findings.
const (
	_ Kind = iota
	// Edited: a record's content no longer matches its hash, is not in
	// canonical form, or (rewritten with recomputed hashes) no longer
	// matches the next record's prev_hash or a signed checkpoint.
	Edited
	// Deleted: records are missing from the middle of the chain.
	Deleted
	// Reordered: a record is present but out of place.
	Reordered
	// Inserted: a record that does not belong: a second record with a seq
	// already taken, a seq the chain never reached, or another node's record.
	Inserted
	// Truncated: the log ends before a signed checkpoint.
	Truncated
	// Malformed: an entry that does not decode.
	Malformed
	// BadCheckpoint: a checkpoint whose signature does not verify, of
	// another node, or conflicting with another checkpoint.
	BadCheckpoint
	// MissingCheckpoint: the checkpoint store is empty but the log holds
	// checkpoints: the store was lost or removed, and truncation cannot be
	// ruled out.
	MissingCheckpoint
	// Unsigned: records at the end of the log that no signed checkpoint
	// covers. A Log signs a checkpoint into the log with every group commit,
	// in the same write, so these were appended by someone without the key,
	// or left by a crash mid-write (a restarted Log signs those).
	Unsigned
)

var kindNames = [...]string{"invalid", "edited", "deleted", "reordered", "inserted", "truncated", "malformed",
	"bad-checkpoint", "missing-checkpoint", "unsigned"}

func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// Finding is one problem Verify found.
type Finding struct {
	Kind Kind
	// Seq is the sequence number where it was found: the edited, first
	// deleted, misplaced or inserted record, or the first record missing
	// from a truncated tail.
	Seq uint64
	// Entry is the index of the entry (0-based, in Scan order; the line
	// number minus one in a file) where it was found, or -1 when it is about
	// something absent.
	Entry int64
	// Detail explains, without any record content.
	Detail string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s at seq %d (entry %d): %s", f.Kind, f.Seq, f.Entry, f.Detail)
}

// MaxFindings bounds Report.Findings; further findings are counted in
// Report.Dropped.
const MaxFindings = 1000

// Report is the outcome of Verify.
type Report struct {
	// Node is the chain verified: from the store's checkpoint if it has a
	// valid one, else from the log's first checkpoint or record.
	Node string
	// Entries and Records count what the log holds; Checkpoints counts the
	// valid checkpoint lines in it.
	Entries, Records, Checkpoints int64
	// Last is the highest sequence number in the chain.
	Last uint64
	// Anchored is the highest sequence number a valid signed checkpoint
	// covers (through the prev hashes, it covers every record before it).
	Anchored uint64
	// Stored is the sequence number the checkpoint store's checkpoint
	// covers: the log cannot lose records up to it unnoticed. Records after
	// it could be cut off, with their checkpoints, unnoticed.
	Stored uint64
	// Latest is the checkpoint store's checkpoint, nil if it has none.
	Latest *Checkpoint
	// Findings lists what was found, in the order found. Empty means the
	// chain verifies.
	Findings []Finding
	// Dropped counts findings beyond MaxFindings.
	Dropped int
}

// OK reports whether the chain verified without findings.
func (r *Report) OK() bool { return len(r.Findings) == 0 && r.Dropped == 0 }

func (r *Report) add(k Kind, seq uint64, entry int64, format string, args ...any) {
	for _, f := range r.Findings {
		if f.Kind == k && f.Seq == seq {
			return
		}
	}
	if len(r.Findings) >= MaxFindings {
		r.Dropped++
		return
	}
	r.Findings = append(r.Findings, Finding{Kind: k, Seq: seq, Entry: entry, Detail: fmt.Sprintf(format, args...)})
}

// Verify walks the chain in src and reports tampering. It checks that every
// record carries its own hash in canonical form, that the records form one
// chain 1, 2, ... linked by prev_hash in log order, that every checkpoint
// (in the log and in the checkpoint store) is signed by pub and matches the
// record it names, that no record lies beyond the last checkpoint, and that
// the log does not end before the latest one. The error is for failures to
// read src; what is found is in the Report.
//
// Each finding's Kind is exact for a single tampering operation (one edit,
// one deletion of a run of records, one move, one insertion, one
// truncation); combined tampering is always reported, possibly under
// another kind. Verify reads the checkpoint store, then the log once, in
// memory bounded by the anomalies found (not by the log's size); it can run
// while a Log appends.
func Verify(ctx context.Context, src Source, pub ed25519.PublicKey) (*Report, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("audit: verify: not an Ed25519 public key")
	}
	rep := &Report{}
	w := &walker{rep: rep, next: 1, tops: []string{""}, displaced: map[uint64]*vrec{}, pending: map[uint64]pendingCp{}}

	raw, err := src.Checkpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: reading the checkpoint store: %w", err)
	}
	if raw != nil {
		cp, err := parseCheckpoint(raw, pub)
		if err != nil {
			seq := uint64(0)
			if cp != nil {
				seq = cp.Seq
			}
			rep.add(BadCheckpoint, seq, -1, "the checkpoint store's checkpoint: %v", err)
		} else {
			rep.Latest, rep.Stored = cp, cp.Seq
			w.node, rep.Node = cp.Node, cp.Node
			w.checkpoint(cp, -1)
		}
	}

	rh := newRecordHasher()
	var idx int64 = -1
	err = src.Scan(ctx, func(e []byte) error {
		idx++
		rep.Entries++
		if isCheckpointEntry(e) {
			cp, err := parseCheckpoint(e, pub)
			switch {
			case errors.Is(err, errMalformed):
				rep.add(Malformed, w.next, idx, "checkpoint line does not decode")
			case err != nil:
				rep.add(BadCheckpoint, cp.Seq, idx, "%v", err)
			default:
				rep.Checkpoints++
				if w.node == "" {
					w.node, rep.Node = cp.Node, cp.Node
				}
				if w.held != nil {
					w.heldCps = append(w.heldCps, heldCp{cp, idx})
				} else {
					w.checkpoint(cp, idx)
				}
			}
			return nil
		}
		v := &vrec{idx: idx}
		r, sum, err := rh.decode(e)
		if errors.Is(err, errMalformed) {
			v.malformed = true
		} else {
			rep.Records++
			v.seq, v.hash, v.prev, v.node = r.Seq, r.Hash, r.PrevHash, r.Node
			if err != nil {
				v.problem = "not in canonical form"
			} else if hexHash(&sum) != r.Hash {
				v.problem = "content does not match its hash"
			}
			if w.node == "" {
				w.node, rep.Node = r.Node, r.Node
			}
		}
		w.step(v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: verify: %w", err)
	}
	w.step(nil)
	w.finish()
	if raw == nil && rep.Checkpoints > 0 {
		rep.add(MissingCheckpoint, 0, -1, "the checkpoint store is empty but the log holds %d checkpoints", rep.Checkpoints)
	}
	return rep, nil
}

// vrec is what Verify keeps of a record.
type vrec struct {
	seq              uint64
	hash, prev, node string
	idx              int64
	malformed        bool
	problem          string // why its content does not verify, if it does not
}

// hole is a run of missing sequence numbers, lo..hi, below next.
type hole struct {
	lo, hi      uint64
	before      string // hash of record lo-1
	beforeKnown bool
	after       string // hash record hi must have (prev_hash of hi+1)
}

// walker checks records in log order with one record of look-ahead.
//
// The chain is expected to run 1, 2, 3, ... . A record ahead of the next
// expected seq either opens a hole (records missing so far: deleted, or
// moved later) or, when the record after it is the expected one, was moved
// early or inserted: it is held aside as displaced until its place comes. A
// record behind fills a hole (moved later: reordered) or repeats a seq
// (inserted). Holes never filled are deletions.
type walker struct {
	rep       *Report
	node      string
	next      uint64   // the seq expected next
	topSeq    uint64   // next-1
	tops      []string // hashes seen for topSeq (more than one: duplicates)
	holes     []hole   // sorted by lo
	displaced map[uint64]*vrec
	held      *vrec    // the record waiting for its look-ahead
	heldCps   []heldCp // checkpoint lines that came after held
	pending   map[uint64]pendingCp
	recent    [recentSize]recentRec // ring of accepted records, by seq
}

// heldCp is a checkpoint line read after the held record.
type heldCp struct {
	cp  *Checkpoint
	idx int64
}

// pendingCp is a checkpoint for a record not reached yet.
type pendingCp struct {
	hash string
	idx  int64
}

// recentSize bounds how far back a misplaced checkpoint line is checked.
const recentSize = 1024

type recentRec struct {
	seq  uint64
	hash string
}

// step processes the held record with r as its look-ahead (nil at the end),
// then the checkpoint lines that followed it, and holds r.
func (w *walker) step(r *vrec) {
	if w.held != nil {
		w.process(w.held, r)
		for _, c := range w.heldCps {
			w.checkpoint(c.cp, c.idx)
		}
		clear(w.heldCps)
		w.heldCps = w.heldCps[:0]
	}
	w.held = r
}

// checkpoint applies a valid signed checkpoint: it must be of this chain
// and match its record, now if the walk is there, else when it gets there.
func (w *walker) checkpoint(cp *Checkpoint, idx int64) {
	rep := w.rep
	if cp.Node != w.node {
		rep.add(BadCheckpoint, cp.Seq, idx, "checkpoint of node %q in the chain of %q", cp.Node, w.node)
		return
	}
	rep.Anchored = max(rep.Anchored, cp.Seq)
	switch {
	case cp.Seq == w.topSeq:
		w.checkpointed(cp.Seq, w.tops, cp.Hash, idx)
	case cp.Seq > w.topSeq:
		if p, ok := w.pending[cp.Seq]; ok && p.hash != cp.Hash {
			rep.add(BadCheckpoint, cp.Seq, idx, "two signed checkpoints disagree on record %d", cp.Seq)
			return
		}
		w.pending[cp.Seq] = pendingCp{cp.Hash, idx}
	default:
		if rr := w.recent[cp.Seq%recentSize]; rr.seq == cp.Seq && rr.hash != "" {
			w.checkpointed(cp.Seq, []string{rr.hash}, cp.Hash, idx)
		} else if _, inHole := w.findHole(cp.Seq); inHole {
			w.pending[cp.Seq] = pendingCp{cp.Hash, idx} // the record may come later
		} else {
			rep.add(BadCheckpoint, cp.Seq, idx, "checkpoint for record %d is far from it and was not checked", cp.Seq)
		}
	}
}

// checkpointed reports an Edited record if none of its hashes is the one a
// signed checkpoint gives.
func (w *walker) checkpointed(seq uint64, hashes []string, want string, idx int64) {
	if seq > 0 && !slices.Contains(hashes, want) {
		w.rep.add(Edited, seq, idx, "record %d differs from the signed checkpoint (the chain was rewritten up to here)", seq)
	}
}

func (w *walker) process(r, peek *vrec) {
	rep := w.rep
	if r.malformed {
		rep.add(Malformed, w.next, r.idx, "entry does not decode as a record")
		return
	}
	if r.node != w.node {
		rep.add(Inserted, r.seq, r.idx, "record of node %q in the chain of %q", r.node, w.node)
		return
	}
	if r.problem != "" {
		rep.add(Edited, r.seq, r.idx, "record %d: %s", r.seq, r.problem)
	}
	if r.seq >= w.next {
		w.placeDisplaced(r.seq)
		if d, ok := w.displaced[r.seq]; ok && r.seq == w.next {
			delete(w.displaced, r.seq)
			rep.add(Inserted, d.seq, d.idx, "a second record %d appears before its place", d.seq)
		}
		if r.seq == w.next {
			w.link(r)
			w.accept(r)
			return
		}
		if peek != nil && !peek.malformed && peek.node == w.node && peek.seq == w.next && slices.Contains(w.tops, peek.prev) {
			if _, dup := w.displaced[r.seq]; dup {
				rep.add(Inserted, r.seq, r.idx, "a second record %d appears before its place", r.seq)
				return
			}
			w.displaced[r.seq] = r
			return
		}
		h := hole{lo: w.next, hi: r.seq - 1, after: r.prev}
		if len(w.tops) > 0 {
			h.before, h.beforeKnown = w.tops[0], true
		}
		w.holes = append(w.holes, h)
		w.accept(r)
		return
	}
	if i, ok := w.findHole(r.seq); ok {
		h := w.holes[i]
		rep.add(Reordered, r.seq, r.idx, "record %d appears after records that follow it", r.seq)
		if r.seq == h.lo && h.beforeKnown && r.prev != h.before {
			rep.add(Edited, r.seq, r.idx, "record %d does not chain to record %d", r.seq, r.seq-1)
		}
		if r.seq == h.hi && r.hash != h.after {
			rep.add(Edited, r.seq, r.idx, "record %d is not the record %d chains to", r.seq, r.seq+1)
		}
		w.settled(r.seq, []string{r.hash})
		var parts []hole
		if r.seq > h.lo {
			parts = append(parts, hole{lo: h.lo, hi: r.seq - 1, before: h.before, beforeKnown: h.beforeKnown, after: r.prev})
		}
		if r.seq < h.hi {
			parts = append(parts, hole{lo: r.seq + 1, hi: h.hi, before: r.hash, beforeKnown: true, after: h.after})
		}
		w.holes = slices.Replace(w.holes, i, i+1, parts...)
		return
	}
	rep.add(Inserted, r.seq, r.idx, "a second record %d", r.seq)
	if r.seq == w.topSeq {
		w.tops = append(w.tops, r.hash)
	}
}

// placeDisplaced puts back displaced records whose place has come, up to
// (not including) seq.
func (w *walker) placeDisplaced(seq uint64) {
	for w.next < seq {
		d, ok := w.displaced[w.next]
		if !ok {
			return
		}
		delete(w.displaced, w.next)
		w.rep.add(Reordered, d.seq, d.idx, "record %d appears before record %d", d.seq, d.seq-1)
		w.link(d)
		w.accept(d)
	}
}

// link checks that r, the record expected next, chains to the one before.
func (w *walker) link(r *vrec) {
	if len(w.tops) > 0 && !slices.Contains(w.tops, r.prev) {
		at := w.topSeq
		if at == 0 {
			at = r.seq
		}
		w.rep.add(Edited, at, r.idx, "record %d does not chain to record %d (rewritten?)", r.seq, r.seq-1)
	}
}

// accept makes r the top of the chain.
func (w *walker) accept(r *vrec) {
	w.finishTop()
	w.topSeq, w.next = r.seq, r.seq+1
	w.tops = append(w.tops[:0], r.hash)
	w.rep.Last = max(w.rep.Last, r.seq)
}

// finishTop checks the record the walk leaves against a checkpoint that
// came before it, and remembers it for checkpoint lines that come late.
func (w *walker) finishTop() {
	if w.topSeq == 0 || len(w.tops) == 0 {
		return
	}
	w.settled(w.topSeq, w.tops)
}

// settled is called once per placed record.
func (w *walker) settled(seq uint64, hashes []string) {
	if p, ok := w.pending[seq]; ok {
		delete(w.pending, seq)
		w.checkpointed(seq, hashes, p.hash, p.idx)
	}
	w.recent[seq%recentSize] = recentRec{seq, hashes[0]}
}

func (w *walker) findHole(seq uint64) (int, bool) {
	i := sort.Search(len(w.holes), func(i int) bool { return w.holes[i].hi >= seq })
	return i, i < len(w.holes) && w.holes[i].lo <= seq
}

func (w *walker) finish() {
	rep := w.rep
	w.finishTop()
	for _, seq := range slices.Sorted(maps.Keys(w.displaced)) {
		d := w.displaced[seq]
		if seq == w.next {
			rep.add(Reordered, d.seq, d.idx, "record %d appears before record %d", d.seq, d.seq-1)
			w.link(d)
			w.accept(d)
			w.finishTop()
			continue
		}
		rep.add(Inserted, d.seq, d.idx, "record %d is beyond the end of the chain", d.seq)
	}
	for _, h := range w.holes {
		if h.lo == h.hi {
			rep.add(Deleted, h.lo, -1, "record %d is missing", h.lo)
		} else {
			rep.add(Deleted, h.lo, -1, "records %d to %d are missing", h.lo, h.hi)
		}
	}
	switch {
	case rep.Anchored > rep.Last:
		rep.add(Truncated, rep.Last+1, -1, "the log ends at seq %d but a signed checkpoint covers seq %d", rep.Last, rep.Anchored)
	case rep.Last > rep.Anchored:
		rep.add(Unsigned, rep.Anchored+1, -1, "no signed checkpoint covers records %d to %d", rep.Anchored+1, rep.Last)
	}
}
