// Package storetest is the conformance suite every store.Store backend must
// pass. It checks each method against each sentence of the contract in
// package store, including concurrent insert races and a randomized
// comparison against an in-memory model of the contract.
//
// A backend's test calls
//
//	storetest.Run(t, func(t *testing.T) store.Store { ... })
//	storetest.RunDurability(t, open, reopen)
//
// The suite uses real stores only; the model it compares against lives in
// this package's test helpers and is not a Store.
package storetest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fieldvault/fieldvault/vault/store"
)

// Open returns a new, empty store. The suite closes it.
type Open func(t *testing.T) store.Store

// Reopen closes s and returns a new Store instance over the same data, as a
// process restart would.
type Reopen func(t *testing.T, s store.Store) store.Store

type test struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

var tests = []test{
	{"InsertAndGet", testInsertAndGet},
	{"TokenExists", testTokenExists},
	{"TokenExistsConcurrent", testTokenExistsConcurrent},
	{"UpdateTokenKeysConcurrent", testUpdateTokenKeysConcurrent},
	{"FingerprintBound", testFingerprintBound},
	{"FingerprintBoundInOneCall", testFingerprintBoundInOneCall},
	{"FingerprintConcurrent", testFingerprintConcurrent},
	{"FingerprintPerCategory", testFingerprintPerCategory},
	{"LookupFingerprints", testLookupFingerprints},
	{"UpdateTokenKeys", testUpdateTokenKeys},
	{"DeleteTokens", testDeleteTokens},
	{"SubjectTokens", testSubjectTokens},
	{"ScanTokens", testScanTokens},
	{"TokenCounts", testTokenCounts},
	{"SubjectKeysInsertGet", testSubjectKeysInsertGet},
	{"SubjectKeysConcurrent", testSubjectKeysConcurrent},
	{"DeleteSubjectKeys", testDeleteSubjectKeys},
	{"ScanSubjectKeys", testScanSubjectKeys},
	{"PutRecord", testPutRecord},
	{"PutRecordConcurrent", testPutRecordConcurrent},
	{"GetRecords", testGetRecords},
	{"ListRecords", testListRecords},
	{"ListByIndex", testListByIndex},
	{"Invalid", testInvalid},
	{"Limits", testLimits},
	{"CancelledContext", testCancelledContext},
	{"Ping", testPing},
	{"Closed", testClosed},
	{"Model", testModel},
}

// Run runs the conformance suite, opening a new store for each test.
func Run(t *testing.T, open Open) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, openStore(t, open))
		})
	}
}

// RunDurability checks that everything written survives a reopen, and that
// scan cursors taken from one Store instance resume on the next.
func RunDurability(t *testing.T, open Open, reopen Reopen) {
	t.Run("Reopen", func(t *testing.T) { testReopen(t, open, reopen) })
	t.Run("CursorAcrossReopen", func(t *testing.T) { testCursorAcrossReopen(t, open, reopen) })
}

