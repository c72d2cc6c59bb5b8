package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fieldvault/fieldvault/vault/store"
)

type call struct {
	name string
	fn   func(ctx context.Context) error
}

// validCalls returns one well-formed call of every Store method except
// Close.
func validCalls(s store.Store) []call {
	r := ref("sub", 1, 1)
	return []call{
		{"InsertTokens", func(ctx context.Context) error {
			_, err := s.InsertTokens(ctx, []store.Token{row("tok_new", "sub", 1, 1, "fp-new")})
			return err
		}},
		{"GetTokens", func(ctx context.Context) error { _, err := s.GetTokens(ctx, []string{"tok"}); return err }},
		{"LookupFingerprints", func(ctx context.Context) error {
			_, err := s.LookupFingerprints(ctx, 1, [][]byte{[]byte("fp")})
			return err
		}},
		{"UpdateTokenKeys", func(ctx context.Context) error {
			_, err := s.UpdateTokenKeys(ctx, []store.KeyUpdate{{Token: "tok", OldVersion: 1, NewVersion: 2}})
			return err
		}},
		{"DeleteTokens", func(ctx context.Context) error { _, err := s.DeleteTokens(ctx, []string{"tok"}); return err }},
		{"SubjectTokens", func(ctx context.Context) error { _, err := s.SubjectTokens(ctx, "sub"); return err }},
		{"ScanTokens", func(ctx context.Context) error { _, _, err := s.ScanTokens(ctx, "", 10); return err }},
		{"TokenCounts", func(ctx context.Context) error { _, err := s.TokenCounts(ctx); return err }},
		{"GetSubjectKeys", func(ctx context.Context) error {
			_, err := s.GetSubjectKeys(ctx, []store.SubjectKeyRef{r})
			return err
		}},
		{"InsertSubjectKeys", func(ctx context.Context) error {
			_, err := s.InsertSubjectKeys(ctx, []store.SubjectKeyRef{ref("sub_new", 1, 1)}, [][]byte{[]byte("k")})
			return err
		}},
		{"DeleteSubjectKeys", func(ctx context.Context) error { _, err := s.DeleteSubjectKeys(ctx, "sub", nil); return err }},
		{"ScanSubjectKeys", func(ctx context.Context) error { _, _, err := s.ScanSubjectKeys(ctx, "", 10); return err }},
		{"GetRecord", func(ctx context.Context) error {
			_, err := s.GetRecord(ctx, "k", "id")
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		}},
		{"GetRecords", func(ctx context.Context) error { _, err := s.GetRecords(ctx, "k", []string{"id"}); return err }},
		{"PutRecord", func(ctx context.Context) error {
			_, err := s.PutRecord(ctx, rec("k", "new", "i", "v"), store.AnyRev)
			return err
		}},
		{"DeleteRecord", func(ctx context.Context) error { return s.DeleteRecord(ctx, "k", "id") }},
		{"ListRecords", func(ctx context.Context) error { _, err := s.ListRecords(ctx, "k"); return err }},
		{"ListByIndex", func(ctx context.Context) error { _, err := s.ListByIndex(ctx, "k", "i"); return err }},
		{"Ping", func(ctx context.Context) error { return s.Ping(ctx) }},
	}
}

