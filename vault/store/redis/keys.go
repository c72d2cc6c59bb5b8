package redis

import (
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
	"unsafe"
)

// Key layout. P is Options.Prefix (default "fv:"); B is a bucket number in
// fixed-width lower-case hex (4 digits for 16 bucket bits).
//
//	P meta                     hash   layout version, bucket bits (set once)
//	P t: B                     hash   token -> store.AppendToken row
//	P f: B                     hash   category (2, BE) + fingerprint -> token
//	P s: B                     hash   subject hash (1) + token -> ""
//	P c: N                     hash   category (2, BE) + version (4, BE) -> count; N in 0..f
//	P k: B                     hash   store.AppendSubjectKeyRef -> wrapped key (keys client)
//	P r: len(kind) kind id     hash   r: revision, i: index, v: value
//	P rk: kind                 zset   ids of a kind (score 0, ordered by id)
//	P ri: len(kind) kind index zset   ids of a kind with that index
//	P ping                     string written by Ping
//
// Bucket numbers are the top bits of a 64-bit hash (hash64 below) of the
// token, of category+fingerprint and of the subject, each with its own
// domain byte. A bucket key carries no hash tag, so buckets spread over every
// Cluster slot, and every command touches one key. Many rows share one small
// hash, which Redis stores as a listpack, so the per-key overhead (about 90
// bytes) is shared by every row of the bucket; see the package
// documentation for the settings this needs.
//
// Lengths are uvarints, as in package store, so that a kind that is a prefix
// of another ("k" and "k\x00") never shares a key.
const (
	layoutVersion = "1"

	domainToken       = 't'
	domainFingerprint = 'f'
	domainSubject     = 's'
	domainSubjectKey  = 'k'

	// counterShards spreads the counter hash over this many keys (and so
	// slots), so that counting is not one hot key.
	counterShards = 16
)

// hash64 is FNV-1a over domain and s, finished with the MurmurHash3 fmix64
// avalanche so that the top bits are well mixed. It is part of the on-disk
// layout: changing it moves every row to another bucket.
func hash64(domain byte, s string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	h ^= uint64(domain)
	h *= prime
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// keyspace builds key names for one store.
type keyspace struct {
	prefix string
	bits   uint // bucket bits, 1..24
	digits int  // hex digits of a bucket number
}

func newKeyspace(prefix string, bits uint) keyspace {
	return keyspace{prefix: prefix, bits: bits, digits: int(bits+3) / 4}
}

func (k keyspace) buckets() uint32 { return 1 << k.bits }

func (k keyspace) bucket(domain byte, s string) uint32 {
	return uint32(hash64(domain, s) >> (64 - k.bits))
}

// appendBucketKey appends P + tag + ":" + hex(bucket).
func (k keyspace) appendBucketKey(dst []byte, tag byte, b uint32) []byte {
	dst = append(dst, k.prefix...)
	dst = append(dst, tag, ':')
	for i := k.digits - 1; i >= 0; i-- {
		dst = append(dst, "0123456789abcdef"[(b>>(4*uint(i)))&0xf])
	}
	return dst
}

func (k keyspace) bucketKey(tag byte, b uint32) string {
	return string(k.appendBucketKey(nil, tag, b))
}

// bucketKeyLen is len(appendBucketKey(nil, ...)).
func (k keyspace) bucketKeyLen() int { return len(k.prefix) + 2 + k.digits }

func (k keyspace) metaKey() string { return k.prefix + "meta" }
func (k keyspace) pingKey() string { return k.prefix + "ping" }

func (k keyspace) counterKey(shard int) string {
	return k.prefix + "c:" + strconv.FormatInt(int64(shard), 16)
}

func appendLenString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

func (k keyspace) recordKey(kind, id string) string {
	b := make([]byte, 0, len(k.prefix)+2+binary.MaxVarintLen64+len(kind)+len(id))
	b = append(b, k.prefix...)
	b = append(b, "r:"...)
	b = appendLenString(b, kind)
	return string(append(b, id...))
}

func (k keyspace) kindSetKey(kind string) string { return k.prefix + "rk:" + kind }

func (k keyspace) indexSetKey(kind, index string) string {
	b := make([]byte, 0, len(k.prefix)+3+binary.MaxVarintLen64+len(kind)+len(index))
	b = append(b, k.prefix...)
	b = append(b, "ri:"...)
	b = appendLenString(b, kind)
	return string(append(b, index...))
}

// Fields.

// appendFingerprintField appends category (2, BE) + fp.
func appendFingerprintField(dst []byte, cat uint16, fp []byte) []byte {
	return append(binary.BigEndian.AppendUint16(dst, cat), fp...)
}

// subjectHash is the byte of a subject-index field that names the
// subject: the low byte of the hash whose top bits choose the bucket. It
// only narrows SubjectTokens' candidates (to about 1 in 256 of the other
// entries of the bucket); candidates are verified against the token rows,
// so a collision costs a row read, never a wrong answer.
func subjectHash(subject string) byte {
	return byte(hash64(domainSubject, subject))
}

func appendSubjectField(dst []byte, subject, token string) []byte {
	return append(append(dst, subjectHash(subject)), token...)
}

func appendCounterField(dst []byte, cat uint16, ver uint32) []byte {
	dst = binary.BigEndian.AppendUint16(dst, cat)
	return binary.BigEndian.AppendUint32(dst, ver)
}

// unsafeString returns b's bytes as a string without copying. b must not
// change while the string is in use.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// unsafeSlice returns s's bytes without copying; they must not be
// modified.
func unsafeSlice(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// Scan cursors are "<tag>1.<bucket hex>.<hex of the last field returned in
// that bucket>", or "<tag>1.<bucket hex>." to start at a bucket. They depend
// only on the key layout, not on Redis's own SCAN cursors, so they stay valid
// across fieldvault restarts, Redis restarts, failovers and Cluster
// resharding. Walks go bucket by bucket, and within a bucket in field byte
// order.
const (
	tokenCursorTag = "t1."
	keysCursorTag  = "k1."
)

func encodeCursor(tag string, bucket uint32, last string) string {
	var b strings.Builder
	b.WriteString(tag)
	b.WriteString(strconv.FormatUint(uint64(bucket), 16))
	b.WriteByte('.')
	b.WriteString(hex.EncodeToString([]byte(last)))
	return b.String()
}

// decodeCursor parses a cursor of this keyspace. "" starts at bucket 0.
func (k keyspace) decodeCursor(tag, cursor string) (bucket uint32, last string, ok bool) {
	if cursor == "" {
		return 0, "", true
	}
	rest, ok := strings.CutPrefix(cursor, tag)
	if !ok {
		return 0, "", false
	}
	bs, ls, ok := strings.Cut(rest, ".")
	if !ok || bs == "" || len(bs) > 8 {
		return 0, "", false
	}
	b, err := strconv.ParseUint(bs, 16, 32)
	if err != nil || b >= uint64(k.buckets()) {
		return 0, "", false
	}
	l, err := hex.DecodeString(ls)
	if err != nil {
		return 0, "", false
	}
	return uint32(b), string(l), true
}
