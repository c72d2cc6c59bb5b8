package storetest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/fieldvault/fieldvault/vault/store"
)

// dump renders everything observable through the API about the given
// subjects, fingerprints and record kinds, in a canonical order.
func dump(t *testing.T, s store.Store, subjects []string, fps map[uint16][]string, kinds map[string][]string) string {
	t.Helper()
	var b strings.Builder
	rows := scanAll(t, s, 4)
	tokens := make([]string, 0, len(rows))
	for tok := range rows {
		tokens = append(tokens, tok)
	}
	slices.Sort(tokens)
	for _, tok := range tokens {
		r := rows[tok]
		fmt.Fprintf(&b, "row %s\n", fmtToken(&r))
	}
	cs := counts(t, s)
	keys := make([]countKey, 0, len(cs))
	for k := range cs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b countKey) int {
		if a.cat != b.cat {
			return int(a.cat) - int(b.cat)
		}
		return int(int64(a.ver) - int64(b.ver))
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "count %d/%d = %d\n", k.cat, k.ver, cs[k])
	}
	for _, sub := range subjects {
		fmt.Fprintf(&b, "subject %q: %q\n", sub, subjectTokens(t, s, sub))
	}
	for _, cat := range slices.Sorted(maps.Keys(fps)) {
		list := fps[cat]
		fmt.Fprintf(&b, "fps %d %q: %q\n", cat, list, lookup(t, s, cat, list...))
	}
	refs := scanKeys(t, s, 3)
	material, err := s.GetSubjectKeys(t.Context(), refs)
	if err != nil {
		t.Fatalf("GetSubjectKeys: %v", err)
	}
	for i, r := range refs {
		fmt.Fprintf(&b, "key %+v = %q\n", r, material[i])
	}
	for _, kind := range slices.Sorted(maps.Keys(kinds)) {
		indexes := kinds[kind]
		list, err := s.ListRecords(t.Context(), kind)
		if err != nil {
			t.Fatalf("ListRecords: %v", err)
		}
		for _, r := range list {
			fmt.Fprintf(&b, "record %s\n", fmtRecord(r))
		}
		for _, idx := range indexes {
			list, err := s.ListByIndex(t.Context(), kind, idx)
			if err != nil {
				t.Fatalf("ListByIndex: %v", err)
			}
			for _, r := range list {
				fmt.Fprintf(&b, "index %q %s\n", idx, fmtRecord(r))
			}
		}
	}
	return b.String()
}

