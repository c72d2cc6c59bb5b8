package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrCorrupt reports stored bytes that do not decode: a damaged row, or one
// written by a newer format version. Backends return it wrapped, so callers
// see both ErrCorrupt and the backend's context.
var ErrCorrupt = errors.New("store: corrupt encoding")

// TokenFormatVersion is the first byte of every encoded token row. A decoder
// rejects versions it does not know; a new layout gets a new version and
// decoders keep reading the old ones.
const TokenFormatVersion = 1

// Flag bits of an encoded token row.
const (
	flagExpires     = 1 << 0
	flagFingerprint = 1 << 1
	flagsKnown      = flagExpires | flagFingerprint
)

// AppendToken appends the binary encoding of t (every field except
// t.Token, which backends use as the key) to dst and returns the result.
//
// The format, version 1, is:
//
//	version     byte, TokenFormatVersion
//	flags       byte: bit 0 expiry present, bit 1 fingerprint present
//	subject     uvarint length, bytes
//	category    uvarint
//	key version uvarint
//	created     zigzag varint, Unix seconds
//	expiry      zigzag varint of ExpiresAt-CreatedAt, if bit 0
//	fingerprint uvarint length (at least 1), bytes, if bit 1
//	ciphertext  uvarint length, bytes
//
// A typical random token (36-byte subject, 60-byte ciphertext, expiry set)
// encodes in about 110 bytes. Every value has exactly one encoding, so
// DecodeToken followed by AppendToken gives back the input bytes. A
// zero-length Fingerprint is encoded as none, like nil.
func AppendToken(dst []byte, t *Token) []byte {
	var flags byte
	if t.ExpiresAt != 0 {
		flags |= flagExpires
	}
	if len(t.Fingerprint) > 0 {
		flags |= flagFingerprint
	}
	dst = append(dst, TokenFormatVersion, flags)
	dst = binary.AppendUvarint(dst, uint64(len(t.Subject)))
	dst = append(dst, t.Subject...)
	dst = binary.AppendUvarint(dst, uint64(t.Category))
	dst = binary.AppendUvarint(dst, uint64(t.KeyVersion))
	dst = binary.AppendVarint(dst, t.CreatedAt)
	if flags&flagExpires != 0 {
		// Wrapping subtraction: the decoder's wrapping addition undoes it
		// for every pair of int64 values.
		dst = binary.AppendVarint(dst, t.ExpiresAt-t.CreatedAt)
	}
	if flags&flagFingerprint != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(t.Fingerprint)))
		dst = append(dst, t.Fingerprint...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(t.Ciphertext)))
	return append(dst, t.Ciphertext...)
}

// EncodedTokenSize returns len(AppendToken(nil, t)) without encoding.
func EncodedTokenSize(t *Token) int {
	n := 2 + uvarintLen(uint64(len(t.Subject))) + len(t.Subject) +
		uvarintLen(uint64(t.Category)) + uvarintLen(uint64(t.KeyVersion)) +
		varintLen(t.CreatedAt) +
		uvarintLen(uint64(len(t.Ciphertext))) + len(t.Ciphertext)
	if t.ExpiresAt != 0 {
		n += varintLen(t.ExpiresAt - t.CreatedAt)
	}
	if len(t.Fingerprint) > 0 {
		n += uvarintLen(uint64(len(t.Fingerprint))) + len(t.Fingerprint)
	}
	return n
}

