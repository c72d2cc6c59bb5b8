package pebble

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/vault/store"
)

func TestKeyFilterNoFalseNegatives(t *testing.T) {
	f := newKeyFilter(0)
	f.ready.Store(true)
	const n = 3 * minFilterKeys // forces two growths
	for i := 0; i < n; i++ {
		f.add([]byte(fmt.Sprintf("ttok_%09d", i)))
	}
	if sets := *f.sets.Load(); len(sets) < 2 {
		t.Fatalf("the filter did not grow: %d sets for %d keys", len(sets), n)
	}
	for i := 0; i < n; i++ {
		if !f.mayContain([]byte(fmt.Sprintf("ttok_%09d", i))) {
			t.Fatalf("false negative for key %d", i)
		}
	}
	fp := 0
	const probes = 200000
	for i := 0; i < probes; i++ {
		if f.mayContain([]byte(fmt.Sprintf("tabsent_%09d", i))) {
			fp++
		}
	}
	// 10 bits per key and 7 probes: about 1% per set, at most a few
	// percent over the sets together.
	if rate := float64(fp) / probes; rate > 0.05 {
		t.Fatalf("false-positive rate %.3f", rate)
	}
	t.Logf("false-positive rate %.4f over %d sets", float64(fp)/probes, len(*f.sets.Load()))
}

func TestKeyFilterNotReadyAnswersMaybe(t *testing.T) {
	f := newKeyFilter(0)
	if !f.mayContain([]byte("tanything")) {
		t.Fatal("a filter that is not built ruled a key out")
	}
}

// After a reopen the filter is rebuilt from the stored keys: collisions
// with tokens and fingerprints written before the reopen are still caught.
func TestFilterRebuiltAfterReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var rows []store.Token
	for i := 0; i < 5000; i++ {
		rows = append(rows, store.Token{Token: fmt.Sprintf("tok_nm_%022d", i), Subject: "s", Category: 1,
			KeyVersion: 1, CreatedAt: 1, Ciphertext: []byte{1, 2, 3}, Fingerprint: []byte(fmt.Sprintf("fp%06d", i))})
	}
	if _, err := s.InsertTokens(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(30 * time.Second)
	for !s.main.filter.ready.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the filter was not built")
		}
		time.Sleep(5 * time.Millisecond)
	}
	res, err := s.InsertTokens(ctx, []store.Token{
		{Token: rows[4321].Token, Subject: "x", Category: 1, KeyVersion: 1, CreatedAt: 1, Ciphertext: []byte{9}},
		{Token: "tok_nm_new", Subject: "x", Category: 1, KeyVersion: 1, CreatedAt: 1, Ciphertext: []byte{9},
			Fingerprint: rows[17].Fingerprint},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Err, store.ErrTokenExists) {
		t.Errorf("a token stored before the reopen was not detected: %v", res[0].Err)
	}
	if !errors.Is(res[1].Err, store.ErrFingerprintBound) || res[1].Existing != rows[17].Token {
		t.Errorf("a fingerprint bound before the reopen was not detected: %+v", res[1])
	}
	got, _ := s.GetTokens(ctx, []string{rows[4321].Token})
	if got[0] == nil || got[0].Subject != "s" {
		t.Errorf("the stored row was overwritten: %+v", got[0])
	}
}
