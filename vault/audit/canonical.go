package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"hash"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Canonical encoding. See the package documentation for the rules; this file
// is their only implementation, and canonical_test.go checks it against
// encoding/json field by field.

// maxEntry bounds one encoded entry. Append rejects larger records; readers
// cut longer lines, which then fail to decode. A decision record has one
// item per token, about 217 bytes each (measured: 4,340,988 bytes for a
// detokenise of 20,000 contact.email tokens), so this holds the decision of
// the largest detokenise the vault accepts with room to spare.
const maxEntry = 8 << 20

// MaxEntryBytes is the largest encoded record the Log accepts.
const MaxEntryBytes = maxEntry

var (
	errMalformed    = errors.New("audit: malformed entry")
	errNonCanonical = errors.New("audit: entry is not in canonical form")
)

const hexDigits = "0123456789abcdef"

// appendRecord appends the canonical encoding of r and returns the buffer
// and the bounds of the hash field's value (between its quotes).
func appendRecord(b []byte, r *Record) (out []byte, hashStart, hashEnd int) {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"node":`...)
	b = appendString(b, r.Node)
	b = append(b, `,"prev_hash":`...)
	b = appendString(b, r.PrevHash)
	b = append(b, `,"hash":`...)
	hashStart = len(b) + 1
	b = appendString(b, r.Hash)
	hashEnd = len(b) - 1
	b = append(b, `,"type":`...)
	b = appendString(b, r.Type)
	b = append(b, `,"ts_utc":`...)
	b = appendTime(b, r.Time)
	b = appendOptString(b, `,"ts_ict":`, r.TimeICT)
	b = appendOptString(b, `,"decision_id":`, r.DecisionID)
	b = appendOptString(b, `,"request_id":`, r.RequestID)
	b = appendOptString(b, `,"policy_version":`, r.PolicyVersion)
	b = appendOptString(b, `,"policy_sha256":`, r.PolicySHA256)
	b = appendOptString(b, `,"requester_principal":`, r.Principal)
	b = appendOptStrings(b, `,"requester_roles":`, r.Roles)
	b = appendOptString(b, `,"on_behalf_of":`, string(r.OnBehalfOf))
	b = appendOptString(b, `,"client":`, string(r.Client))
	b = appendOptString(b, `,"purpose_code":`, r.Purpose)
	if r.Ground != nil {
		b = append(b, `,"ground":`...)
		b = appendGround(b, r.Ground)
	}
	if r.Recipient != nil {
		b = append(b, `,"recipient":{"entity":`...)
		b = appendString(b, r.Recipient.ID)
		b = appendOptString(b, `,"country":`, r.Recipient.Country)
		b = append(b, '}')
	}
	if r.TransferBasis != nil {
		b = append(b, `,"transfer_basis":`...)
		b = appendGround(b, r.TransferBasis)
	}
	b = appendOptString(b, `,"reveal_level":`, r.Reveal)
	if s := r.Evidence; s != nil {
		b = append(b, `,"evidence":{"kind":`...)
		b = appendString(b, s.Kind)
		b = append(b, `,"ref":`...)
		b = appendString(b, string(s.Ref))
		b = appendOptString(b, `,"status":`, s.Status)
		b = appendOptString(b, `,"notice_version":`, s.NoticeVersion)
		b = appendOptString(b, `,"record_sha256":`, s.RecordSHA256)
		b = appendOptString(b, `,"authority":`, s.Authority)
		if !s.Expires.IsZero() {
			b = append(b, `,"expires":`...)
			b = appendTime(b, s.Expires)
		}
		b = appendOptStrings(b, `,"approvals":`, s.Approvals)
		b = append(b, '}')
	}
	b = appendOptString(b, `,"decision":`, r.Decision)
	b = appendOptStrings(b, `,"reason_codes":`, r.Reasons)
	b = append(b, `,"fields_released":`...)
	b = strconv.AppendInt(b, int64(r.Released), 10)
	if len(r.Items) > 0 {
		b = append(b, `,"items":[`...)
		for i := range r.Items {
			it := &r.Items[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"token_ref":`...)
			b = appendString(b, string(it.Token))
			b = appendOptString(b, `,"subject_ref":`, string(it.Subject))
			b = appendOptString(b, `,"subject_type":`, it.SubjectType)
			b = appendOptString(b, `,"subject_age_band":`, it.AgeBand)
			b = appendOptString(b, `,"category":`, it.Category)
			b = appendOptString(b, `,"tier":`, it.Tier)
			b = append(b, `,"decision":`...)
			b = appendString(b, it.Decision)
			b = appendOptString(b, `,"reason":`, it.Reason)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = appendOptStrings(b, `,"alerts":`, r.Alerts)
	b = appendOptString(b, `,"action":`, r.Action)
	b = appendOptString(b, `,"target":`, string(r.Target))
	b = appendOptString(b, `,"subject_ref":`, string(r.Subject))
	if len(r.Details) > 0 {
		b = append(b, `,"details":{`...)
		var small [8]string
		keys := small[:0]
		for k := range r.Details {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, r.Details[k])
		}
		b = append(b, '}')
	}
	return append(b, '}'), hashStart, hashEnd
}

func appendGround(b []byte, g *Ground) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, g.Type)
	b = appendOptString(b, `,"dpv_iri":`, g.IRI)
	b = appendOptString(b, `,"pdpa_section":`, g.Section)
	b = appendOptString(b, `,"ref":`, string(g.Ref))
	return append(b, '}')
}

