package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/fieldvault/fieldvault/vault/store"
)

func rec(kind, id, index, value string) store.Record {
	return store.Record{Kind: kind, ID: id, Index: index, Value: []byte(value)}
}

func put(t *testing.T, s store.Store, r store.Record, expect uint64) uint64 {
	t.Helper()
	rev, err := s.PutRecord(t.Context(), r, expect)
	if err != nil {
		t.Fatalf("PutRecord(%s/%s, expect %d): %v", r.Kind, r.ID, expect, err)
	}
	return rev
}

func sameRecord(a, b *store.Record) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Kind == b.Kind && a.ID == b.ID && a.Index == b.Index && a.Rev == b.Rev && bytes.Equal(a.Value, b.Value)
}

func fmtRecord(r *store.Record) string {
	if r == nil {
		return "<nil>"
	}
	return fmt.Sprintf("{%q/%q index=%q rev=%d value=%q}", r.Kind, r.ID, r.Index, r.Rev, r.Value)
}

func checkRecord(t *testing.T, s store.Store, kind, id string, want *store.Record) {
	t.Helper()
	got, err := s.GetRecord(t.Context(), kind, id)
	if want == nil {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetRecord(%q, %q) = %s, %v; want ErrNotFound", kind, id, fmtRecord(got), err)
		}
		return
	}
	if err != nil || !sameRecord(got, want) {
		t.Errorf("GetRecord(%q, %q) = %s, %v; want %s", kind, id, fmtRecord(got), err, fmtRecord(want))
	}
}

func withRev(r store.Record, rev uint64) *store.Record {
	r.Rev = rev
	return &r
}

func checkList(t *testing.T, what string, got []*store.Record, err error, want ...*store.Record) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = sameRecord(got[i], want[i])
	}
	if !ok {
		g := make([]string, len(got))
		for i := range got {
			g[i] = fmtRecord(got[i])
		}
		w := make([]string, len(want))
		for i := range want {
			w[i] = fmtRecord(want[i])
		}
		t.Errorf("%s =\n %v\nwant\n %v", what, g, w)
	}
}

func testPutRecord(t *testing.T, s store.Store) {
	r := rec("consent", "c1", "sub_1", "v1")
	checkRecord(t, s, "consent", "c1", nil)

	if rev := put(t, s, r, 0); rev != 1 {
		t.Errorf("creating PutRecord = rev %d, want 1", rev)
	}
	checkRecord(t, s, "consent", "c1", withRev(r, 1))

	// expectRev 0 requires absence.
	_, err := s.PutRecord(t.Context(), rec("consent", "c1", "", "clobber"), 0)
	wantErr(t, "PutRecord(expect 0) of a present record", err, store.ErrConflict)
	// A wrong revision conflicts and changes nothing; rec.Rev is ignored.
	bad := rec("consent", "c1", "", "clobber")
	bad.Rev = 1
	_, err = s.PutRecord(t.Context(), bad, 2)
	wantErr(t, "PutRecord(expect 2) at rev 1", err, store.ErrConflict)
	checkRecord(t, s, "consent", "c1", withRev(r, 1))

	// The right revision updates and increments.
	r2 := rec("consent", "c1", "sub_1", "v2")
	r2.Rev = 77
	if rev := put(t, s, r2, 1); rev != 2 {
		t.Errorf("PutRecord(expect 1) = rev %d, want 2", rev)
	}
	checkRecord(t, s, "consent", "c1", withRev(r2, 2))
	_, err = s.PutRecord(t.Context(), r2, 1)
	wantErr(t, "PutRecord with a stale revision", err, store.ErrConflict)

	// AnyRev is unconditional, on present and absent records alike.
	if rev := put(t, s, rec("consent", "c1", "", "v3"), store.AnyRev); rev != 3 {
		t.Errorf("PutRecord(AnyRev) = rev %d, want 3", rev)
	}
	checkRecord(t, s, "consent", "c1", withRev(rec("consent", "c1", "", "v3"), 3))
	if rev := put(t, s, rec("consent", "c2", "", "x"), store.AnyRev); rev != 1 {
		t.Errorf("PutRecord(AnyRev) of an absent record = rev %d, want 1", rev)
	}
	// An update of an absent record conflicts and creates nothing.
	_, err = s.PutRecord(t.Context(), rec("consent", "c3", "", "x"), 1)
	wantErr(t, "PutRecord(expect 1) of an absent record", err, store.ErrConflict)
	checkRecord(t, s, "consent", "c3", nil)

	// Kinds are separate namespaces.
	checkRecord(t, s, "subject", "c1", nil)
	if rev := put(t, s, rec("subject", "c1", "", "s"), 0); rev != 1 {
		t.Errorf("PutRecord in another kind = rev %d, want 1", rev)
	}

	// Delete: absent is not an error, and a deleted record can be created
	// again from revision 1.
	if err := s.DeleteRecord(t.Context(), "consent", "c1"); err != nil {
		t.Fatalf("DeleteRecord: %v", err)
	}
	if err := s.DeleteRecord(t.Context(), "consent", "c1"); err != nil {
		t.Errorf("DeleteRecord of an absent record: %v", err)
	}
	checkRecord(t, s, "consent", "c1", nil)
	checkRecord(t, s, "subject", "c1", withRev(rec("subject", "c1", "", "s"), 1))
	if rev := put(t, s, rec("consent", "c1", "", "again"), 0); rev != 1 {
		t.Errorf("re-creating PutRecord = rev %d, want 1", rev)
	}

	// Empty and large values are kept exactly; the caller's slices are its own.
	big := bytes.Repeat([]byte("0123456789abcdef"), store.MaxValueLen/16)
	put(t, s, store.Record{Kind: "blob", ID: "big", Value: big}, 0)
	put(t, s, store.Record{Kind: "blob", ID: "empty"}, 0)
	checkRecord(t, s, "blob", "big", &store.Record{Kind: "blob", ID: "big", Rev: 1, Value: bytes.Clone(big)})
	checkRecord(t, s, "blob", "empty", &store.Record{Kind: "blob", ID: "empty", Rev: 1})
	big[0] = 'X'
	got, err := s.GetRecord(t.Context(), "blob", "big")
	if err != nil {
		t.Fatal(err)
	}
	if got.Value[0] != '0' {
		t.Errorf("stored value changed with the caller's slice")
	}
	got.Value[1] = 'X'
	if again, _ := s.GetRecord(t.Context(), "blob", "big"); again == nil || again.Value[1] != '1' {
		t.Errorf("stored value changed with a returned slice")
	}
}

