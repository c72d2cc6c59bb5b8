package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/fieldvault/fieldvault/vault/store"
)

func testInsertAndGet(t *testing.T, s store.Store) {
	rows := []store.Token{
		row("tok_a", "sub_1", 1, 1, ""),
		row("tok_b", "sub_1", 1, 1, "fp-b"),
		row("tok_c", "sub_2", 2, 7, "fp-c"),
		{Token: "tok_d", Subject: "sub_2", Category: 3, KeyVersion: 1}, // no expiry, no ciphertext
		{Token: "tok_e\x00\xff", Subject: "sub\x00\xff", Category: 0xFFFF, KeyVersion: 0xFFFFFFFF,
			CreatedAt: -1, ExpiresAt: 1 << 62, Fingerprint: []byte{0, 1, 0xFF}, Ciphertext: make([]byte, 4096)},
	}
	mustInsert(t, s, rows...)
	checkPresent(t, s, rows...)

	// Order follows the request, duplicates are answered each time, absent
	// tokens are nil.
	checkTokens(t, s,
		[]string{"tok_c", "missing", "tok_a", "tok_c", "tok_e\x00\xff", "tok_a\x00"},
		[]*store.Token{&rows[2], nil, &rows[0], &rows[2], &rows[4], nil})

	got, err := s.GetTokens(t.Context(), nil)
	if err != nil || len(got) != 0 {
		t.Errorf("GetTokens(nil) = %d entries, %v; want none", len(got), err)
	}
	res, err := s.InsertTokens(t.Context(), nil)
	if err != nil || len(res) != 0 {
		t.Errorf("InsertTokens(nil) = %v, %v; want no results", res, err)
	}

	// The returned rows are the caller's: changing them changes nothing
	// stored.
	got, err = s.GetTokens(t.Context(), []string{"tok_c"})
	if err != nil {
		t.Fatal(err)
	}
	got[0].Ciphertext[0] ^= 0xFF
	got[0].Fingerprint[0] ^= 0xFF
	checkPresent(t, s, rows[2])
	// Nor does changing the rows after inserting them.
	rows[1].Ciphertext[0] ^= 0xFF
	checkTokens(t, s, []string{"tok_b"}, []*store.Token{ptr(row("tok_b", "sub_1", 1, 1, "fp-b"))})
}

func ptr[T any](v T) *T { return &v }

func testTokenExists(t *testing.T, s store.Store) {
	orig := row("tok_1", "sub_1", 1, 1, "fp-1")
	mustInsert(t, s, orig)

	// Same token, other content: rejected, nothing overwritten, and the
	// rejected row's fingerprint is not bound.
	dup := row("tok_1", "sub_2", 2, 2, "fp-2")
	dup.Ciphertext = []byte("other")
	other := row("tok_2", "sub_2", 1, 1, "")
	res, err := s.InsertTokens(t.Context(), []store.Token{dup, other})
	if err != nil {
		t.Fatalf("InsertTokens: %v", err)
	}
	wantErr(t, "insert of an existing token", res[0].Err, store.ErrTokenExists)
	if res[1].Err != nil {
		t.Errorf("row after a rejected one: %v, want stored", res[1].Err)
	}
	checkPresent(t, s, orig, other)
	checkLookup(t, s, 2, "fp-2", "")
	checkSubjectTokens(t, s, "sub_2", "tok_2")
	checkCounts(t, s, map[countKey]int64{{1, 1}: 2})

	// Within one call the first row wins.
	a, b := row("tok_3", "sub_3", 1, 1, ""), row("tok_3", "sub_4", 1, 2, "fp-3")
	res, err = s.InsertTokens(t.Context(), []store.Token{a, b})
	if err != nil {
		t.Fatalf("InsertTokens: %v", err)
	}
	if res[0].Err != nil {
		t.Errorf("first of two rows with one token: %v, want stored", res[0].Err)
	}
	wantErr(t, "second of two rows with one token", res[1].Err, store.ErrTokenExists)
	checkPresent(t, s, a)
	checkLookup(t, s, 1, "fp-3", "")
	checkSubjectTokens(t, s, "sub_4")
	checkCounts(t, s, map[countKey]int64{{1, 1}: 3})
}

