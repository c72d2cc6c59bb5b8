package pebble

import (
	"hash/maphash"
	"math/bits"
	"sync"
)

// numStripes is the number of key-lock stripes per instance. Two calls
// contend only when they touch keys hashing to a common stripe.
const numStripes = 4096

// stripes guards read-then-write sequences (insert-if-absent,
// compare-and-set) over individual keys.
type stripes struct {
	seed maphash.Seed
	mu   [numStripes]sync.Mutex
}

// lockSet is the set of stripes one call needs. It is locked in ascending
// stripe order, which rules out deadlock between calls, and costs one bit
// per stripe instead of a sort.
type lockSet struct {
	bits [numStripes / 64]uint64
}

// add adds the stripe of key.
func (l *lockSet) add(s *stripes, key []byte) {
	i := maphash.Bytes(s.seed, key) % numStripes
	l.bits[i/64] |= 1 << (i % 64)
}

func (s *stripes) lock(l *lockSet) {
	for w, word := range l.bits {
		for word != 0 {
			s.mu[w*64+bits.TrailingZeros64(word)].Lock()
			word &= word - 1
		}
	}
}

func (s *stripes) unlock(l *lockSet) {
	for w, word := range l.bits {
		for word != 0 {
			s.mu[w*64+bits.TrailingZeros64(word)].Unlock()
			word &= word - 1
		}
	}
}
