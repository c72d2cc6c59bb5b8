package audit

import (
	"context"
	"errors"
)

// Source is a chain as stored: what [Verify], [ForSubject] and [Records]
// read. [FileSink] and [RedisStreamSink] implement it.
type Source interface {
	// Scan calls fn for every entry (record or checkpoint line, without the
	// trailing newline) in log order, from the first. The slice is valid only
	// during the call. Scan stops at the first error from fn and returns it.
	Scan(ctx context.Context, fn func(entry []byte) error) error
	// Checkpoint returns the latest signed checkpoint from the checkpoint
	// store kept apart from the log, or nil if there is none.
	Checkpoint(ctx context.Context) ([]byte, error)
}

// Sink is where a [Log] writes. A Sink has one writer: one Log, one node.
type Sink interface {
	Source
	// Append makes every entry of b durable, in order, or returns an error.
	// After an error any prefix of b may have been stored; the Log re-reads
	// the tail before its next write.
	Append(ctx context.Context, b *Batch) error
	// ScanBack is Scan from the last entry towards the first. The Log uses it
	// to resume the chain and to verify the tail.
	ScanBack(ctx context.Context, fn func(entry []byte) error) error
	// PutCheckpoint replaces the latest checkpoint in the checkpoint store,
	// durably.
	PutCheckpoint(ctx context.Context, cp []byte) error
}

// ErrUnavailable wraps sink failures: the record was not committed. The vault
// denies with AUDIT_UNAVAILABLE.
var ErrUnavailable = errors.New("audit: sink unavailable")

// errStop ends a Scan early without error.
var errStop = errors.New("audit: stop scan")

// Batch is one group commit: encoded entries stored back to back, each
// followed by '\n'. Each entry has a position: the sequence number of the
// record it is or, for a checkpoint, of the record it covers.
type Batch struct {
	buf  []byte
	ends []int // end of entry i in buf, '\n' excluded
	seqs []uint64
	cps  []bool
}

// Len returns the number of entries.
func (b *Batch) Len() int { return len(b.ends) }

// Bytes returns every entry, each followed by '\n'.
func (b *Batch) Bytes() []byte { return b.buf }

// Entry returns entry i without its newline, its sequence number, and whether
// it is a checkpoint (which then covers record seq).
func (b *Batch) Entry(i int) (entry []byte, seq uint64, checkpoint bool) {
	start := 0
	if i > 0 {
		start = b.ends[i-1] + 1
	}
	return b.buf[start:b.ends[i]], b.seqs[i], b.cps[i]
}

func (b *Batch) reset() {
	b.buf = b.buf[:0]
	b.ends = b.ends[:0]
	b.seqs = b.seqs[:0]
	b.cps = b.cps[:0]
}

// add records that buf now ends with an entry (without its newline) and
// appends the newline.
func (b *Batch) add(seq uint64, checkpoint bool) {
	b.ends = append(b.ends, len(b.buf))
	b.seqs = append(b.seqs, seq)
	b.cps = append(b.cps, checkpoint)
	b.buf = append(b.buf, '\n')
}

// truncate drops everything after the first n bytes, which must be an entry
// boundary.
func (b *Batch) truncate(n int) { b.buf = b.buf[:n] }
