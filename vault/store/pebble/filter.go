package pebble

import (
	"context"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"

	pebbledb "github.com/cockroachdb/pebble/v2"
)

// keyFilter is an in-memory Bloom filter over every token key and
// fingerprint key in the store. InsertTokens must check that a token is
// unused and a fingerprint unbound before writing; in an LSM that check is
// a random read per key (a memtable skiplist seek plus one probe per level),
// about as costly as the write itself. The filter answers "certainly absent"
// for ~99% of new keys, so only the rest are read from the store: every
// collision is still detected, and rows are never overwritten.
//
// Correctness rests on one invariant: once ready, every key present in the
// store is in the filter. Keys are added before their batch commits (under
// the insert locks), and at open a background scan adds the keys already
// stored; until the scan finishes the filter is not ready and every key is
// read from the store. Deletions do not remove keys (a Bloom filter cannot),
// which only costs false positives. The filter lives in memory only and is
// rebuilt at every open.
type keyFilter struct {
	seed  maphash.Seed
	ready atomic.Bool

	mu   sync.Mutex // guards growth
	sets atomic.Pointer[[]*bloomSet]
}

// bloomSet is one fixed-size Bloom filter with k = 7 probes and 10 bits per
// key at capacity (false positives ≈ 1%).
type bloomSet struct {
	words []atomic.Uint64
	mask  uint64 // number of bits - 1 (a power of two)
	cap   int64
	n     atomic.Int64
}

const (
	bloomBitsPerKey = 10
	bloomProbes     = 7
	minFilterKeys   = 1 << 20
)

func newBloom(capacity int64) *bloomSet {
	nbits := uint64(1) << bits.Len64(uint64(capacity*bloomBitsPerKey)-1)
	return &bloomSet{words: make([]atomic.Uint64, nbits/64), mask: nbits - 1, cap: capacity}
}

func (b *bloomSet) add(h uint64) {
	h1, h2 := h, h>>32|h<<32
	for i := uint64(0); i < bloomProbes; i++ {
		bit := (h1 + i*h2) & b.mask
		b.words[bit>>6].Or(1 << (bit & 63))
	}
	b.n.Add(1)
}

func (b *bloomSet) mayContain(h uint64) bool {
	h1, h2 := h, h>>32|h<<32
	for i := uint64(0); i < bloomProbes; i++ {
		bit := (h1 + i*h2) & b.mask
		if b.words[bit>>6].Load()&(1<<(bit&63)) == 0 {
			return false
		}
	}
	return true
}

func newKeyFilter(expected int64) *keyFilter {
	f := &keyFilter{seed: maphash.MakeSeed()}
	sets := []*bloomSet{newBloom(max(2*expected, minFilterKeys))}
	f.sets.Store(&sets)
	return f
}

// add records key. When the newest filter is full, a new one twice its
// size is started; lookups consult every filter.
func (f *keyFilter) add(key []byte) {
	h := maphash.Bytes(f.seed, key)
	sets := *f.sets.Load()
	last := sets[len(sets)-1]
	last.add(h)
	if last.n.Load() > last.cap {
		f.mu.Lock()
		if cur := *f.sets.Load(); cur[len(cur)-1] == last {
			next := append(append([]*bloomSet(nil), cur...), newBloom(2*last.cap))
			f.sets.Store(&next)
		}
		f.mu.Unlock()
	}
}

// mayContain reports whether key may be in the store. While the filter is
// not ready it answers true for every key.
func (f *keyFilter) mayContain(key []byte) bool {
	if !f.ready.Load() {
		return true
	}
	h := maphash.Bytes(f.seed, key)
	for _, b := range *f.sets.Load() {
		if b.mayContain(h) {
			return true
		}
	}
	return false
}

// build adds every token and fingerprint key already stored and then marks
// the filter ready. It runs in the background from open; an error (or a
// close) leaves the filter not ready, which is safe.
func (f *keyFilter) build(ctx context.Context, db *pebbledb.DB) error {
	for _, p := range []byte{prefixToken, prefixFingerprint} {
		it, err := db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: []byte{p}, UpperBound: []byte{p + 1}})
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			f.add(it.Key())
			if ctx.Err() != nil {
				break
			}
		}
		if err := it.Close(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	f.ready.Store(true)
	return nil
}
