package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"hash"
	"sync"
)

// RefKeySize is the size of the HMAC key behind Refs.
const RefKeySize = 32

// RefLen is the length of a Ref: 32 hex characters, the first 128 bits of
// HMAC-SHA256. 128 bits keep accidental collisions negligible (about 2^64
// identifiers before one is likely) and cannot be inverted or brute-forced
// without the key; the key, not the length, is what protects low-entropy
// identifiers such as phone numbers. Half the full digest keeps every record
// and every index shorter.
const RefLen = 32

// refDomain separates Ref inputs from any other use of the key.
const refDomain = "fieldvault audit ref v1\x00"

// Refs computes Refs with one key. It is safe for concurrent use.
type Refs struct {
	pool sync.Pool // of *refState
}

type refState struct {
	mac hash.Hash
	buf []byte
	sum []byte
}

// NewRefs returns a Refs for key, which must be RefKeySize bytes. The key is
// copied. Keep it as secret as a data key and never rotate it casually: a new
// key gives every identifier a new Ref, so a data-subject access report no
// longer finds records written under the old one.
func NewRefs(key []byte) (*Refs, error) {
	if len(key) != RefKeySize {
		return nil, errors.New("audit: ref key must be 32 bytes")
	}
	k := append([]byte(nil), key...)
	r := &Refs{}
	r.pool.New = func() any {
		return &refState{mac: hmac.New(sha256.New, k), sum: make([]byte, 0, sha256.Size)}
	}
	return r, nil
}

// Ref returns the Ref of id: the first RefLen hex digits of
// HMAC-SHA256(key, "fieldvault audit ref v1" || 0x00 || id). The same key and
// id give the same Ref in every process and across restarts.
func (r *Refs) Ref(id string) Ref {
	s := r.pool.Get().(*refState)
	s.mac.Reset()
	s.buf = append(append(s.buf[:0], refDomain...), id...)
	s.mac.Write(s.buf)
	s.sum = s.mac.Sum(s.sum[:0])
	var out [RefLen]byte
	for i := range RefLen / 2 {
		out[2*i] = hexDigits[s.sum[i]>>4]
		out[2*i+1] = hexDigits[s.sum[i]&0xF]
	}
	clear(s.buf)
	r.pool.Put(s)
	return Ref(out[:])
}
