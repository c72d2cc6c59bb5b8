package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// fill sets every field of v, recursively, to a non-zero value, so that a
// field added to Record without a matching change to appendRecord shows up
// as a difference from encoding/json.
func fill(v reflect.Value, tag string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("v<&>\"\\\u2028\x01\té" + tag)
	case reflect.Uint64, reflect.Uint, reflect.Uint32:
		v.SetUint(18446744073709551615 >> (64 - v.Type().Bits()))
	case reflect.Int, reflect.Int64:
		v.SetInt(-42)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), tag)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), tag)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for _, k := range []string{"zeta", "alpha", "Mid", "<&>"} {
			val := reflect.New(v.Type().Elem()).Elem()
			fill(val, k)
			m.SetMapIndex(reflect.ValueOf(k), val)
		}
		v.Set(m)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2025, 2, 3, 4, 5, 6, 789000000, time.UTC)))
			return
		}
		for i := range v.NumField() {
			fill(v.Field(i), v.Type().Field(i).Name)
		}
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

func TestCanonicalMatchesEncodingJSON(t *testing.T) {
	var full Record
	fill(reflect.ValueOf(&full).Elem(), "")
	minimal := Record{Seq: 1, Node: "n", Type: TypeAdmin, Time: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		Ground: &Ground{}, Recipient: &Party{}, Evidence: &Snapshot{}, Items: []Item{{}}}
	for name, r := range map[string]*Record{"every field set": &full, "zero values": {}, "minimal objects": &minimal} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			got, hs, he := appendRecord(nil, r)
			if !bytes.Equal(got, want) {
				t.Fatalf("appendRecord =\n%s\nencoding/json =\n%s", got, want)
			}
			if string(got[hs:he]) != string(want[hs:he]) || !bytes.HasPrefix(got[hs-len(`"hash":"`):], []byte(`"hash":"`)) {
				t.Fatalf("hash bounds %d..%d do not delimit the hash value", hs, he)
			}
			back, _, err := newRecordHasher().decode(got)
			if err != nil {
				t.Fatalf("decode(appendRecord(r)): %v", err)
			}
			if again, _, _ := appendRecord(nil, back); !bytes.Equal(again, got) {
				t.Fatal("re-encoding the decoded record differs")
			}
		})
	}
}

func TestCanonicalTimesAreUTC(t *testing.T) {
	at := time.Date(2025, 6, 1, 14, 0, 0, 500, time.FixedZone("ICT", 7*3600))
	got, _, _ := appendRecord(nil, &Record{Time: at})
	if !bytes.Contains(got, []byte(`"ts_utc":"2025-06-01T07:00:00.0000005Z"`)) {
		t.Fatalf("time encoded as %s", got)
	}
}

func TestCanonicalInvalidUTF8(t *testing.T) {
	r := &Record{Seq: 1, Purpose: "a\xffb"}
	enc, _, _ := appendRecord(nil, r)
	if !bytes.Contains(enc, []byte("\"a\uFFFDb\"")) {
		t.Fatalf("invalid byte encoded as %s", enc)
	}
	if _, _, err := newRecordHasher().decode(enc); err != nil {
		t.Fatalf("the encoding of invalid UTF-8 does not decode canonically: %v", err)
	}
}

func TestDecodeRejectsNonCanonical(t *testing.T) {
	enc, _, _ := appendRecord(nil, &Record{Seq: 3, Node: "n", Type: TypeDecision, Purpose: "support"})
	for name, line := range map[string][]byte{
		"space":          bytes.Replace(enc, []byte(`,"node"`), []byte(`, "node"`), 1),
		"unknown field":  bytes.Replace(enc, []byte(`{"seq":3`), []byte(`{"seq":3,"x":1`), 1),
		"field order":    bytes.Replace(bytes.Replace(enc, []byte(`"seq":3,`), nil, 1), []byte(`"node":"n",`), []byte(`"node":"n","seq":3,`), 1),
		"escaped letter": bytes.Replace(enc, []byte(`"support"`), []byte(`"\u0073upport"`), 1),
		"upper-case key": bytes.Replace(enc, []byte(`"purpose_code"`), []byte(`"PURPOSE_CODE"`), 1),
		"empty roles":    bytes.Replace(enc, []byte(`,"purpose_code"`), []byte(`,"requester_roles":[],"purpose_code"`), 1),
		"time offset":    bytes.Replace(enc, []byte(`Z"`), []byte(`+00:00"`), 1),
	} {
		if _, _, err := newRecordHasher().decode(line); err != errNonCanonical {
			t.Errorf("%s: decode(%s) = %v, want errNonCanonical", name, line, err)
		}
	}
}