func testInvalid(t *testing.T, s store.Store) {
	long := func(n int) string { return strings.Repeat("x", n) }
	tok := func(token string) []store.Token { return []store.Token{row(token, "sub", 1, 1, "")} }
	withSubject := row("tok", long(store.MaxSubjectLen+1), 1, 1, "")
	withCat0 := row("tok", "sub", 0, 1, "")
	ctx := t.Context()
	calls := []call{
		{"InsertTokens(empty token)", func(ctx context.Context) error { _, err := s.InsertTokens(ctx, tok("")); return err }},
		{"InsertTokens(long token)", func(ctx context.Context) error {
			_, err := s.InsertTokens(ctx, tok(long(store.MaxTokenLen+1)))
			return err
		}},
		{"InsertTokens(long subject)", func(ctx context.Context) error {
			_, err := s.InsertTokens(ctx, []store.Token{withSubject})
			return err
		}},
		{"InsertTokens(category 0)", func(ctx context.Context) error {
			_, err := s.InsertTokens(ctx, []store.Token{withCat0})
			return err
		}},
		{"GetTokens(empty)", func(ctx context.Context) error { _, err := s.GetTokens(ctx, []string{"ok", ""}); return err }},
		{"GetTokens(long)", func(ctx context.Context) error {
			_, err := s.GetTokens(ctx, []string{long(store.MaxTokenLen + 1)})
			return err
		}},
		{"LookupFingerprints(category 0)", func(ctx context.Context) error {
			_, err := s.LookupFingerprints(ctx, 0, [][]byte{[]byte("fp")})
			return err
		}},
		{"UpdateTokenKeys(empty)", func(ctx context.Context) error {
			_, err := s.UpdateTokenKeys(ctx, []store.KeyUpdate{{OldVersion: 1, NewVersion: 2}})
			return err
		}},
		{"UpdateTokenKeys(long)", func(ctx context.Context) error {
			_, err := s.UpdateTokenKeys(ctx, []store.KeyUpdate{{Token: long(store.MaxTokenLen + 1), OldVersion: 1, NewVersion: 2}})
			return err
		}},
		{"DeleteTokens(empty)", func(ctx context.Context) error { _, err := s.DeleteTokens(ctx, []string{""}); return err }},
		{"DeleteTokens(long)", func(ctx context.Context) error {
			_, err := s.DeleteTokens(ctx, []string{long(store.MaxTokenLen + 1)})
			return err
		}},
		{"SubjectTokens(long)", func(ctx context.Context) error {
			_, err := s.SubjectTokens(ctx, long(store.MaxSubjectLen+1))
			return err
		}},
		{"ScanTokens(limit 0)", func(ctx context.Context) error { _, _, err := s.ScanTokens(ctx, "", 0); return err }},
		{"ScanTokens(limit -1)", func(ctx context.Context) error { _, _, err := s.ScanTokens(ctx, "", -1); return err }},
		{"ScanTokens(foreign cursor)", func(ctx context.Context) error {
			_, _, err := s.ScanTokens(ctx, "\xff\x00 not a cursor", 10)
			return err
		}},
		{"GetSubjectKeys(category 0)", func(ctx context.Context) error {
			_, err := s.GetSubjectKeys(ctx, []store.SubjectKeyRef{ref("sub", 0, 1)})
			return err
		}},
		{"GetSubjectKeys(long subject)", func(ctx context.Context) error {
			_, err := s.GetSubjectKeys(ctx, []store.SubjectKeyRef{ref(long(store.MaxSubjectLen+1), 1, 1)})
			return err
		}},
		{"InsertSubjectKeys(category 0)", func(ctx context.Context) error {
			_, err := s.InsertSubjectKeys(ctx, []store.SubjectKeyRef{ref("sub", 0, 1)}, [][]byte{[]byte("k")})
			return err
		}},
		{"InsertSubjectKeys(long subject)", func(ctx context.Context) error {
			_, err := s.InsertSubjectKeys(ctx, []store.SubjectKeyRef{ref(long(store.MaxSubjectLen+1), 1, 1)}, [][]byte{[]byte("k")})
			return err
		}},
		{"InsertSubjectKeys(counts differ)", func(ctx context.Context) error {
			_, err := s.InsertSubjectKeys(ctx, []store.SubjectKeyRef{ref("sub", 1, 1)}, nil)
			return err
		}},
		{"InsertSubjectKeys(empty key)", func(ctx context.Context) error {
			_, err := s.InsertSubjectKeys(ctx, []store.SubjectKeyRef{ref("sub", 1, 1)}, [][]byte{{}})
			return err
		}},
		{"DeleteSubjectKeys(long subject)", func(ctx context.Context) error {
			_, err := s.DeleteSubjectKeys(ctx, long(store.MaxSubjectLen+1), nil)
			return err
		}},
		{"DeleteSubjectKeys(category 0)", func(ctx context.Context) error {
			_, err := s.DeleteSubjectKeys(ctx, "sub", []uint16{1, 0})
			return err
		}},
		{"ScanSubjectKeys(limit 0)", func(ctx context.Context) error { _, _, err := s.ScanSubjectKeys(ctx, "", 0); return err }},
		{"ScanSubjectKeys(foreign cursor)", func(ctx context.Context) error {
			_, _, err := s.ScanSubjectKeys(ctx, "\xff\x00 not a cursor", 10)
			return err
		}},
		{"GetRecord(empty kind)", func(ctx context.Context) error { _, err := s.GetRecord(ctx, "", "id"); return err }},
		{"GetRecord(empty id)", func(ctx context.Context) error { _, err := s.GetRecord(ctx, "k", ""); return err }},
		{"GetRecord(long id)", func(ctx context.Context) error { _, err := s.GetRecord(ctx, "k", long(store.MaxIDLen+1)); return err }},
		{"GetRecord(long kind)", func(ctx context.Context) error { _, err := s.GetRecord(ctx, long(store.MaxIDLen+1), "id"); return err }},
		{"GetRecords(empty id)", func(ctx context.Context) error { _, err := s.GetRecords(ctx, "k", []string{"a", ""}); return err }},
		{"GetRecords(empty kind)", func(ctx context.Context) error { _, err := s.GetRecords(ctx, "", []string{"a"}); return err }},
		{"PutRecord(empty kind)", func(ctx context.Context) error { _, err := s.PutRecord(ctx, rec("", "id", "", "v"), 0); return err }},
		{"PutRecord(empty id)", func(ctx context.Context) error { _, err := s.PutRecord(ctx, rec("k", "", "", "v"), 0); return err }},
		{"PutRecord(long kind)", func(ctx context.Context) error {
			_, err := s.PutRecord(ctx, rec(long(store.MaxIDLen+1), "id", "", "v"), 0)
			return err
		}},
		{"PutRecord(long id)", func(ctx context.Context) error {
			_, err := s.PutRecord(ctx, rec("k", long(store.MaxIDLen+1), "", "v"), 0)
			return err
		}},
		{"PutRecord(long index)", func(ctx context.Context) error {
			_, err := s.PutRecord(ctx, rec("k", "id", long(store.MaxIDLen+1), "v"), 0)
			return err
		}},
		{"PutRecord(long value)", func(ctx context.Context) error {
			_, err := s.PutRecord(ctx, store.Record{Kind: "k", ID: "id", Value: make([]byte, store.MaxValueLen+1)}, 0)
			return err
		}},
		{"DeleteRecord(empty id)", func(ctx context.Context) error { return s.DeleteRecord(ctx, "k", "") }},
		{"ListRecords(empty kind)", func(ctx context.Context) error { _, err := s.ListRecords(ctx, ""); return err }},
		{"ListByIndex(empty kind)", func(ctx context.Context) error { _, err := s.ListByIndex(ctx, "", "i"); return err }},
		{"ListByIndex(empty index)", func(ctx context.Context) error { _, err := s.ListByIndex(ctx, "k", ""); return err }},
	}
	for _, c := range calls {
		wantErr(t, c.name, c.fn(ctx), store.ErrInvalid)
	}

	// An invalid row anywhere fails the whole call: nothing is written.
	res, err := s.InsertTokens(ctx, []store.Token{row("tok_ok", "sub", 1, 1, "fp-ok"), withCat0})
	wantErr(t, "InsertTokens(valid, invalid)", err, store.ErrInvalid)
	if res != nil {
		t.Errorf("failed InsertTokens returned results %+v", res)
	}
	_, err = s.InsertSubjectKeys(ctx, []store.SubjectKeyRef{ref("sub", 1, 1), ref("sub", 0, 1)}, [][]byte{[]byte("k"), []byte("k")})
	wantErr(t, "InsertSubjectKeys(valid, invalid)", err, store.ErrInvalid)
	checkAbsent(t, s, "tok_ok")
	checkLookup(t, s, 1, "fp-ok", "")
	checkCounts(t, s, map[countKey]int64{})
	checkKeys(t, s, []store.SubjectKeyRef{ref("sub", 1, 1)}, [][]byte{nil})
	checkRecord(t, s, "k", "id", nil)
}