func testPutRecordConcurrent(t *testing.T, s store.Store) {
	put(t, s, rec("job", "j", "", "start"), 0)
	const writers = 10
	revs := make([]uint64, writers)
	errs := make([]error, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			<-start
			revs[i], errs[i] = s.PutRecord(bg(), rec("job", "j", "", fmt.Sprint(i)), 1)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i := range writers {
		switch {
		case errs[i] == nil:
			if winner >= 0 {
				t.Fatalf("writers %d and %d both won a compare-and-set from rev 1", winner, i)
			}
			winner = i
			if revs[i] != 2 {
				t.Errorf("winning PutRecord = rev %d, want 2", revs[i])
			}
		case !errors.Is(errs[i], store.ErrConflict):
			t.Errorf("writer %d: %v, want nil or ErrConflict", i, errs[i])
		}
	}
	if winner < 0 {
		t.Fatal("no writer won")
	}
	checkRecord(t, s, "job", "j", withRev(rec("job", "j", "", fmt.Sprint(winner)), 2))

	// Concurrent creations of one id: exactly one creates it.
	var created sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range writers {
		created.Go(func() {
			_, err := s.PutRecord(bg(), rec("job", "new", "", fmt.Sprint(i)), 0)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else if !errors.Is(err, store.ErrConflict) {
				t.Errorf("creator %d: %v", i, err)
			}
		})
	}
	created.Wait()
	if wins != 1 {
		t.Errorf("%d concurrent creations succeeded, want 1", wins)
	}

	// Unconditional writes all succeed, each with its own revision.
	seen := make(map[uint64]bool)
	var anyRev sync.WaitGroup
	for i := range writers {
		anyRev.Go(func() {
			rev, err := s.PutRecord(bg(), rec("job", "any", "", fmt.Sprint(i)), store.AnyRev)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("AnyRev writer %d: %v", i, err)
			} else if seen[rev] {
				t.Errorf("two AnyRev writes both got rev %d", rev)
			}
			seen[rev] = true
		})
	}
	anyRev.Wait()
	if got, err := s.GetRecord(t.Context(), "job", "any"); err != nil || got.Rev != writers {
		t.Errorf("after %d AnyRev writes GetRecord = %s, %v; want rev %d", writers, fmtRecord(got), err, writers)
	}
}

func testGetRecords(t *testing.T, s store.Store) {
	a, b := rec("k", "a", "", "A"), rec("k", "b", "i", "B")
	put(t, s, a, 0)
	put(t, s, b, 0)
	put(t, s, rec("k2", "c", "", "C"), 0)
	got, err := s.GetRecords(t.Context(), "k", []string{"b", "missing", "a", "b", "c"})
	checkList(t, "GetRecords", got, err, withRev(b, 1), nil, withRev(a, 1), withRev(b, 1), nil)
	got, err = s.GetRecords(t.Context(), "k", nil)
	checkList(t, "GetRecords(none)", got, err)
}