// FuzzCanonical checks the encoder against encoding/json on arbitrary
// strings and times, and that decoding and re-encoding is stable.
func FuzzCanonical(f *testing.F) {
	f.Add("support", "ALLOW", "k", "v", uint64(1), int64(0))
	f.Add("<script>&", "\u2028\u2029", "\x00\x1f", "é漢字", uint64(1<<63), int64(-1))
	f.Add("a\xffb", "\xed\xa0\x80", "\"\\", "\b\f\n\r\t", uint64(0), int64(253402300799999999))
	f.Fuzz(func(t *testing.T, s1, s2, k, v string, seq uint64, ns int64) {
		at := time.Unix(0, ns).UTC()
		// Append refuses Details keys that are not UTF-8.
		k1, k2 := strings.ToValidUTF8(k, "x"), strings.ToValidUTF8(s1, "y")
		r := &Record{
			Seq: seq, Node: s1, PrevHash: s2, Type: s1, Time: at, Purpose: s2,
			Roles:    []string{s1, s2},
			Ground:   &Ground{Type: s1, Ref: Ref(s2)},
			Evidence: &Snapshot{Kind: k, Ref: Ref(v), Expires: at},
			Items:    []Item{{Token: Ref(s1), Decision: s2}},
			Details:  map[string]string{k1: v, k2: s2},
		}
		got, _, _ := appendRecord(nil, r)
		if utf8.ValidString(s1) && utf8.ValidString(s2) && utf8.ValidString(k) && utf8.ValidString(v) {
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("appendRecord =\n%q\nencoding/json =\n%q", got, want)
			}
		}
		back, _, err := newRecordHasher().decode(got)
		if err != nil {
			t.Fatalf("decode(appendRecord(r)) = %v for %q", err, got)
		}
		if again, _, _ := appendRecord(nil, back); !bytes.Equal(again, got) {
			t.Fatalf("not stable:\n%q\n%q", got, again)
		}
	})
}

// seedLog builds a small valid log and returns its file and checkpoint
// store contents.
func seedLog(f *testing.F) (log, cp []byte) {
	dir := f.TempDir()
	sink, err := OpenFileSink(FileConfig{Dir: dir})
	if err != nil {
		f.Fatal(err)
	}
	defer sink.Close()
	l, err := New(testConfig("node-a", sink))
	if err != nil {
		f.Fatal(err)
	}
	// Six records in concurrent appends: fewer group commits, so fewer
	// checkpoint signatures to verify per fuzzing run.
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			if err := l.Append(context.Background(), sampleRecord(l.refs, i)); err != nil {
				f.Error(err)
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		f.Fatal(err)
	}
	log, err = os.ReadFile(filepath.Join(dir, LogFileName))
	if err != nil {
		f.Fatal(err)
	}
	cp, err = os.ReadFile(filepath.Join(dir, CheckpointFileName))
	if err != nil {
		f.Fatal(err)
	}
	return log, cp
}

// FuzzDecodeEntry: the line decoders never panic, and whatever decodes
// without error is exactly its own canonical encoding.
func FuzzDecodeEntry(f *testing.F) {
	log, cp := seedLog(f)
	for line := range bytes.SplitSeq(bytes.TrimSuffix(log, []byte("\n")), []byte("\n")) {
		f.Add(line)
	}
	f.Add(bytes.TrimSuffix(cp, []byte("\n")))
	f.Add([]byte(`{"seq":1}`))
	f.Add([]byte(`{"checkpoint":{"node":"n","seq":1,"hash":"","time":"2025-01-01T00:00:00Z"},"sig":""}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		rh := newRecordHasher()
		r, _, err := rh.decode(line)
		if err == nil {
			if enc, _, _ := appendRecord(nil, r); !bytes.Equal(enc, line) {
				t.Fatalf("decoded without error but is not canonical: %q", line)
			}
		}
		if (err == nil || err == errNonCanonical) && r == nil {
			t.Fatal("decode returned no record without errMalformed")
		}
		c, err := parseCheckpoint(line, testPub)
		if err == nil {
			if enc, _ := appendCheckpoint(nil, c, testSigningKey, nil); !bytes.Equal(enc, line) {
				t.Fatalf("checkpoint verified but is not the one this key signs: %q", line)
			}
		}
	})
}

// FuzzVerify: Verify never panics on arbitrary log and checkpoint-store
// contents read through a FileSink, reports only valid kinds, and finds
// nothing in the intact seed log.
func FuzzVerify(f *testing.F) {
	log, cp := seedLog(f)
	intactLog, intactCp := log, cp
	var memo sync.Map
	verifySignature = func(pub ed25519.PublicKey, msg, sig []byte) bool {
		k := string(pub) + string(sig) + string(msg)
		if ok, found := memo.Load(k); found {
			return ok.(bool)
		}
		ok := ed25519.Verify(pub, msg, sig)
		memo.Store(k, ok)
		return ok
	}
	f.Cleanup(func() { verifySignature = ed25519.Verify })
	f.Add(log, cp)
	f.Add(log[:len(log)/2], cp)
	f.Add(bytes.ReplaceAll(log, []byte("service_delivery"), []byte("marketing")), cp)
	f.Add([]byte("\n\n{}\n"), []byte("garbage"))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, log, cp []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, LogFileName), log, 0o600); err != nil {
			t.Fatal(err)
		}
		if len(cp) > 0 {
			if err := os.WriteFile(filepath.Join(dir, CheckpointFileName), cp, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		src, err := OpenFileSink(FileConfig{Dir: dir, ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(context.Background(), src, testPub)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if len(rep.Findings) > MaxFindings {
			t.Fatalf("%d findings", len(rep.Findings))
		}
		for _, fd := range rep.Findings {
			if fd.Kind < Edited || fd.Kind > Unsigned {
				t.Fatalf("finding of invalid kind: %v", fd)
			}
		}
		if bytes.Equal(log, intactLog) && bytes.Equal(cp, intactCp) && !rep.OK() {
			t.Fatalf("findings in the intact log: %v", rep.Findings)
		}
		if rep.OK() && rep.Anchored != rep.Last {
			t.Fatalf("clean report with Anchored %d != Last %d", rep.Anchored, rep.Last)
		}
	})
}
