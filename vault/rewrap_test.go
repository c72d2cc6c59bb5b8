package vault_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/internal/vaulttest"
	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/store"
)

// faultyStore makes chosen calls of ScanTokens and UpdateTokenKeys fail
// (numbered from 1), as a store outage would, before they reach the real
// store underneath; it records the cursor of every scan.
type faultyStore struct {
	store.Store
	mu                   sync.Mutex
	scans, updates       int
	failScan, failUpdate map[int]bool
	cursors              []string
}

func (f *faultyStore) ScanTokens(ctx context.Context, cursor string, limit int) ([]store.Token, string, error) {
	f.mu.Lock()
	f.scans++
	fail := f.failScan[f.scans]
	f.cursors = append(f.cursors, cursor)
	f.mu.Unlock()
	if fail {
		return nil, "", fmt.Errorf("%w: injected scan failure", store.ErrUnavailable)
	}
	return f.Store.ScanTokens(ctx, cursor, limit)
}

func (f *faultyStore) UpdateTokenKeys(ctx context.Context, updates []store.KeyUpdate) ([]error, error) {
	f.mu.Lock()
	f.updates++
	fail := f.failUpdate[f.updates]
	f.mu.Unlock()
	if fail {
		return nil, fmt.Errorf("%w: injected update failure", store.ErrUnavailable)
	}
	return f.Store.UpdateTokenKeys(ctx, updates)
}

// TestRewrapSurvivesStoreFailures: a rewrap of 10,000 tokens (three steps)
// whose second scan fails while the first step is being written, and whose
// second write fails while the third step is being scanned, retries from
// the saved cursor and ends with every token moved exactly once, counted
// exactly, and readable.
func TestRewrapSurvivesStoreFailures(t *testing.T) {
	fs := &faultyStore{failScan: map[int]bool{2: true}, failUpdate: map[int]bool{2: true}}
	s := vaulttest.New(t, vaulttest.Options{WrapStore: func(st store.Store) store.Store { fs.Store = st; return fs }})
	ctx := context.Background()
	if _, err := s.Root.PutSubject(ctx, "rw", &vault.PutSubjectRequest{Type: "data_subject", BirthDate: "1990-01-01"}); err != nil {
		t.Fatal(err)
	}
	const n = 10000
	var items []vault.TokenizeItem
	for i := range n {
		items = append(items, vault.TokenizeItem{Category: "identity.name", Subject: "rw", Value: fmt.Sprintf("Name %05d", i)})
	}
	toks := tokenize(t, s.Root, items...)
	if _, err := s.Root.RotateKeys(ctx, "identity.name"); err != nil {
		t.Fatal(err)
	}
	fs.mu.Lock()
	fs.scans, fs.updates, fs.cursors = 0, 0, nil
	fs.mu.Unlock()
	job, err := s.Root.Rewrap(ctx, &vault.RewrapRequest{Category: "identity.name"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		j, err := s.Root.GetJob(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == vault.JobDone {
			if j.Moved != n || j.Scanned != n || j.Skipped != 0 {
				t.Fatalf("job done with %d moved, %d scanned, %d skipped; want %d, %d, 0", j.Moved, j.Scanned, j.Skipped, n, n)
			}
			break
		}
		if j.State != vault.JobRunning || time.Now().After(deadline) {
			t.Fatalf("job did not finish: %+v", j)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fs.mu.Lock()
	cursors := fs.cursors
	fs.mu.Unlock()
	// The retry after the failed second scan starts where the first step
	// ended: the cursor the failed scan was given.
	if len(cursors) < 3 || cursors[0] != "" || cursors[1] == "" || cursors[2] != cursors[1] {
		t.Fatalf("scan cursors %q: the retry did not resume from the first step's cursor", cursors)
	}
	kv, err := s.Root.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range kv.Categories {
		if c.Category != "identity.name" {
			continue
		}
		for _, v := range c.Versions {
			if want := map[uint32]int64{1: 0, 2: n}[v.Version]; v.Tokens != want {
				t.Fatalf("version %d protects %d tokens, want %d", v.Version, v.Tokens, want)
			}
		}
	}
	cv, err := s.Root.GrantConsent(ctx, &vault.GrantConsentRequest{Subject: "rw",
		GrantedBy:  []consent.Grantor{{Party: consent.PartySubject, ID: "rw", Verified: true}},
		Categories: []string{"identity.name"}, Purposes: []string{"marketing"}, NoticeVersion: "v1", CollectionMethod: "in_app"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Root.Detokenize(ctx, &vault.DetokenizeRequest{Purpose: "marketing", Reveal: "full",
		Ground: &policy.Ground{Type: "consent", Ref: cv.ID}, Tokens: toks})
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range res.Items {
		if it.Value != items[i].Value {
			t.Fatalf("token %d reads %q after the rewrap, want %q (denied: %+v)", i, it.Value, items[i].Value, it.Denied)
		}
	}
}
