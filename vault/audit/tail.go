package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// start resumes the chain from the sink before the Log accepts appends.
func (l *Log) start(ctx context.Context, allowMissing bool) error {
	raw, err := l.sink.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("%w: reading the checkpoint store: %w", ErrUnavailable, err)
	}
	var anchor *Checkpoint
	if raw != nil {
		cp, err := parseCheckpoint(raw, l.pub)
		if err != nil {
			return fmt.Errorf("%w: checkpoint store: %w", ErrTampered, err)
		}
		if cp.Node != l.node {
			return fmt.Errorf("%w: the checkpoint store holds node %q's checkpoint, not %q's", ErrTampered, cp.Node, l.node)
		}
		anchor = cp
	}
	var t tail
	if anchor != nil {
		t, err = l.readTail(ctx, anchor.Seq, anchor.Hash, true)
	} else {
		t, err = l.readTail(ctx, 0, "", false)
		if err == nil && t.entries > 0 && !allowMissing {
			err = fmt.Errorf("%w: the checkpoint store is empty but the log is not (lost or removed store?); "+
				"verify the log and set AllowMissingCheckpoint to continue it", ErrTampered)
		}
	}
	if err != nil {
		return err
	}
	l.head = t.head
	switch {
	case anchor != nil && anchor.Seq == t.head.seq:
		l.cpSeq, l.storeSeq, l.storeTime = anchor.Seq, anchor.Seq, anchor.Time
		return nil
	case t.headCp != nil:
		// The log's last checkpoint covers the head but the store missed
		// it (a crash or a store failure): give it to the store.
		l.cpLine, l.cpSeq = t.headCp, t.head.seq
		if anchor != nil {
			l.storeSeq = anchor.Seq
		}
		if err := l.putCheckpoint(); err != nil {
			return fmt.Errorf("%w: writing the checkpoint store: %w", ErrUnavailable, err)
		}
		return nil
	default:
		// No checkpoint covers the head (a new chain, or records left by a
		// crash mid-write): sign one into the log and the store now.
		if err := l.commit(nil, true); err != nil {
			return err
		}
		if l.storeSeq != l.head.seq {
			return fmt.Errorf("%w: writing the checkpoint store", ErrUnavailable)
		}
		return nil
	}
}

// resync re-reads the tail after a sink failure: the failed group may have
// been stored in part (or, for Redis, in full with the reply lost). The
// chain continues after whatever the sink holds, provided it still holds
// everything acknowledged.
func (l *Log) resync(ctx context.Context) error {
	t, err := l.readTail(ctx, l.head.seq, l.head.hash, true)
	if err != nil {
		return err
	}
	if t.head.seq != l.head.seq {
		l.logger.Warn("audit: records of a failed group commit were stored; the chain continues after them",
			"node", l.node, "from_seq", l.head.seq+1, "to_seq", t.head.seq)
	}
	l.head = t.head
	l.mu.Lock()
	l.headSeq, l.headHash = t.head.seq, t.head.hash
	l.mu.Unlock()
	l.needResync = false
	return nil
}

type tail struct {
	head    chainHead
	headCp  []byte // the log's checkpoint line covering head, if it ends with one
	entries int    // entries read
}

// readTail reads the sink backwards from its last entry. Every record must
// carry its own hash and this node's name, and link to the next one; every
// checkpoint line must verify and match its record. With an anchor, the walk
// continues back to record anchorSeq (0: to the first record), which must
// have hash anchorHash; without, it stops at the last record.
func (l *Log) readTail(ctx context.Context, anchorSeq uint64, anchorHash string, anchored bool) (tail, error) {
	var (
		t        tail
		haveHead bool
		wantSeq  uint64
		wantHash string
		lastCp   []byte // the last checkpoint line of the log
		reached  = anchored && anchorSeq == 0
		cps      = map[uint64]string{}
		rh       = newRecordHasher()
	)
	tampered := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrTampered, fmt.Sprintf(format, args...))
	}
	err := l.sink.ScanBack(ctx, func(e []byte) error {
		t.entries++
		if isCheckpointEntry(e) {
			cp, err := parseCheckpoint(e, l.pub)
			if err != nil {
				return tampered("a checkpoint near the end of the log: %v", err)
			}
			if cp.Node != l.node {
				return tampered("a checkpoint of node %q in the log", cp.Node)
			}
			if haveHead && cp.Seq > t.head.seq {
				return tampered("a checkpoint for seq %d is before record %d", cp.Seq, t.head.seq)
			}
			if !haveHead && lastCp == nil {
				lastCp = bytes.Clone(e)
				if anchored && cp.Seq > anchorSeq {
					anchorSeq, anchorHash = cp.Seq, cp.Hash
				}
			}
			cps[cp.Seq] = cp.Hash
			return nil
		}
		r, sum, err := rh.decode(e)
		if err != nil {
			return tampered("record before seq %d: %v", wantSeq+1, err)
		}
		if r.Node != l.node {
			return tampered("record %d belongs to node %q", r.Seq, r.Node)
		}
		if hexHash(&sum) != r.Hash {
			return tampered("record %d does not match its hash", r.Seq)
		}
		if !haveHead {
			haveHead = true
			t.head = chainHead{r.Seq, r.Hash}
			if lastCp != nil {
				if h, ok := cps[r.Seq]; ok && h == r.Hash {
					t.headCp = lastCp
				}
			}
			for s := range cps {
				if s > r.Seq {
					return tampered("the log ends at seq %d, before its checkpoint for seq %d", r.Seq, s)
				}
			}
			if anchored && r.Seq < anchorSeq {
				return tampered("the log ends at seq %d, before checkpoint seq %d (truncated)", r.Seq, anchorSeq)
			}
		} else if r.Seq != wantSeq || r.Hash != wantHash {
			return tampered("record %d does not chain to record %d", wantSeq, wantSeq+1)
		}
		if h, ok := cps[r.Seq]; ok {
			if h != r.Hash {
				return tampered("record %d differs from its checkpoint", r.Seq)
			}
			if anchored && r.Seq >= anchorSeq {
				// A signed checkpoint at or after the anchor commits, through
				// the prev hashes, to every record before it.
				reached = true
				return errStop
			}
		}
		if r.Seq == 1 && r.PrevHash != "" {
			return tampered("record 1 has a previous hash")
		}
		wantSeq, wantHash = r.Seq-1, r.PrevHash
		if !anchored {
			return errStop
		}
		if r.Seq == anchorSeq {
			if r.Hash != anchorHash {
				return tampered("record %d differs from the checkpoint", r.Seq)
			}
			reached = true
			return errStop
		}
		if r.Seq == 1 {
			reached = anchorSeq == 0
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		if errors.Is(err, ErrTampered) {
			return tail{}, err
		}
		return tail{}, fmt.Errorf("%w: reading the log tail: %w", ErrUnavailable, err)
	}
	if anchored && !haveHead && anchorSeq > 0 {
		return tail{}, tampered("the log holds no record but a checkpoint for seq %d (truncated)", anchorSeq)
	}
	if anchored && !reached {
		return tail{}, tampered("the log does not reach back to checkpoint seq %d", anchorSeq)
	}
	return t, nil
}