func openStore(t *testing.T, open Open) store.Store {
	t.Helper()
	s := open(t)
	// Close errors are not checked here: tests may have closed s already.
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// reopenStore reopens s and arranges for the new instance to be closed.
func reopenStore(t *testing.T, s store.Store, reopen Reopen) store.Store {
	t.Helper()
	s2 := reopen(t, s)
	t.Cleanup(func() { _ = s2.Close() })
	return s2
}

// Times used by generated rows.
const (
	created = 1_764_000_000
	expires = created + 365*86400
)

// row returns a token row; fp "" means a random (not deterministic) token.
func row(token, subject string, cat uint16, ver uint32, fp string) store.Token {
	r := store.Token{
		Token: token, Subject: subject, Category: cat, KeyVersion: ver,
		CreatedAt: created, ExpiresAt: expires,
		Ciphertext: []byte("ciphertext of " + token),
	}
	if fp != "" {
		r.Fingerprint = []byte(fp)
	}
	return r
}

func sameToken(a, b store.Token) bool {
	return a.Token == b.Token && a.Subject == b.Subject && a.Category == b.Category &&
		a.KeyVersion == b.KeyVersion && a.CreatedAt == b.CreatedAt && a.ExpiresAt == b.ExpiresAt &&
		bytes.Equal(a.Fingerprint, b.Fingerprint) && bytes.Equal(a.Ciphertext, b.Ciphertext)
}

func fmtToken(t *store.Token) string {
	if t == nil {
		return "<nil>"
	}
	return fmt.Sprintf("{%q subject=%q cat=%d ver=%d created=%d expires=%d fp=%q ct=%q}",
		t.Token, t.Subject, t.Category, t.KeyVersion, t.CreatedAt, t.ExpiresAt, t.Fingerprint, t.Ciphertext)
}

func mustInsert(t *testing.T, s store.Store, rows ...store.Token) {
	t.Helper()
	res, err := s.InsertTokens(t.Context(), rows)
	if err != nil {
		t.Fatalf("InsertTokens: %v", err)
	}
	if len(res) != len(rows) {
		t.Fatalf("InsertTokens returned %d results for %d rows", len(res), len(rows))
	}
	for i, r := range res {
		if r.Err != nil || r.Existing != "" {
			t.Fatalf("InsertTokens row %d (%q): %+v, want stored", i, rows[i].Token, r)
		}
	}
}

// checkTokens asserts GetTokens(tokens) equals want (nil entries: absent).
func checkTokens(t *testing.T, s store.Store, tokens []string, want []*store.Token) {
	t.Helper()
	got, err := s.GetTokens(t.Context(), tokens)
	if err != nil {
		t.Fatalf("GetTokens: %v", err)
	}
	if len(got) != len(tokens) {
		t.Fatalf("GetTokens returned %d entries for %d tokens", len(got), len(tokens))
	}
	for i := range tokens {
		switch {
		case want[i] == nil && got[i] == nil:
		case want[i] == nil || got[i] == nil || !sameToken(*got[i], *want[i]):
			t.Errorf("GetTokens[%d] (%q) = %s, want %s", i, tokens[i], fmtToken(got[i]), fmtToken(want[i]))
		}
	}
}

func checkAbsent(t *testing.T, s store.Store, tokens ...string) {
	t.Helper()
	checkTokens(t, s, tokens, make([]*store.Token, len(tokens)))
}

func checkPresent(t *testing.T, s store.Store, rows ...store.Token) {
	t.Helper()
	tokens := make([]string, len(rows))
	want := make([]*store.Token, len(rows))
	for i := range rows {
		tokens[i] = rows[i].Token
		want[i] = &rows[i]
	}
	checkTokens(t, s, tokens, want)
}

type countKey struct {
	cat uint16
	ver uint32
}

// counts returns TokenCounts as a map, failing on zero or repeated entries.
func counts(t *testing.T, s store.Store) map[countKey]int64 {
	t.Helper()
	tc, err := s.TokenCounts(t.Context())
	if err != nil {
		t.Fatalf("TokenCounts: %v", err)
	}
	m := make(map[countKey]int64, len(tc))
	for _, c := range tc {
		k := countKey{c.Category, c.Version}
		if c.Count == 0 {
			t.Errorf("TokenCounts includes a zero count: %+v", c)
		}
		if _, dup := m[k]; dup {
			t.Errorf("TokenCounts repeats %+v", k)
		}
		m[k] = c.Count
	}
	return m
}

func checkCounts(t *testing.T, s store.Store, want map[countKey]int64) {
	t.Helper()
	got := counts(t, s)
	for k, v := range want {
		if v == 0 {
			delete(want, k)
		}
	}
	if !mapsEqual(got, want) {
		t.Errorf("TokenCounts = %v, want %v", got, want)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func subjectTokens(t *testing.T, s store.Store, subject string) []string {
	t.Helper()
	toks, err := s.SubjectTokens(t.Context(), subject)
	if err != nil {
		t.Fatalf("SubjectTokens(%q): %v", subject, err)
	}
	slices.Sort(toks)
	return toks
}

func checkSubjectTokens(t *testing.T, s store.Store, subject string, want ...string) {
	t.Helper()
	got := subjectTokens(t, s, subject)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("SubjectTokens(%q) = %q, want %q", subject, got, want)
	}
}

func lookup(t *testing.T, s store.Store, cat uint16, fps ...string) []string {
	t.Helper()
	b := make([][]byte, len(fps))
	for i, fp := range fps {
		b[i] = []byte(fp)
	}
	got, err := s.LookupFingerprints(t.Context(), cat, b)
	if err != nil {
		t.Fatalf("LookupFingerprints: %v", err)
	}
	if len(got) != len(fps) {
		t.Fatalf("LookupFingerprints returned %d entries for %d fingerprints", len(got), len(fps))
	}
	return got
}

func checkLookup(t *testing.T, s store.Store, cat uint16, fp, want string) {
	t.Helper()
	if got := lookup(t, s, cat, fp)[0]; got != want {
		t.Errorf("LookupFingerprints(%d, %q) = %q, want %q", cat, fp, got, want)
	}
}

// scanAll walks ScanTokens with the given page size, failing if a row is
// seen twice or the walk does not end.
func scanAll(t *testing.T, s store.Store, limit int) map[string]store.Token {
	t.Helper()
	seen := make(map[string]store.Token)
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100000 {
			t.Fatalf("ScanTokens(limit %d) does not end", limit)
		}
		rows, next, err := s.ScanTokens(t.Context(), cursor, limit)
		if err != nil {
			t.Fatalf("ScanTokens(%q, %d): %v", cursor, limit, err)
		}
		if len(rows) > limit {
			t.Fatalf("ScanTokens(limit %d) returned %d rows", limit, len(rows))
		}
		for _, r := range rows {
			if _, dup := seen[r.Token]; dup {
				t.Fatalf("ScanTokens(limit %d) returned %q twice", limit, r.Token)
			}
			seen[r.Token] = r
		}
		checkCursor(t, next)
		if next == "" {
			return seen
		}
		if len(rows) == 0 && next == cursor {
			t.Fatalf("ScanTokens(limit %d) makes no progress at cursor %q", limit, cursor)
		}
		cursor = next
	}
}

func checkScan(t *testing.T, s store.Store, limit int, want ...store.Token) {
	t.Helper()
	got := scanAll(t, s, limit)
	if len(got) != len(want) {
		t.Errorf("ScanTokens(limit %d) visited %d rows, want %d", limit, len(got), len(want))
	}
	for _, w := range want {
		g, ok := got[w.Token]
		if !ok {
			t.Errorf("ScanTokens(limit %d) missed %q", limit, w.Token)
		} else if !sameToken(g, w) {
			t.Errorf("ScanTokens(limit %d) row %s, want %s", limit, fmtToken(&g), fmtToken(&w))
		}
	}
}

func scanKeys(t *testing.T, s store.Store, limit int) []store.SubjectKeyRef {
	t.Helper()
	var all []store.SubjectKeyRef
	seen := make(map[store.SubjectKeyRef]bool)
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100000 {
			t.Fatalf("ScanSubjectKeys(limit %d) does not end", limit)
		}
		refs, next, err := s.ScanSubjectKeys(t.Context(), cursor, limit)
		if err != nil {
			t.Fatalf("ScanSubjectKeys(%q, %d): %v", cursor, limit, err)
		}
		if len(refs) > limit {
			t.Fatalf("ScanSubjectKeys(limit %d) returned %d refs", limit, len(refs))
		}
		for _, r := range refs {
			if seen[r] {
				t.Fatalf("ScanSubjectKeys(limit %d) returned %+v twice", limit, r)
			}
			seen[r] = true
			all = append(all, r)
		}
		checkCursor(t, next)
		if next == "" {
			sortRefs(all)
			return all
		}
		cursor = next
	}
}

// checkCursor checks that a cursor can be persisted as text (JSON
// included) unchanged: printable ASCII.
func checkCursor(t *testing.T, cursor string) {
	t.Helper()
	for i := 0; i < len(cursor); i++ {
		if cursor[i] < 0x20 || cursor[i] > 0x7e {
			t.Fatalf("cursor %q is not printable ASCII", cursor)
		}
	}
}

func sortRefs(refs []store.SubjectKeyRef) {
	slices.SortFunc(refs, func(a, b store.SubjectKeyRef) int {
		return cmp.Or(strings.Compare(a.Subject, b.Subject), cmp.Compare(a.Category, b.Category), cmp.Compare(a.Version, b.Version))
	})
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want %v", what, err, want)
	}
}

// bg is a context for calls that must not be affected by a test's
// cancellation.
func bg() context.Context { return context.Background() }