func appendOptString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, key...)
	return appendString(b, s)
}

func appendOptStrings(b []byte, key string, ss []string) []byte {
	if len(ss) == 0 {
		return b
	}
	b = append(b, key...)
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendTime writes t in UTC as RFC 3339 with the fewest fractional digits
// that represent it exactly, as time.Time.MarshalJSON does for UTC times.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString writes s as a JSON string the way encoding/json does with
// HTML escaping on, except that an invalid UTF-8 byte becomes U+FFFD written
// as UTF-8 (encoding/json writes the escape \ufffd), so that decoding and
// re-encoding gives the same bytes.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// validTime reports whether t can be encoded: RFC 3339 has four-digit years.
func validTime(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 0 && y <= 9999
}

// isCheckpointEntry reports whether a stored entry is a checkpoint line
// rather than a record. Canonical records begin with {"seq":.
func isCheckpointEntry(e []byte) bool {
	return bytes.HasPrefix(e, []byte(`{"checkpoint":`))
}

// recordHasher computes record hashes while reading a chain.
type recordHasher struct {
	h   hash.Hash
	buf []byte
}

func newRecordHasher() *recordHasher { return &recordHasher{h: sha256.New()} }

// decode parses a record line strictly. It returns the record and the hash
// its content commits to (SHA-256 of the canonical encoding with the hash
// field empty). err is errMalformed if line does not decode to a Record and
// errNonCanonical if it decodes but is not the canonical encoding of what it
// decodes to; with errNonCanonical the record and hash are still returned.
func (rh *recordHasher) decode(line []byte) (*Record, [32]byte, error) {
	var sum [32]byte
	r := new(Record)
	if err := json.Unmarshal(line, r); err != nil || !validTime(r.Time) {
		return nil, sum, errMalformed
	}
	if r.Evidence != nil && !validTime(r.Evidence.Expires) {
		return nil, sum, errMalformed
	}
	var hs, he int
	rh.buf, hs, he = appendRecord(rh.buf[:0], r)
	rh.h.Reset()
	rh.h.Write(rh.buf[:hs])
	rh.h.Write(rh.buf[he:])
	rh.h.Sum(sum[:0])
	if !bytes.Equal(rh.buf, line) {
		return r, sum, errNonCanonical
	}
	return r, sum, nil
}

// hexHash is the lower-case hex form of a record hash.
func hexHash(sum *[32]byte) string {
	var h [64]byte
	for i, c := range sum {
		h[2*i] = hexDigits[c>>4]
		h[2*i+1] = hexDigits[c&0xF]
	}
	return string(h[:])
}