func testTokenExistsConcurrent(t *testing.T, s store.Store) {
	const writers = 8
	rows := make([]store.Token, writers)
	results := make([]store.InsertResult, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		rows[i] = row("tok_race", fmt.Sprintf("sub_%d", i), 1, uint32(i+1), "")
		wg.Go(func() {
			var res []store.InsertResult
			res, errs[i] = s.InsertTokens(bg(), rows[i:i+1])
			if errs[i] == nil {
				results[i] = res[0]
			}
		})
	}
	wg.Wait()
	winner := -1
	for i := range writers {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
		switch {
		case results[i].Err == nil:
			if winner >= 0 {
				t.Fatalf("writers %d and %d both stored token %q", winner, i, "tok_race")
			}
			winner = i
		case !errors.Is(results[i].Err, store.ErrTokenExists):
			t.Errorf("writer %d: %v, want nil or ErrTokenExists", i, results[i].Err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer stored the token")
	}
	checkPresent(t, s, rows[winner])
	checkCounts(t, s, map[countKey]int64{{1, rows[winner].KeyVersion}: 1})
	for i := range writers {
		if i != winner {
			checkSubjectTokens(t, s, rows[i].Subject)
		}
	}
}

func testFingerprintBound(t *testing.T, s store.Store) {
	first := row("tok_first", "sub_1", 1, 1, "fp")
	mustInsert(t, s, first)

	second := row("tok_second", "sub_2", 1, 2, "fp")
	res, err := s.InsertTokens(t.Context(), []store.Token{second})
	if err != nil {
		t.Fatalf("InsertTokens: %v", err)
	}
	wantErr(t, "second row with a bound fingerprint", res[0].Err, store.ErrFingerprintBound)
	if res[0].Existing != "tok_first" {
		t.Errorf("Existing = %q, want %q", res[0].Existing, "tok_first")
	}
	// Nothing of the second row was written.
	checkTokens(t, s, []string{"tok_first", "tok_second"}, []*store.Token{&first, nil})
	checkSubjectTokens(t, s, "sub_2")
	checkSubjectTokens(t, s, "sub_1", "tok_first")
	checkCounts(t, s, map[countKey]int64{{1, 1}: 1})
	checkLookup(t, s, 1, "fp", "tok_first")
	checkScan(t, s, 10, first)

	// The loser may retry under a new token with another fingerprint.
	third := row("tok_second", "sub_2", 1, 2, "fp-other")
	mustInsert(t, s, third)
	checkLookup(t, s, 1, "fp-other", "tok_second")
}

func testFingerprintBoundInOneCall(t *testing.T, s store.Store) {
	rows := []store.Token{
		row("tok_1", "sub_1", 1, 1, "fp"),
		row("tok_2", "sub_2", 1, 1, "fp"),
		row("tok_3", "sub_3", 1, 1, "fp-3"),
	}
	res, err := s.InsertTokens(t.Context(), rows)
	if err != nil {
		t.Fatalf("InsertTokens: %v", err)
	}
	if res[0].Err != nil || res[2].Err != nil {
		t.Errorf("results %+v, want rows 0 and 2 stored", res)
	}
	wantErr(t, "second row of a call binding the same fingerprint", res[1].Err, store.ErrFingerprintBound)
	if res[1].Existing != "tok_1" {
		t.Errorf("Existing = %q, want tok_1", res[1].Existing)
	}
	checkTokens(t, s, []string{"tok_1", "tok_2", "tok_3"}, []*store.Token{&rows[0], nil, &rows[2]})
	checkSubjectTokens(t, s, "sub_2")
	checkCounts(t, s, map[countKey]int64{{1, 1}: 2})
}

func testFingerprintConcurrent(t *testing.T, s store.Store) {
	const writers = 16
	rows := make([]store.Token, writers)
	results := make([]store.InsertResult, writers)
	errs := make([]error, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		// Each writer also inserts an unrelated row in the same call, which
		// must be stored whatever happens to the contested one.
		rows[i] = row(fmt.Sprintf("tok_%02d", i), fmt.Sprintf("sub_%02d", i), 5, 1, "contested")
		own := row(fmt.Sprintf("own_%02d", i), "sub_own", 5, 1, "")
		wg.Go(func() {
			<-start
			var res []store.InsertResult
			res, errs[i] = s.InsertTokens(bg(), []store.Token{own, rows[i]})
			if errs[i] == nil {
				if res[0].Err != nil {
					errs[i] = fmt.Errorf("unrelated row: %w", res[0].Err)
				}
				results[i] = res[1]
			}
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i := range writers {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
		if results[i].Err == nil {
			if winner >= 0 {
				t.Fatalf("writers %d and %d both bound the fingerprint", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no writer bound the fingerprint")
	}
	win := rows[winner].Token
	var losers []string
	for i := range writers {
		if i == winner {
			continue
		}
		losers = append(losers, rows[i].Token)
		wantErr(t, fmt.Sprintf("writer %d", i), results[i].Err, store.ErrFingerprintBound)
		if results[i].Existing != win {
			t.Errorf("writer %d: Existing = %q, want the winner %q", i, results[i].Existing, win)
		}
		checkSubjectTokens(t, s, rows[i].Subject)
	}
	checkAbsent(t, s, losers...)
	checkPresent(t, s, rows[winner])
	checkLookup(t, s, 5, "contested", win)
	checkCounts(t, s, map[countKey]int64{{5, 1}: writers + 1})
}

func testFingerprintPerCategory(t *testing.T, s store.Store) {
	a := row("tok_a", "sub", 1, 1, "same")
	b := row("tok_b", "sub", 2, 1, "same")
	mustInsert(t, s, a)
	mustInsert(t, s, b)
	checkLookup(t, s, 1, "same", "tok_a")
	checkLookup(t, s, 2, "same", "tok_b")
	checkLookup(t, s, 3, "same", "")
	// Fingerprints that extend one another are different fingerprints.
	c := row("tok_c", "sub", 1, 1, "same\x00")
	mustInsert(t, s, c)
	checkLookup(t, s, 1, "same\x00", "tok_c")
	checkLookup(t, s, 1, "sam", "")
	// Deleting one category's binding leaves the other.
	if n, err := s.DeleteTokens(t.Context(), []string{"tok_a"}); err != nil || n != 1 {
		t.Fatalf("DeleteTokens = %d, %v", n, err)
	}
	checkLookup(t, s, 1, "same", "")
	checkLookup(t, s, 2, "same", "tok_b")
}

func testLookupFingerprints(t *testing.T, s store.Store) {
	mustInsert(t, s,
		row("tok_1", "sub", 1, 1, "fp-1"),
		row("tok_2", "sub", 1, 1, "fp-2"),
		row("tok_3", "sub", 1, 1, ""),
	)
	got := lookup(t, s, 1, "fp-2", "nope", "fp-1", "fp-2", "")
	want := []string{"tok_2", "", "tok_1", "tok_2", ""}
	if !slices.Equal(got, want) {
		t.Errorf("LookupFingerprints = %q, want %q", got, want)
	}
	if got := lookup(t, s, 1); len(got) != 0 {
		t.Errorf("LookupFingerprints(none) = %q", got)
	}
	// Random tokens bind nothing: their token string is not a fingerprint.
	checkLookup(t, s, 1, "tok_3", "")
}

func testUpdateTokenKeys(t *testing.T, s store.Store) {
	a := row("tok_a", "sub", 1, 1, "fp-a")
	b := row("tok_b", "sub", 1, 1, "")
	c := row("tok_c", "sub", 2, 3, "")
	mustInsert(t, s, a, b, c)

	errs, err := s.UpdateTokenKeys(t.Context(), []store.KeyUpdate{
		{Token: "tok_a", OldVersion: 1, NewVersion: 2, Ciphertext: []byte("rewrapped a")},
		{Token: "tok_missing", OldVersion: 1, NewVersion: 2, Ciphertext: []byte("x")},
		{Token: "tok_c", OldVersion: 2, NewVersion: 4, Ciphertext: []byte("x")}, // c is on 3
	})
	if err != nil {
		t.Fatalf("UpdateTokenKeys: %v", err)
	}
	if len(errs) != 3 {
		t.Fatalf("UpdateTokenKeys returned %d results for 3 updates", len(errs))
	}
	if errs[0] != nil {
		t.Errorf("matching update: %v, want nil", errs[0])
	}
	wantErr(t, "update of an absent token", errs[1], store.ErrNotFound)
	wantErr(t, "update from a moved version", errs[2], store.ErrConflict)

	// Only version and ciphertext change.
	a2 := a
	a2.KeyVersion, a2.Ciphertext = 2, []byte("rewrapped a")
	checkPresent(t, s, a2, b, c)
	checkAbsent(t, s, "tok_missing")
	checkLookup(t, s, 1, "fp-a", "tok_a")
	checkCounts(t, s, map[countKey]int64{{1, 1}: 1, {1, 2}: 1, {2, 3}: 1})

	// Replaying the same update now conflicts and changes nothing.
	errs, err = s.UpdateTokenKeys(t.Context(), []store.KeyUpdate{
		{Token: "tok_a", OldVersion: 1, NewVersion: 2, Ciphertext: []byte("again")},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "replayed update", errs[0], store.ErrConflict)
	checkPresent(t, s, a2)

	// Moving the last row off a version drops that count.
	errs, err = s.UpdateTokenKeys(t.Context(), []store.KeyUpdate{
		{Token: "tok_b", OldVersion: 1, NewVersion: 2, Ciphertext: []byte("rewrapped b")},
		{Token: "tok_c", OldVersion: 3, NewVersion: 3, Ciphertext: []byte("same version")},
	})
	if err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("UpdateTokenKeys = %v, %v", errs, err)
	}
	checkCounts(t, s, map[countKey]int64{{1, 2}: 2, {2, 3}: 1})
	c.Ciphertext = []byte("same version")
	checkPresent(t, s, c)

	if errs, err := s.UpdateTokenKeys(t.Context(), nil); err != nil || len(errs) != 0 {
		t.Errorf("UpdateTokenKeys(nil) = %v, %v", errs, err)
	}

	// Expect: the row as read. A current one saves the read; a stale one
	// (b has moved to 2 since) or one of an absent token is still decided
	// on the stored row.
	b1 := row("tok_b", "sub", 1, 1, "")
	c3 := c
	errs, err = s.UpdateTokenKeys(t.Context(), []store.KeyUpdate{
		{Token: "tok_c", OldVersion: 3, NewVersion: 5, Ciphertext: []byte("c on 5"), Expect: &c3},
		{Token: "tok_b", OldVersion: 1, NewVersion: 6, Ciphertext: []byte("stale"), Expect: &b1},
		{Token: "tok_missing", OldVersion: 1, NewVersion: 6, Ciphertext: []byte("x"), Expect: &b1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil {
		t.Errorf("update with the current row as Expect: %v", errs[0])
	}
	wantErr(t, "update with a stale Expect", errs[1], store.ErrConflict)
	wantErr(t, "update of an absent token with an Expect", errs[2], store.ErrNotFound)
	c.KeyVersion, c.Ciphertext = 5, []byte("c on 5")
	b2 := b
	b2.KeyVersion, b2.Ciphertext = 2, []byte("rewrapped b")
	checkPresent(t, s, c, b2)
	checkAbsent(t, s, "tok_missing")
	checkCounts(t, s, map[countKey]int64{{1, 2}: 2, {2, 5}: 1})

	// An Expect on the right version but of another row (the token was
	// deleted and issued again, to another subject): refused, not written
	// over the new row.
	other := b2
	other.Subject, other.Ciphertext = "someone else", []byte("their value")
	errs, err = s.UpdateTokenKeys(t.Context(), []store.KeyUpdate{
		{Token: "tok_b", OldVersion: 2, NewVersion: 7, Ciphertext: []byte("re-encrypted from another row"), Expect: &other},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "update whose Expect is another row on the same version", errs[0], store.ErrConflict)
	checkPresent(t, s, b2)
	checkCounts(t, s, map[countKey]int64{{1, 2}: 2, {2, 5}: 1})
}

// testUpdateTokenKeysConcurrent: several callers move the same rows from
// version 1 to 2 at once, each with its own ciphertext. Each row moves
// exactly once (one caller wins, the others get ErrConflict), the row holds
// the winner's ciphertext, and the counts are exact. Many rows per call
// share buckets or batches, so both a store's grouped reads and its
// compare-and-set retries are exercised.
func testUpdateTokenKeysConcurrent(t *testing.T, s store.Store) {
	const n, callers = 400, 4
	rows := make([]store.Token, n)
	for i := range rows {
		rows[i] = row(fmt.Sprintf("tok_uc%03d", i), "sub", 1, 1, "")
	}
	mustInsert(t, s, rows...)
	errs := make([][]error, callers)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			ups := make([]store.KeyUpdate, n)
			for i := range ups {
				// Callers start at different rows, so they meet mid-batch.
				r := &rows[(i+c*n/callers)%n]
				ups[i] = store.KeyUpdate{Token: r.Token, OldVersion: 1, NewVersion: 2, Ciphertext: fmt.Appendf(nil, "by %d", c)}
				if c%2 == 1 {
					ups[i].Expect = r // as read before the race: stale for all but the winner
				}
			}
			res, err := s.UpdateTokenKeys(t.Context(), ups)
			if err != nil {
				t.Errorf("caller %d: %v", c, err)
				return
			}
			errs[c] = make([]error, n)
			for i, e := range res {
				errs[c][(i+c*n/callers)%n] = e
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	toks := make([]string, n)
	for i := range rows {
		toks[i] = rows[i].Token
	}
	got, err := s.GetTokens(t.Context(), toks)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		winner := -1
		for c := range callers {
			switch e := errs[c][i]; {
			case e == nil && winner >= 0:
				t.Fatalf("%s moved by callers %d and %d", rows[i].Token, winner, c)
			case e == nil:
				winner = c
			default:
				wantErr(t, fmt.Sprintf("losing update of %s", rows[i].Token), e, store.ErrConflict)
			}
		}
		if winner < 0 {
			t.Fatalf("%s moved by nobody", rows[i].Token)
		}
		if g := got[i]; g == nil || g.KeyVersion != 2 || string(g.Ciphertext) != fmt.Sprintf("by %d", winner) {
			t.Fatalf("%s after the race: %+v, want version 2 and caller %d's ciphertext", rows[i].Token, g, winner)
		}
	}
	checkCounts(t, s, map[countKey]int64{{1, 2}: n})
}

func testDeleteTokens(t *testing.T, s store.Store) {
	a := row("tok_a", "sub_1", 1, 1, "fp-a")
	b := row("tok_b", "sub_1", 1, 1, "")
	c := row("tok_c", "sub_2", 2, 1, "fp-c")
	mustInsert(t, s, a, b, c)

	n, err := s.DeleteTokens(t.Context(), []string{"tok_a", "tok_missing", "tok_c", "tok_a"})
	if err != nil {
		t.Fatalf("DeleteTokens: %v", err)
	}
	if n != 2 {
		t.Errorf("DeleteTokens removed %d rows, want 2", n)
	}
	checkTokens(t, s, []string{"tok_a", "tok_b", "tok_c"}, []*store.Token{nil, &b, nil})
	checkLookup(t, s, 1, "fp-a", "")
	checkLookup(t, s, 2, "fp-c", "")
	checkSubjectTokens(t, s, "sub_1", "tok_b")
	checkSubjectTokens(t, s, "sub_2")
	checkCounts(t, s, map[countKey]int64{{1, 1}: 1})
	checkScan(t, s, 2, b)

	// Deleting again removes nothing.
	if n, err := s.DeleteTokens(t.Context(), []string{"tok_a", "tok_c"}); err != nil || n != 0 {
		t.Errorf("second DeleteTokens = %d, %v; want 0, nil", n, err)
	}
	if n, err := s.DeleteTokens(t.Context(), nil); err != nil || n != 0 {
		t.Errorf("DeleteTokens(nil) = %d, %v; want 0, nil", n, err)
	}
	// The freed fingerprint and token can be bound again.
	a2 := row("tok_a", "sub_3", 1, 4, "fp-c")
	a2.Category = 2
	mustInsert(t, s, a2)
	checkLookup(t, s, 2, "fp-c", "tok_a")
	checkCounts(t, s, map[countKey]int64{{1, 1}: 1, {2, 4}: 1})
}

func testSubjectTokens(t *testing.T, s store.Store) {
	mustInsert(t, s,
		row("tok_1", "a", 1, 1, ""),
		row("tok_2", "a", 2, 1, "fp"),
		row("tok_3", "a\x00b", 1, 1, ""),
		row("tok_4", "ab", 1, 1, ""),
		row("tok_5", "", 1, 1, ""),
	)
	checkSubjectTokens(t, s, "a", "tok_1", "tok_2")
	checkSubjectTokens(t, s, "a\x00b", "tok_3")
	checkSubjectTokens(t, s, "ab", "tok_4")
	checkSubjectTokens(t, s, "", "tok_5")
	checkSubjectTokens(t, s, "b")
	checkSubjectTokens(t, s, "a\x00")
}

func testScanTokens(t *testing.T, s store.Store) {
	rows, next, err := s.ScanTokens(t.Context(), "", 10)
	if err != nil || len(rows) != 0 || next != "" {
		t.Fatalf("ScanTokens on an empty store = %d rows, %q, %v", len(rows), next, err)
	}

	var all []store.Token
	for i := range 57 {
		fp := ""
		if i%3 == 0 {
			fp = fmt.Sprintf("fp-%d", i)
		}
		all = append(all, row(fmt.Sprintf("tok_%03d", i), fmt.Sprintf("sub_%d", i%5), uint16(1+i%2), 1, fp))
	}
	// Tokens that sort next to each other and around separators.
	all = append(all, row("t", "s", 1, 1, ""), row("t\x00", "s", 1, 1, ""), row("t\xff", "s", 1, 1, ""))
	for i := 0; i < len(all); i += 20 {
		mustInsert(t, s, all[i:min(i+20, len(all))]...)
	}
	for _, limit := range []int{1, 2, 7, 59, 60, 61, 1000} {
		checkScan(t, s, limit, all...)
	}

	// A cursor can be kept and used again, by a new walk: the rest of the
	// rows come back, and the two parts are disjoint.
	first, cursor, err := s.ScanTokens(t.Context(), "", 25)
	if err != nil || len(first) != 25 || cursor == "" {
		t.Fatalf("ScanTokens(\"\", 25) = %d rows, %q, %v", len(first), cursor, err)
	}
	for range 2 {
		seen := make(map[string]bool)
		for _, r := range first {
			seen[r.Token] = true
		}
		c := cursor
		for c != "" {
			var page []store.Token
			page, c, err = s.ScanTokens(t.Context(), c, 4)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				if seen[r.Token] {
					t.Fatalf("resumed walk returned %q again", r.Token)
				}
				seen[r.Token] = true
			}
		}
		if len(seen) != len(all) {
			t.Errorf("first page plus resumed walk saw %d rows, want %d", len(seen), len(all))
		}
	}

	// Rows deleted after the cursor are not returned; the rest still are.
	var rest []store.Token
	firstSet := make(map[string]bool)
	for _, r := range first {
		firstSet[r.Token] = true
	}
	var del []string
	for _, r := range all {
		if firstSet[r.Token] {
			continue
		}
		if len(del) < 10 {
			del = append(del, r.Token)
		} else {
			rest = append(rest, r)
		}
	}
	if _, err := s.DeleteTokens(t.Context(), del); err != nil {
		t.Fatal(err)
	}
	got := make(map[string]bool)
	for c := cursor; c != ""; {
		var page []store.Token
		page, c, err = s.ScanTokens(t.Context(), c, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			got[r.Token] = true
		}
	}
	for _, tok := range del {
		if got[tok] {
			t.Errorf("walk returned deleted token %q", tok)
		}
	}
	for _, r := range rest {
		if !got[r.Token] {
			t.Errorf("walk missed %q after other rows were deleted", r.Token)
		}
	}
}

func testTokenCounts(t *testing.T, s store.Store) {
	checkCounts(t, s, map[countKey]int64{})
	want := map[countKey]int64{}
	var rows []store.Token
	for i := range 40 {
		r := row(fmt.Sprintf("tok_%d", i), "sub", uint16(1+i%3), uint32(1+i%2), "")
		if i%4 == 0 {
			r.Fingerprint = []byte(fmt.Sprintf("fp-%d", i%8)) // every second one collides
		}
		rows = append(rows, r)
	}
	res, err := s.InsertTokens(t.Context(), rows)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err == nil {
			want[countKey{rows[i].Category, rows[i].KeyVersion}]++
		}
	}
	// Some rejected: same token again, and bound fingerprints.
	res, err = s.InsertTokens(t.Context(), []store.Token{rows[0], row("tok_new", "sub", 1, 1, "fp-0")})
	if err != nil || res[0].Err == nil || res[1].Err == nil {
		t.Fatalf("InsertTokens = %+v, %v; want both rejected", res, err)
	}
	checkCounts(t, s, want)

	var updates []store.KeyUpdate
	for i, r := range rows {
		if i%5 == 0 {
			updates = append(updates, store.KeyUpdate{Token: r.Token, OldVersion: r.KeyVersion, NewVersion: 9})
		}
	}
	errs, err := s.UpdateTokenKeys(t.Context(), updates)
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range updates {
		if errs[i] == nil {
			r := rows[slices.IndexFunc(rows, func(r store.Token) bool { return r.Token == u.Token })]
			want[countKey{r.Category, r.KeyVersion}]--
			want[countKey{r.Category, 9}]++
		}
	}
	checkCounts(t, s, want)

	got, err := s.GetTokens(t.Context(), []string{"tok_1", "tok_2", "tok_3", "tok_5", "tok_10"})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteTokens(t.Context(), []string{"tok_1", "tok_2", "tok_3", "tok_5", "tok_10"}); err != nil || n != 5 {
		t.Fatalf("DeleteTokens = %d, %v", n, err)
	}
	for _, r := range got {
		want[countKey{r.Category, r.KeyVersion}]--
	}
	checkCounts(t, s, want)

	// The counts agree with a full walk.
	walked := map[countKey]int64{}
	for _, r := range scanAll(t, s, 7) {
		walked[countKey{r.Category, r.KeyVersion}]++
	}
	checkCounts(t, s, walked)
}