// DecodeToken decodes a row written by AppendToken into t, leaving t.Token
// alone. It rejects, with ErrCorrupt, an unknown version or flag, a length
// running past the end, a value out of its field's range, a non-minimal
// varint and trailing bytes. Fingerprint and Ciphertext are copied (into
// one allocation), so data may be reused afterwards; both are nil when
// empty.
func DecodeToken(data []byte, t *Token) error {
	d := decoder{b: data}
	if v := d.readByte(); v != TokenFormatVersion {
		if d.err == nil {
			return fmt.Errorf("%w: unknown token format version", ErrCorrupt)
		}
		return d.err
	}
	flags := d.readByte()
	if flags&^flagsKnown != 0 {
		return fmt.Errorf("%w: unknown token flags", ErrCorrupt)
	}
	subject := d.bytes()
	category := d.uvarint(math.MaxUint16)
	keyVersion := d.uvarint(math.MaxUint32)
	created := d.varint()
	var expires int64
	if flags&flagExpires != 0 {
		expires = created + d.varint()
		if expires == 0 && d.err == nil {
			d.err = fmt.Errorf("%w: expiry flag with zero expiry", ErrCorrupt)
		}
	}
	var fp []byte
	if flags&flagFingerprint != 0 {
		fp = d.bytes()
		if len(fp) == 0 && d.err == nil {
			d.err = fmt.Errorf("%w: fingerprint flag with empty fingerprint", ErrCorrupt)
		}
	}
	ct := d.bytes()
	if err := d.finish(); err != nil {
		return err
	}
	t.Subject = string(subject)
	t.Category = uint16(category)
	t.KeyVersion = uint32(keyVersion)
	t.CreatedAt = created
	t.ExpiresAt = expires
	t.Fingerprint, t.Ciphertext = nil, nil
	if n := len(fp) + len(ct); n > 0 {
		buf := make([]byte, n)
		copy(buf, fp)
		copy(buf[len(fp):], ct)
		if len(fp) > 0 {
			t.Fingerprint = buf[:len(fp):len(fp)]
		}
		if len(ct) > 0 {
			t.Ciphertext = buf[len(fp):]
		}
	}
	return nil
}

// AppendSubjectKeyRef appends the key encoding of ref to dst:
//
//	subject  uvarint length, bytes
//	category 2 bytes, big endian
//	version  4 bytes, big endian
//
// The length prefix keeps one subject's keys apart from another's even
// when a subject contains any byte, and the encodings of one subject (and
// of one subject and category) share a prefix, given by
// AppendSubjectKeyPrefix, so backends find them with one prefix scan. Keys
// carry no version byte: a layout change is a new keyspace.
func AppendSubjectKeyRef(dst []byte, ref SubjectKeyRef) []byte {
	dst = AppendSubjectKeyPrefix(dst, ref.Subject)
	dst = binary.BigEndian.AppendUint16(dst, ref.Category)
	return binary.BigEndian.AppendUint32(dst, ref.Version)
}

// AppendSubjectKeyPrefix appends the prefix shared by the encodings of
// every SubjectKeyRef of subject.
func AppendSubjectKeyPrefix(dst []byte, subject string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(subject)))
	return append(dst, subject...)
}

// DecodeSubjectKeyRef decodes a key written by AppendSubjectKeyRef,
// rejecting anything else with ErrCorrupt.
func DecodeSubjectKeyRef(data []byte) (SubjectKeyRef, error) {
	d := decoder{b: data}
	subject := d.bytes()
	fixed := d.take(6)
	if err := d.finish(); err != nil {
		return SubjectKeyRef{}, err
	}
	return SubjectKeyRef{
		Subject:  string(subject),
		Category: binary.BigEndian.Uint16(fixed),
		Version:  binary.BigEndian.Uint32(fixed[2:]),
	}, nil
}

// decoder reads a strict encoding; the first error sticks and later reads
// return zero values.
type decoder struct {
	b   []byte
	err error
}

var (
	errTruncated  = fmt.Errorf("%w: truncated encoding", ErrCorrupt)
	errVarint     = fmt.Errorf("%w: malformed varint", ErrCorrupt)
	errOutOfRange = fmt.Errorf("%w: value out of range", ErrCorrupt)
	errTrailing   = fmt.Errorf("%w: trailing bytes", ErrCorrupt)
	errNonMinimal = fmt.Errorf("%w: non-minimal varint", ErrCorrupt)
)

func (d *decoder) readByte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errTruncated
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) rawUvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	switch {
	case n == 0:
		d.err = errTruncated
		return 0
	case n < 0:
		d.err = errVarint
		return 0
	case n > 1 && d.b[n-1] == 0:
		// A last byte of zero adds nothing: the same value has a shorter
		// encoding.
		d.err = errNonMinimal
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint(max uint64) uint64 {
	v := d.rawUvarint()
	if v > max && d.err == nil {
		d.err = errOutOfRange
		return 0
	}
	return v
}

func (d *decoder) varint() int64 {
	u := d.rawUvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.err = errTruncated
		return nil
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) bytes() []byte {
	n := d.rawUvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = errTruncated
		return nil
	}
	return d.take(int(n))
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) > 0 {
		d.err = errTrailing
	}
	return d.err
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func varintLen(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return uvarintLen(u)
}
