package vault_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/internal/vaulttest"
	"github.com/fieldvault/fieldvault/vault/policy"
)

// TestLargestDetokenizeIsAudited: a detokenise of MaxBatchLimit tokens is
// one decision whose audit record fits the audit log, so it is answered
// (it used to fail with AUDIT_UNAVAILABLE above about 5,000 tokens); a
// larger limit is refused when the vault is built.
func TestLargestDetokenizeIsAudited(t *testing.T) {
	s := vaulttest.New(t, vaulttest.Options{MaxBatch: vault.MaxBatchLimit})
	ctx := context.Background()
	if _, err := vault.New(vault.Config{Store: s.Store, Keys: s.Keys, Audit: s.Audit,
		Limits: vault.Limits{MaxBatch: vault.MaxBatchLimit + 1}}); err == nil {
		t.Fatalf("vault.New accepted a max batch of %d", vault.MaxBatchLimit+1)
	}
	if _, err := s.Root.PutSubject(ctx, "big", &vault.PutSubjectRequest{Type: "data_subject", BirthDate: "1990-01-01"}); err != nil {
		t.Fatal(err)
	}
	items := make([]vault.TokenizeItem, vault.MaxBatchLimit)
	for i := range items {
		items[i] = vault.TokenizeItem{Category: "contact.email", Subject: "big", Value: fmt.Sprintf("person.%05d@example.com", i)}
	}
	toks := tokenize(t, s.Root, items...)
	cv, err := s.Root.GrantConsent(ctx, &vault.GrantConsentRequest{Subject: "big",
		GrantedBy:  []consent.Grantor{{Party: consent.PartySubject, ID: "big", Verified: true}},
		Categories: []string{"contact.email"}, Purposes: []string{"marketing"}, NoticeVersion: "v1", CollectionMethod: "in_app"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Root.Detokenize(ctx, &vault.DetokenizeRequest{Purpose: "marketing", Reveal: "full",
		Ground: &policy.Ground{Type: "consent", Ref: cv.ID}, Tokens: toks})
	if err != nil {
		t.Fatalf("detokenise of %d tokens: %v", len(toks), err)
	}
	for i, it := range res.Items {
		if it.Value != items[i].Value {
			t.Fatalf("token %d: %q, want %q", i, it.Value, items[i].Value)
		}
	}
	rep, err := s.Root.AccessReport(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	released := 0
	for _, e := range rep.Entries {
		released += e.Allowed
	}
	if released != vault.MaxBatchLimit {
		t.Fatalf("the access report shows %d fields released, want %d", released, vault.MaxBatchLimit)
	}
}
