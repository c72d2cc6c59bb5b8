package pebble

import (
	"encoding/binary"
	"fmt"
	"io"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/fieldvault/fieldvault/vault/store"
)

// Counters are 8-byte little-endian int64 deltas merged by addition. Each
// write batch carries the deltas for the rows it adds, removes or moves, so
// counts change atomically with the rows. A sum of zero is dropped during
// compaction.
//
// The merger's name is stored in the database's OPTIONS file; Pebble
// refuses to open the database with a merger of another name.
var counterMerger = &pebbledb.Merger{
	Name: "fieldvault.counter.v1",
	Merge: func(_, value []byte) (pebbledb.ValueMerger, error) {
		m := &counterSum{}
		if err := m.MergeNewer(value); err != nil {
			return nil, err
		}
		return m, nil
	},
}

type counterSum struct{ n int64 }

var _ pebbledb.DeletableValueMerger = (*counterSum)(nil)

func decodeCounter(v []byte) (int64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("counter of %d bytes: %w", len(v), store.ErrCorrupt)
	}
	return int64(binary.LittleEndian.Uint64(v)), nil
}

func (m *counterSum) MergeNewer(v []byte) error {
	d, err := decodeCounter(v)
	m.n += d
	return err
}

func (m *counterSum) MergeOlder(v []byte) error { return m.MergeNewer(v) }

func (m *counterSum) Finish(bool) ([]byte, io.Closer, error) {
	return binary.LittleEndian.AppendUint64(nil, uint64(m.n)), nil, nil
}

func (m *counterSum) DeletableFinish(includesBase bool) ([]byte, bool, io.Closer, error) {
	v, c, err := m.Finish(includesBase)
	// Only a sum that includes the oldest operand is the whole count.
	return v, includesBase && m.n == 0, c, err
}

// counterDeltas accumulates one batch's counter changes. A batch touches
// few (category, version) pairs, so a slice beats a map.
type counterDeltas []counterDelta

type counterDelta struct {
	cat uint16
	ver uint32
	n   int64
}

func (d *counterDeltas) add(cat uint16, ver uint32, n int64) {
	for i := range *d {
		if c := &(*d)[i]; c.cat == cat && c.ver == ver {
			c.n += n
			return
		}
	}
	*d = append(*d, counterDelta{cat, ver, n})
}

// write adds the non-zero deltas to b as merge operands.
func (d counterDeltas) write(b *pebbledb.Batch, key []byte) []byte {
	for _, c := range d {
		if c.n == 0 {
			continue
		}
		key = appendCounterKey(key[:0], c.cat, c.ver)
		var v [8]byte
		binary.LittleEndian.PutUint64(v[:], uint64(c.n))
		_ = b.Merge(key, v[:], nil)
	}
	return key
}
