package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"sync"
	"time"
)

// sealedFormat is the first byte of every sealed value.
const sealedFormat = 0x01

// ErrDecrypt is the single opaque error for every failure to open a sealed
// value: malformed, tampered, wrong token/category/subject, or a key that is
// gone. Callers learn nothing about which.
var ErrDecrypt = errors.New("keys: cannot decrypt value")

// DEKRef names one subject data key.
type DEKRef struct {
	Subject  string
	Category uint16
	Version  uint32
}

// DEK is one unwrapped subject data key. It seals and opens values of its
// subject and category. Safe for concurrent use.
type DEK struct {
	ref     DEKRef
	aead    cipher.AEAD
	expires time.Time
}

// Ref returns the key's name.
func (d *DEK) Ref() DEKRef { return d.ref }

// String never prints key material.
func (d *DEK) String() string { return "keys.DEK(REDACTED)" }

func newDEK(ref DEKRef, key []byte, expires time.Time) (*DEK, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, errors.New("keys: bad data key length")
	}
	a, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, errors.New("keys: cannot build AES-GCM")
	}
	return &DEK{ref: ref, aead: a, expires: expires}, nil
}

// appendAAD builds the associated data that binds a sealed value to its
// token, category and subject.
func appendAAD(dst []byte, token string, category uint16, subject string) []byte {
	dst = append(dst, "fv1\x00"...)
	dst = binary.AppendUvarint(dst, uint64(len(token)))
	dst = append(dst, token...)
	dst = binary.BigEndian.AppendUint16(dst, category)
	dst = append(dst, subject...)
	return dst
}

// Seal encrypts plaintext for one token and appends the sealed value to dst.
// The sealed value is: format byte, key version (uvarint), nonce, ciphertext,
// tag. The header is authenticated too.
func (d *DEK) Seal(dst []byte, token string, plaintext []byte) []byte {
	var aadBuf [192]byte
	start := len(dst)
	dst = append(dst, sealedFormat)
	dst = binary.AppendUvarint(dst, uint64(d.ref.Version))
	header := dst[start:]
	aad := appendAAD(aadBuf[:0], token, d.ref.Category, d.ref.Subject)
	aad = append(aad, header...)
	return d.aead.Seal(dst, nil, plaintext, aad)
}

// SealedVersion returns the key version a sealed value names.
func SealedVersion(sealed []byte) (uint32, error) {
	v, _, err := parseSealed(sealed)
	return v, err
}

func parseSealed(sealed []byte) (version uint32, headerLen int, err error) {
	if len(sealed) < 2 || sealed[0] != sealedFormat {
		return 0, 0, ErrDecrypt
	}
	v, n := binary.Uvarint(sealed[1:])
	if n <= 0 || v == 0 || v > 1<<31 {
		return 0, 0, ErrDecrypt
	}
	return uint32(v), 1 + n, nil
}

// Open decrypts a sealed value of token and appends the plaintext to dst.
// Any failure is ErrDecrypt.
func (d *DEK) Open(dst []byte, token string, sealed []byte) ([]byte, error) {
	v, hl, err := parseSealed(sealed)
	if err != nil || v != d.ref.Version {
		return nil, ErrDecrypt
	}
	var aadBuf [192]byte
	aad := appendAAD(aadBuf[:0], token, d.ref.Category, d.ref.Subject)
	aad = append(aad, sealed[:hl]...)
	out, err := d.aead.Open(dst, nil, sealed[hl:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

// dekCache is a bounded, sharded cache of unwrapped DEKs with a time limit.
type dekCache struct {
	seed   maphash.Seed
	shards [32]dekShard
	max    int // per shard
	ttl    time.Duration
}

type dekShard struct {
	mu sync.RWMutex
	m  map[DEKRef]*DEK
}

func newDEKCache(size int, ttl time.Duration) *dekCache {
	c := &dekCache{seed: maphash.MakeSeed(), ttl: ttl}
	c.max = max(size/len(c.shards), 16)
	for i := range c.shards {
		c.shards[i].m = make(map[DEKRef]*DEK)
	}
	return c
}

func (c *dekCache) shard(subject string) *dekShard {
	return &c.shards[maphash.String(c.seed, subject)%uint64(len(c.shards))]
}

func (c *dekCache) get(ref DEKRef, now time.Time) *DEK {
	s := c.shard(ref.Subject)
	s.mu.RLock()
	d := s.m[ref]
	s.mu.RUnlock()
	if d == nil || now.After(d.expires) {
		return nil
	}
	return d
}

func (c *dekCache) put(d *DEK) {
	s := c.shard(d.ref.Subject)
	s.mu.Lock()
	if len(s.m) >= c.max {
		// Evict an arbitrary eighth: map iteration order is random, which
		// is good enough for a cache whose misses cost one store read.
		n := c.max / 8
		for k := range s.m {
			delete(s.m, k)
			n--
			if n <= 0 {
				break
			}
		}
	}
	s.m[d.ref] = d
	s.mu.Unlock()
}

// forget drops every cached DEK of subject (all categories when cats is nil).
func (c *dekCache) forget(subject string, cats []uint16) {
	s := c.shard(subject)
	s.mu.Lock()
	for k := range s.m {
		if k.Subject != subject {
			continue
		}
		if cats == nil {
			delete(s.m, k)
			continue
		}
		for _, cat := range cats {
			if k.Category == cat {
				delete(s.m, k)
			}
		}
	}
	s.mu.Unlock()
}

// forgetVersion drops every cached DEK of one category version.
func (c *dekCache) forgetVersion(cat uint16, version uint32) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k := range s.m {
			if k.Category == cat && k.Version == version {
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
	}
}
