package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/fieldvault/fieldvault/vault/store"
)

func ref(subject string, cat uint16, ver uint32) store.SubjectKeyRef {
	return store.SubjectKeyRef{Subject: subject, Category: cat, Version: ver}
}

func wrappedKey(r store.SubjectKeyRef, tag string) []byte {
	return fmt.Appendf(nil, "wrapped/%s/%d/%d/%s", r.Subject, r.Category, r.Version, tag)
}

func insertKeys(t *testing.T, s store.Store, refs []store.SubjectKeyRef, wrapped [][]byte) [][]byte {
	t.Helper()
	got, err := s.InsertSubjectKeys(t.Context(), refs, wrapped)
	if err != nil {
		t.Fatalf("InsertSubjectKeys: %v", err)
	}
	if len(got) != len(refs) {
		t.Fatalf("InsertSubjectKeys returned %d keys for %d refs", len(got), len(refs))
	}
	return got
}

func mustInsertKeys(t *testing.T, s store.Store, refs ...store.SubjectKeyRef) {
	t.Helper()
	wrapped := make([][]byte, len(refs))
	for i, r := range refs {
		wrapped[i] = wrappedKey(r, "v")
	}
	got := insertKeys(t, s, refs, wrapped)
	for i := range refs {
		if !bytes.Equal(got[i], wrapped[i]) {
			t.Fatalf("InsertSubjectKeys(%+v) = %q, want %q", refs[i], got[i], wrapped[i])
		}
	}
}

func checkKeys(t *testing.T, s store.Store, refs []store.SubjectKeyRef, want [][]byte) {
	t.Helper()
	got, err := s.GetSubjectKeys(t.Context(), refs)
	if err != nil {
		t.Fatalf("GetSubjectKeys: %v", err)
	}
	if len(got) != len(refs) {
		t.Fatalf("GetSubjectKeys returned %d keys for %d refs", len(got), len(refs))
	}
	for i := range refs {
		if (got[i] == nil) != (want[i] == nil) || !bytes.Equal(got[i], want[i]) {
			t.Errorf("GetSubjectKeys[%d] (%+v) = %q, want %q", i, refs[i], got[i], want[i])
		}
	}
}

func testSubjectKeysInsertGet(t *testing.T, s store.Store) {
	r1, r2, r3 := ref("sub", 1, 1), ref("sub", 1, 2), ref("sub\x00x", 2, 1)
	got := insertKeys(t, s,
		[]store.SubjectKeyRef{r1, r2, r1, r3},
		[][]byte{wrappedKey(r1, "first"), wrappedKey(r2, "a"), wrappedKey(r1, "second"), wrappedKey(r3, "a")})
	want := [][]byte{wrappedKey(r1, "first"), wrappedKey(r2, "a"), wrappedKey(r1, "first"), wrappedKey(r3, "a")}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("InsertSubjectKeys[%d] = %q, want %q (duplicates resolve to the first)", i, got[i], want[i])
		}
	}
	checkKeys(t, s,
		[]store.SubjectKeyRef{r3, ref("sub", 1, 3), r1, ref("sub", 2, 1), r1, ref("sub\x00", 2, 1)},
		[][]byte{want[3], nil, want[0], nil, want[0], nil})

	// Present refs keep their key; absent ones in the same call are stored.
	r4 := ref("other", 7, 1)
	got = insertKeys(t, s, []store.SubjectKeyRef{r2, r4}, [][]byte{[]byte("overwrite?"), wrappedKey(r4, "a")})
	if !bytes.Equal(got[0], want[1]) || !bytes.Equal(got[1], wrappedKey(r4, "a")) {
		t.Errorf("InsertSubjectKeys = %q, want the stored key and the new one", got)
	}
	checkKeys(t, s, []store.SubjectKeyRef{r2, r4}, [][]byte{want[1], wrappedKey(r4, "a")})

	// Changing the returned or given slices changes nothing stored.
	got[0][0] ^= 0xFF
	k, err := s.GetSubjectKeys(t.Context(), []store.SubjectKeyRef{r2})
	if err != nil {
		t.Fatal(err)
	}
	k[0][0] ^= 0xFF
	checkKeys(t, s, []store.SubjectKeyRef{r2}, [][]byte{want[1]})

	if got, err := s.GetSubjectKeys(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("GetSubjectKeys(nil) = %q, %v", got, err)
	}
	if got, err := s.InsertSubjectKeys(t.Context(), nil, nil); err != nil || len(got) != 0 {
		t.Errorf("InsertSubjectKeys(nil) = %q, %v", got, err)
	}
}