func testListRecords(t *testing.T, s store.Store) {
	got, err := s.ListRecords(t.Context(), "k")
	checkList(t, "ListRecords on an empty store", got, err)

	ids := []string{"b", "a", "a\x00", "ab", "\xff", "B", "a\x00b", "0"}
	for _, id := range ids {
		put(t, s, rec("k", id, "", "v-"+id), 0)
	}
	// Kinds that extend or prefix one another are not listed.
	for _, kind := range []string{"k\x00", "kk", "j", "k\x00a"} {
		put(t, s, rec(kind, "a", "", "other kind"), 0)
	}
	put(t, s, rec("k", "b", "", "v-b2"), 1)

	want := []*store.Record{
		withRev(rec("k", "0", "", "v-0"), 1),
		withRev(rec("k", "B", "", "v-B"), 1),
		withRev(rec("k", "a", "", "v-a"), 1),
		withRev(rec("k", "a\x00", "", "v-a\x00"), 1),
		withRev(rec("k", "a\x00b", "", "v-a\x00b"), 1),
		withRev(rec("k", "ab", "", "v-ab"), 1),
		withRev(rec("k", "b", "", "v-b2"), 2),
		withRev(rec("k", "\xff", "", "v-\xff"), 1),
	}
	got, err = s.ListRecords(t.Context(), "k")
	checkList(t, "ListRecords(k)", got, err, want...)

	if err := s.DeleteRecord(t.Context(), "k", "a"); err != nil {
		t.Fatal(err)
	}
	got, err = s.ListRecords(t.Context(), "k")
	checkList(t, "ListRecords(k) after a delete", got, err, append(want[:2:2], want[3:]...)...)
	got, err = s.ListRecords(t.Context(), "k\x00")
	checkList(t, "ListRecords(k\\x00)", got, err, withRev(rec("k\x00", "a", "", "other kind"), 1))
}

func testListByIndex(t *testing.T, s store.Store) {
	put(t, s, rec("consent", "c2", "sub_1", "2"), 0)
	put(t, s, rec("consent", "c1", "sub_1", "1"), 0)
	put(t, s, rec("consent", "c3", "sub_2", "3"), 0)
	put(t, s, rec("consent", "c4", "", "4"), 0)
	put(t, s, rec("consent", "c5", "sub_1\x00", "5"), 0)
	put(t, s, rec("evidence", "e1", "sub_1", "e"), 0)

	list := func(kind, index string) ([]*store.Record, error) {
		return s.ListByIndex(t.Context(), kind, index)
	}
	got, err := list("consent", "sub_1")
	checkList(t, "ListByIndex(consent, sub_1)", got, err,
		withRev(rec("consent", "c1", "sub_1", "1"), 1), withRev(rec("consent", "c2", "sub_1", "2"), 1))
	got, err = list("evidence", "sub_1")
	checkList(t, "ListByIndex(evidence, sub_1)", got, err, withRev(rec("evidence", "e1", "sub_1", "e"), 1))
	got, err = list("consent", "sub_9")
	checkList(t, "ListByIndex(consent, sub_9)", got, err)

	// Changing the index moves the record between lists.
	put(t, s, rec("consent", "c2", "sub_2", "2b"), 1)
	got, err = list("consent", "sub_1")
	checkList(t, "ListByIndex(sub_1) after a move", got, err, withRev(rec("consent", "c1", "sub_1", "1"), 1))
	got, err = list("consent", "sub_2")
	checkList(t, "ListByIndex(sub_2) after a move", got, err,
		withRev(rec("consent", "c2", "sub_2", "2b"), 2), withRev(rec("consent", "c3", "sub_2", "3"), 1))

	// Clearing the index removes it from every list; setting it adds it.
	put(t, s, rec("consent", "c3", "", "3b"), store.AnyRev)
	put(t, s, rec("consent", "c4", "sub_1", "4b"), 1)
	got, err = list("consent", "sub_2")
	checkList(t, "ListByIndex(sub_2) after clearing", got, err, withRev(rec("consent", "c2", "sub_2", "2b"), 2))
	got, err = list("consent", "sub_1")
	checkList(t, "ListByIndex(sub_1) after setting", got, err,
		withRev(rec("consent", "c1", "sub_1", "1"), 1), withRev(rec("consent", "c4", "sub_1", "4b"), 2))

	// A failed compare-and-set moves nothing.
	_, err = s.PutRecord(t.Context(), rec("consent", "c1", "sub_9", "x"), 5)
	wantErr(t, "PutRecord with a wrong revision", err, store.ErrConflict)
	got, err = list("consent", "sub_9")
	checkList(t, "ListByIndex(sub_9) after a failed move", got, err)

	// Deleting removes it.
	if err := s.DeleteRecord(t.Context(), "consent", "c1"); err != nil {
		t.Fatal(err)
	}
	got, err = list("consent", "sub_1")
	checkList(t, "ListByIndex(sub_1) after delete", got, err, withRev(rec("consent", "c4", "sub_1", "4b"), 2))
	got, err = list("consent", "sub_1\x00")
	checkList(t, "ListByIndex(sub_1\\x00)", got, err, withRev(rec("consent", "c5", "sub_1\x00", "5"), 1))
}