func testReopen(t *testing.T, open Open, reopen Reopen) {
	s := openStore(t, open)
	var rows []store.Token
	for i := range 30 {
		fp := ""
		if i%2 == 0 {
			fp = fmt.Sprintf("fp-%d", i)
		}
		rows = append(rows, row(fmt.Sprintf("tok_%02d", i), fmt.Sprintf("sub_%d", i%4), uint16(1+i%3), 1, fp))
	}
	mustInsert(t, s, rows[:10]...)
	mustInsert(t, s, rows[10:]...)
	if _, err := s.DeleteTokens(t.Context(), []string{"tok_00", "tok_05", "tok_12"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateTokenKeys(t.Context(), []store.KeyUpdate{
		{Token: "tok_02", OldVersion: 1, NewVersion: 2, Ciphertext: []byte("new")},
		{Token: "tok_03", OldVersion: 1, NewVersion: 3, Ciphertext: []byte("new")},
	}); err != nil {
		t.Fatal(err)
	}
	keyRefs := []store.SubjectKeyRef{ref("sub_0", 1, 1), ref("sub_0", 2, 1), ref("sub_1", 1, 1), ref("sub_1", 1, 2)}
	mustInsertKeys(t, s, keyRefs...)
	if _, err := s.DeleteSubjectKeys(t.Context(), "sub_1", []uint16{1}); err != nil {
		t.Fatal(err)
	}
	put(t, s, rec("consent", "c1", "sub_0", "v1"), 0)
	put(t, s, rec("consent", "c1", "sub_1", "v2"), 1)
	put(t, s, rec("consent", "c2", "sub_0", "x"), 0)
	put(t, s, rec("job", "j", "", "done"), 0)
	if err := s.DeleteRecord(t.Context(), "consent", "c2"); err != nil {
		t.Fatal(err)
	}

	subjects := []string{"sub_0", "sub_1", "sub_2", "sub_3"}
	fps := map[uint16][]string{1: {"fp-0", "fp-6", "fp-12"}, 2: {"fp-4", "fp-10"}, 3: {"fp-2", "fp-8"}}
	kinds := map[string][]string{"consent": {"sub_0", "sub_1"}, "job": nil}
	before := dump(t, s, subjects, fps, kinds)
	for _, want := range []string{`row {"tok_29"`, `count 1/1 = `, `key {Subject:sub_0 Category:2 Version:1}`, `index "sub_1" {"consent"/"c1"`} {
		if !strings.Contains(before, want) {
			t.Fatalf("state before reopen lacks %s:\n%s", want, before)
		}
	}

	s = reopenStore(t, s, reopen)
	if after := dump(t, s, subjects, fps, kinds); after != before {
		t.Fatalf("state changed across reopen\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// The indexes survived: uniqueness still holds, revisions go on.
	res, err := s.InsertTokens(t.Context(), []store.Token{
		row("tok_01", "sub_9", 1, 1, ""),
		row("tok_new", "sub_9", 1, 1, "fp-6"),
		row("tok_00", "sub_9", 1, 1, "fp-0"),
	})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "existing token after reopen", res[0].Err, store.ErrTokenExists)
	wantErr(t, "bound fingerprint after reopen", res[1].Err, store.ErrFingerprintBound)
	if res[1].Existing != "tok_06" {
		t.Errorf("Existing = %q, want tok_06", res[1].Existing)
	}
	if res[2].Err != nil {
		t.Errorf("re-inserting a token deleted before reopen: %v", res[2].Err)
	}
	if rev := put(t, s, rec("consent", "c1", "sub_1", "v3"), 2); rev != 3 {
		t.Errorf("PutRecord after reopen = rev %d, want 3", rev)
	}
	got := insertKeys(t, s, []store.SubjectKeyRef{ref("sub_0", 1, 1)}, [][]byte{[]byte("other")})
	if string(got[0]) != string(wrappedKey(ref("sub_0", 1, 1), "v")) {
		t.Errorf("InsertSubjectKeys after reopen returned %q, want the stored key", got[0])
	}
}

func testCursorAcrossReopen(t *testing.T, open Open, reopen Reopen) {
	s := openStore(t, open)
	var rows []store.Token
	var refs []store.SubjectKeyRef
	for i := range 40 {
		rows = append(rows, row(fmt.Sprintf("tok_%02d", i), "sub", 1, 1, ""))
		refs = append(refs, ref(fmt.Sprintf("sub_%02d", i), 1, uint32(i)))
	}
	mustInsert(t, s, rows...)
	mustInsertKeys(t, s, refs...)

	first, cursor, err := s.ScanTokens(t.Context(), "", 15)
	if err != nil || cursor == "" {
		t.Fatalf("ScanTokens = %q, %v", cursor, err)
	}
	firstRefs, keyCursor, err := s.ScanSubjectKeys(t.Context(), "", 15)
	if err != nil || keyCursor == "" {
		t.Fatalf("ScanSubjectKeys = %q, %v", keyCursor, err)
	}

	s = reopenStore(t, s, reopen)
	seen := make(map[string]int)
	for _, r := range first {
		seen[r.Token]++
	}
	for c := cursor; c != ""; {
		var page []store.Token
		page, c, err = s.ScanTokens(t.Context(), c, 7)
		if err != nil {
			t.Fatalf("ScanTokens after reopen: %v", err)
		}
		for _, r := range page {
			seen[r.Token]++
		}
	}
	for _, r := range rows {
		if seen[r.Token] != 1 {
			t.Errorf("token %q seen %d times across the reopen, want once", r.Token, seen[r.Token])
		}
	}
	if len(seen) != len(rows) {
		t.Errorf("walk across the reopen saw %d tokens, want %d", len(seen), len(rows))
	}

	gotRefs := slices.Clone(firstRefs)
	for c := keyCursor; c != ""; {
		var page []store.SubjectKeyRef
		page, c, err = s.ScanSubjectKeys(t.Context(), c, 7)
		if err != nil {
			t.Fatalf("ScanSubjectKeys after reopen: %v", err)
		}
		gotRefs = append(gotRefs, page...)
	}
	sortRefs(gotRefs)
	sortRefs(refs)
	if !slices.Equal(gotRefs, refs) {
		t.Errorf("subject key walk across the reopen = %+v, want %+v", gotRefs, refs)
	}
}