func testSubjectKeysConcurrent(t *testing.T, s store.Store) {
	const writers = 12
	contested := ref("sub", 3, 1)
	got := make([][]byte, writers)
	errs := make([]error, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		own := ref(fmt.Sprintf("sub_%d", i), 3, 1)
		wg.Go(func() {
			<-start
			var res [][]byte
			res, errs[i] = s.InsertSubjectKeys(bg(),
				[]store.SubjectKeyRef{own, contested},
				[][]byte{wrappedKey(own, "own"), wrappedKey(contested, fmt.Sprint(i))})
			if errs[i] == nil {
				if !bytes.Equal(res[0], wrappedKey(own, "own")) {
					errs[i] = fmt.Errorf("own key came back as %q", res[0])
				}
				got[i] = res[1]
			}
		})
	}
	close(start)
	wg.Wait()
	for i := range writers {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
	}
	winner := -1
	for i := range writers {
		if bytes.Equal(got[0], wrappedKey(contested, fmt.Sprint(i))) {
			winner = i
		}
	}
	if winner < 0 {
		t.Fatalf("contested key %q is no writer's key", got[0])
	}
	for i := range writers {
		if !bytes.Equal(got[i], got[winner]) {
			t.Errorf("writer %d got %q, writer %d got %q: want one winner seen by all", i, got[i], winner, got[winner])
		}
	}
	checkKeys(t, s, []store.SubjectKeyRef{contested}, [][]byte{got[winner]})
	if refs := scanKeys(t, s, 5); len(refs) != writers+1 {
		t.Errorf("ScanSubjectKeys found %d refs, want %d", len(refs), writers+1)
	}
}

func testDeleteSubjectKeys(t *testing.T, s store.Store) {
	refs := []store.SubjectKeyRef{
		ref("a", 1, 1), ref("a", 1, 2), ref("a", 1, 3),
		ref("a", 2, 1), ref("a", 3, 1), ref("a", 3, 7),
		ref("a\x00", 1, 1), ref("a\x00b", 2, 1), ref("ab", 1, 1), ref("b", 1, 1),
	}
	mustInsertKeys(t, s, refs...)
	wrapped := func(rs ...store.SubjectKeyRef) [][]byte {
		out := make([][]byte, len(rs))
		for i, r := range rs {
			out[i] = wrappedKey(r, "v")
		}
		return out
	}

	// Some categories, every version; a category the subject lacks counts
	// nothing.
	n, err := s.DeleteSubjectKeys(t.Context(), "a", []uint16{1, 3, 9})
	if err != nil || n != 5 {
		t.Fatalf("DeleteSubjectKeys(a, [1 3 9]) = %d, %v; want 5", n, err)
	}
	checkKeys(t, s, refs, append(make([][]byte, 3), append(append(wrapped(refs[3]), nil, nil), wrapped(refs[6:]...)...)...))

	// All categories.
	n, err = s.DeleteSubjectKeys(t.Context(), "a", nil)
	if err != nil || n != 1 {
		t.Fatalf("DeleteSubjectKeys(a, nil) = %d, %v; want 1", n, err)
	}
	checkKeys(t, s, refs, append(make([][]byte, 6), wrapped(refs[6:]...)...))
	if got := scanKeys(t, s, 3); !slices.Equal(got, refs[6:]) {
		t.Errorf("ScanSubjectKeys = %+v, want %+v", got, refs[6:])
	}
	n, err = s.DeleteSubjectKeys(t.Context(), "a", nil)
	if err != nil || n != 0 {
		t.Errorf("DeleteSubjectKeys again = %d, %v; want 0", n, err)
	}
	n, err = s.DeleteSubjectKeys(t.Context(), "nobody", []uint16{1})
	if err != nil || n != 0 {
		t.Errorf("DeleteSubjectKeys(nobody) = %d, %v; want 0", n, err)
	}
	n, err = s.DeleteSubjectKeys(t.Context(), "a\x00b", []uint16{})
	if err != nil || n != 0 {
		t.Errorf("DeleteSubjectKeys with no categories = %d, %v; want 0", n, err)
	}

	// A shredded ref can be given new key material.
	mustInsertKeys(t, s, ref("a", 1, 1))
	checkKeys(t, s, []store.SubjectKeyRef{ref("a", 1, 1)}, wrapped(ref("a", 1, 1)))
}

func testScanSubjectKeys(t *testing.T, s store.Store) {
	refs, next, err := s.ScanSubjectKeys(t.Context(), "", 4)
	if err != nil || len(refs) != 0 || next != "" {
		t.Fatalf("ScanSubjectKeys on an empty store = %+v, %q, %v", refs, next, err)
	}
	var all []store.SubjectKeyRef
	for i := range 23 {
		all = append(all, ref(fmt.Sprintf("sub_%d", i%6), uint16(1+i%4), uint32(i)))
	}
	all = append(all, ref("", 1, 1), ref("\x00", 1, 1), ref("\xff", 0xFFFF, 0xFFFFFFFF))
	mustInsertKeys(t, s, all...)
	sortRefs(all)
	for _, limit := range []int{1, 3, 26, 27, 500} {
		if got := scanKeys(t, s, limit); !slices.Equal(got, all) {
			t.Errorf("ScanSubjectKeys(limit %d) = %+v, want %+v", limit, got, all)
		}
	}
	// A kept cursor resumes.
	first, cursor, err := s.ScanSubjectKeys(t.Context(), "", 10)
	if err != nil || len(first) != 10 || cursor == "" {
		t.Fatalf("ScanSubjectKeys(\"\", 10) = %d refs, %q, %v", len(first), cursor, err)
	}
	for range 2 {
		got := slices.Clone(first)
		for c := cursor; c != ""; {
			var page []store.SubjectKeyRef
			page, c, err = s.ScanSubjectKeys(t.Context(), c, 4)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
		}
		sortRefs(got)
		if !slices.Equal(got, all) {
			t.Errorf("first page plus resumed walk = %+v, want %+v", got, all)
		}
	}
}
