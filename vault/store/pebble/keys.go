package pebble

import (
	"encoding/base64"
	"encoding/binary"
	"strings"

	"github.com/fieldvault/fieldvault/vault/store"
)

// Key layout. Every key starts with a one-byte keyspace prefix. Variable
// fields that are followed by another field carry a uvarint length prefix
// rather than a separator, because the contract allows any byte in
// subjects, kinds and indexes: with a NUL separator, the prefix of subject
// "a" would also match the keys of subject "a\x00b".
//
// Main instance:
//
//	't' token                                  -> store.AppendToken row
//	'f' category(2, BE) fingerprint            -> token
//	's' len(subject) subject token             -> empty
//	'c' category(2, BE) version(4, BE)         -> counter merge operand
//	'r' len(kind) kind id                      -> record (see records.go)
//	'i' len(kind) kind len(index) index id     -> empty
//	'm' "layout"                               -> layoutVersion
//
// Subject-keys instance:
//
//	'k' store.AppendSubjectKeyRef(ref)         -> wrapped key
//	'm' "layout"                               -> layoutVersion
//
// Token rows, subject keys and records sort by token, (subject, category,
// version) and (kind, id), so scans and ListRecords walk them in order.
const (
	prefixToken       = 't'
	prefixFingerprint = 'f'
	prefixSubject     = 's'
	prefixCounter     = 'c'
	prefixRecord      = 'r'
	prefixIndex       = 'i'
	prefixSubjectKey  = 'k'

	layoutVersion = 1
)

var formatKey = []byte("mlayout")

func appendTokenKey(dst []byte, token string) []byte {
	return append(append(dst, prefixToken), token...)
}

func appendFingerprintKey(dst []byte, cat uint16, fp []byte) []byte {
	dst = append(dst, prefixFingerprint)
	dst = binary.BigEndian.AppendUint16(dst, cat)
	return append(dst, fp...)
}

func appendSubjectPrefix(dst []byte, subject string) []byte {
	return store.AppendSubjectKeyPrefix(append(dst, prefixSubject), subject)
}

func appendSubjectIndexKey(dst []byte, subject, token string) []byte {
	return append(appendSubjectPrefix(dst, subject), token...)
}

func appendCounterKey(dst []byte, cat uint16, ver uint32) []byte {
	dst = append(dst, prefixCounter)
	dst = binary.BigEndian.AppendUint16(dst, cat)
	return binary.BigEndian.AppendUint32(dst, ver)
}

func appendLenString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

func appendRecordPrefix(dst []byte, kind string) []byte {
	return appendLenString(append(dst, prefixRecord), kind)
}

func appendRecordKey(dst []byte, kind, id string) []byte {
	return append(appendRecordPrefix(dst, kind), id...)
}

func appendIndexPrefix(dst []byte, kind, index string) []byte {
	return appendLenString(appendLenString(append(dst, prefixIndex), kind), index)
}

func appendIndexKey(dst []byte, kind, index, id string) []byte {
	return append(appendIndexPrefix(dst, kind, index), id...)
}

func appendSubjectKeyKey(dst []byte, ref store.SubjectKeyRef) []byte {
	return store.AppendSubjectKeyRef(append(dst, prefixSubjectKey), ref)
}

// prefixEnd returns the smallest key greater than every key starting with
// prefix, or nil if there is none.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// Scan cursors are the last key returned, without its keyspace prefix,
// base64url-encoded after a tag naming the keyspace and cursor version:
// printable ASCII, safe to persist anywhere (JSON included), valid across
// restarts. A walk resumes at the first key after it.
const (
	tokenCursorTag = "t1."
	keysCursorTag  = "k1."
)

func encodeCursor(tag string, lastKey []byte) string {
	return tag + base64.RawURLEncoding.EncodeToString(lastKey[1:])
}

// decodeCursor returns the key to resume from: the successor of the last
// key returned.
func decodeCursor(tag string, prefix byte, cursor string) ([]byte, bool) {
	rest, ok := strings.CutPrefix(cursor, tag)
	if !ok {
		return nil, false
	}
	last, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(last) == 0 {
		return nil, false
	}
	key := make([]byte, 0, len(last)+2)
	key = append(append(key, prefix), last...)
	return append(key, 0), true
}