func testLimits(t *testing.T, s store.Store) {
	// The limits themselves are accepted.
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	r := row(long("t", store.MaxTokenLen), long("s", store.MaxSubjectLen), 0xFFFF, 1, long("f", 64))
	mustInsert(t, s, r)
	checkPresent(t, s, r)
	checkSubjectTokens(t, s, r.Subject, r.Token)
	checkLookup(t, s, 0xFFFF, string(r.Fingerprint), r.Token)
	k := ref(long("s", store.MaxSubjectLen), 0xFFFF, 0xFFFFFFFF)
	mustInsertKeys(t, s, k)
	checkKeys(t, s, []store.SubjectKeyRef{k}, [][]byte{wrappedKey(k, "v")})
	if n, err := s.DeleteSubjectKeys(t.Context(), k.Subject, []uint16{0xFFFF}); err != nil || n != 1 {
		t.Errorf("DeleteSubjectKeys = %d, %v", n, err)
	}
	big := store.Record{
		Kind: long("k", store.MaxIDLen), ID: long("i", store.MaxIDLen), Index: long("x", store.MaxIDLen),
		Value: make([]byte, store.MaxValueLen),
	}
	put(t, s, big, 0)
	checkRecord(t, s, big.Kind, big.ID, withRev(big, 1))
	got, err := s.ListByIndex(t.Context(), big.Kind, big.Index)
	checkList(t, "ListByIndex at the limits", got, err, withRev(big, 1))
	if n, err := s.DeleteTokens(t.Context(), []string{r.Token}); err != nil || n != 1 {
		t.Errorf("DeleteTokens = %d, %v", n, err)
	}
}

func testCancelledContext(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, c := range validCalls(s) {
		wantErr(t, c.name+" with a cancelled context", c.fn(ctx), context.Canceled)
	}
	// Nothing was written.
	checkAbsent(t, s, "tok_new")
	checkLookup(t, s, 1, "fp-new", "")
	checkKeys(t, s, []store.SubjectKeyRef{ref("sub_new", 1, 1)}, [][]byte{nil})
	checkRecord(t, s, "k", "new", nil)
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func testClosed(t *testing.T, s store.Store) {
	// Every call works before Close, and fails with ErrClosed after.
	for _, c := range validCalls(s) {
		if err := c.fn(t.Context()); err != nil {
			t.Errorf("%s before Close: %v", c.name, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, c := range validCalls(s) {
		wantErr(t, c.name+" after Close", c.fn(t.Context()), store.ErrClosed)
	}
}
