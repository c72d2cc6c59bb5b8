package vault_test

import (
	"context"
	"strings"
	"testing"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/client"
	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/internal/vaulttest"
	"github.com/fieldvault/fieldvault/vault/policy"
)

// When the audit record cannot be committed, detokenise releases nothing:
// the call fails with 503 AUDIT_UNAVAILABLE and the body holds no value.
func TestAuditFailureReleasesNothing(t *testing.T) {
	s := vaulttest.New(t, vaulttest.Options{})
	ctx := context.Background()
	if _, err := s.Root.PutSubject(ctx, "af1", &vault.PutSubjectRequest{Type: "data_subject", BirthDate: "1990-01-01"}); err != nil {
		t.Fatal(err)
	}
	toks := tokenize(t, s.Root, vault.TokenizeItem{Category: "contact.phone", Value: "0812345678", Subject: "af1"})
	cv, err := s.Root.GrantConsent(ctx, &vault.GrantConsentRequest{Subject: "af1",
		GrantedBy:  []consent.Grantor{{Party: consent.PartySubject, ID: "af1", Verified: true}},
		Categories: []string{"contact.phone"}, Purposes: []string{"marketing"}, NoticeVersion: "v1", CollectionMethod: "in_app"})
	if err != nil {
		t.Fatal(err)
	}
	req := &vault.DetokenizeRequest{Purpose: "marketing", Reveal: "full",
		Ground: &policy.Ground{Type: "consent", Ref: cv.ID}, Tokens: toks}
	// Control: with the audit log up, the value is released.
	res, err := s.Root.Detokenize(ctx, req)
	if err != nil || res.Items[0].Value != "+66812345678" {
		t.Fatalf("control: %+v, %v", res, err)
	}
	// The audit log goes away.
	if err := s.Audit.Close(); err != nil {
		t.Fatal(err)
	}
	res, err = s.Root.Detokenize(ctx, req)
	if !client.IsCode(err, vault.CodeAuditUnavailable) {
		t.Fatalf("detokenise without audit: %+v, %v; want %s", res, err, vault.CodeAuditUnavailable)
	}
	if res != nil && len(res.Items) > 0 {
		t.Fatalf("items returned without an audit record: %+v", res.Items)
	}
	if e := err.(*client.APIError); e.Status != 503 || strings.Contains(e.Message, "812345678") {
		t.Fatalf("error %d %q", e.Status, e.Message)
	}
	// The raw response body carries no value either.
	body := rawPost(t, s, "/v1/detokenize", `{"purpose":"marketing","reveal":"full","ground":{"type":"consent","ref":"`+cv.ID+`"},"tokens":["`+toks[0]+`"]}`)
	if strings.Contains(body, "812345678") || !strings.Contains(body, vault.CodeAuditUnavailable) {
		t.Fatalf("body without audit: %s", body)
	}
}
