package vault_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/client"
	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/internal/vaulttest"
	"github.com/fieldvault/fieldvault/vault/policy"
)

func boolp(b bool) *bool { return &b }

func tokenize(t *testing.T, c *client.Client, items ...vault.TokenizeItem) []string {
	t.Helper()
	res, err := c.Tokenize(context.Background(), &vault.TokenizeRequest{Items: items})
	if err != nil {
		t.Fatalf("tokenize: %v", err)
	}
	out := make([]string, len(res.Items))
	for i, it := range res.Items {
		if it.Error != nil {
			t.Fatalf("item %d: %s", i, it.Error.Code)
		}
		out[i] = it.Token
	}
	return out
}

// F-4: deterministic tokens are equal for equal normalised inputs and
// differ across categories.
func TestDeterministicTokensF4(t *testing.T) {
	s := vaulttest.New(t, vaulttest.Options{})
	toks := tokenize(t, s.Root,
		vault.TokenizeItem{Category: "contact.phone", Value: "081-234-5678", Subject: "u1"},
		vault.TokenizeItem{Category: "contact.phone", Value: "+66812345678", Subject: "u1"},
		vault.TokenizeItem{Category: "contact.phone", Value: "+66 81 234 5678", Subject: "u1"},
		vault.TokenizeItem{Category: "govid.th_national_id", Value: "1-1037-02071-83-8", Subject: "u1"},
		vault.TokenizeItem{Category: "govid.th_national_id", Value: "1103702071838", Subject: "u1"},
		vault.TokenizeItem{Category: "contact.email", Value: "Somchai@Example.COM", Subject: "u1"},
		vault.TokenizeItem{Category: "contact.email", Value: "Somchai@example.com", Subject: "u1"},
		vault.TokenizeItem{Category: "account.social", Value: "0812345678", Subject: "u1"},
	)
	if toks[0] != toks[1] || toks[1] != toks[2] {
		t.Errorf("equal phones got different tokens: %v", toks[:3])
	}
	if toks[3] != toks[4] {
		t.Errorf("equal national IDs got different tokens")
	}
	if toks[5] != toks[6] {
		t.Errorf("emails equal after lower-casing the domain got different tokens")
	}
	if toks[7] == toks[0] {
		t.Errorf("a social account and a phone with the same digits share a token")
	}
	// A later batch returns the same tokens; random mode gives new ones.
	again := tokenize(t, s.Root, vault.TokenizeItem{Category: "contact.phone", Value: "0812345678", Subject: "u1"})
	if again[0] != toks[0] {
		t.Errorf("deterministic token changed between batches")
	}
	r1 := tokenize(t, s.Root, vault.TokenizeItem{Category: "contact.phone", Value: "0812345678", Subject: "u1", Deterministic: boolp(false)})
	r2 := tokenize(t, s.Root, vault.TokenizeItem{Category: "contact.phone", Value: "0812345678", Subject: "u1", Deterministic: boolp(false)})
	if r1[0] == r2[0] || r1[0] == toks[0] {
		t.Errorf("random phone tokens repeat: %s %s %s", r1[0], r2[0], toks[0])
	}
	// Email tokens end in .invalid (F-3 through the API).
	if !strings.HasSuffix(toks[5], ".invalid") {
		t.Errorf("email token %q does not end in .invalid", toks[5])
	}
}

// A deterministic value bound to one subject is not handed to another.
func TestDeterministicSubjectConflict(t *testing.T) {
	s := vaulttest.New(t, vaulttest.Options{})
	tokenize(t, s.Root, vault.TokenizeItem{Category: "contact.phone", Value: "0812345678", Subject: "u1"})
	_, err := s.Root.Tokenize(context.Background(), &vault.TokenizeRequest{Items: []vault.TokenizeItem{
		{Category: "identity.name", Value: "Somchai", Subject: "u2"},
		{Category: "contact.phone", Value: "0812345678", Subject: "u2"},
	}})
	var e *client.APIError
	if !client.IsCode(err, vault.CodeInvalidItems) && !client.IsCode(err, vault.CodeConflict) {
		t.Fatalf("tokenising u1's deterministic value for u2: %v", err)
	}
	if e = err.(*client.APIError); e.Items[1] == nil || e.Items[1].Code != vault.CodeDeterministicSubjectConflict || e.Items[0] != nil {
		t.Fatalf("items = %+v", e.Items)
	}
	// Random mode is the way to store it for u2.
	tokenize(t, s.Root, vault.TokenizeItem{Category: "contact.phone", Value: "0812345678", Subject: "u2", Deterministic: boolp(false)})
}

// Concurrent deterministic tokenisation of one value yields one token.
func TestDeterministicRace(t *testing.T) {
	s := vaulttest.New(t, vaulttest.Options{})
	const n = 16
	got := make([]string, n)
	var wg sync.WaitGroup
	for round := 0; round < 20; round++ {
		v := "08" + strings.Repeat("1", 7) + string(rune('0'+round%10))
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				res, err := s.Root.Tokenize(context.Background(), &vault.TokenizeRequest{Items: []vault.TokenizeItem{
					{Category: "contact.phone", Value: v, Subject: "racer"}}})
				if err != nil {
					t.Error(err)
					return
				}
				got[i] = res.Items[0].Token
			}(i)
		}
		wg.Wait()
		for i := 1; i < n; i++ {
			if got[i] != got[0] {
				t.Fatalf("round %d: concurrent deterministic tokens differ: %s vs %s", round, got[0], got[i])
			}
		}
	}
}

// PartialSuccess stores the valid items and reports the invalid ones; the
// default rejects the whole batch and stores nothing.
func TestPartialSuccess(t *testing.T) {
	s := vaulttest.New(t, vaulttest.Options{})
	ctx := context.Background()
	items := []vault.TokenizeItem{
		{Category: "contact.phone", Value: "0899999999", Subject: "p1"},
		{Category: "no.such", Value: "x", Subject: "p1"},
	}
	if _, err := s.Root.Tokenize(ctx, &vault.TokenizeRequest{Items: items}); !client.IsCode(err, vault.CodeInvalidItems) {
		t.Fatalf("strict batch: %v", err)
	}
	// Nothing was stored: the phone's fingerprint is unbound, so the
	// partial batch below creates its token (and a later call repeats it).
	res, err := s.Root.Tokenize(ctx, &vault.TokenizeRequest{Items: items, PartialSuccess: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Items[0].Token == "" || res.Items[1].Error == nil || res.Items[1].Error.Code != vault.CodeUnknownCategory {
		t.Fatalf("partial result = %+v", res.Items)
	}
	ps, _ := s.Store.TokenCounts(ctx)
	var total int64
	for _, c := range ps {
		total += c.Count
	}
	if total != 1 {
		t.Fatalf("stored %d rows, want 1 (the strict batch must have stored nothing)", total)
	}
}

// The category and subject come from the token's row, never the caller.
func TestCategoryHintMismatch(t *testing.T) {
	s := vaulttest.New(t, vaulttest.Options{})
	ctx := context.Background()
	if _, err := s.Root.PutSubject(ctx, "u1", &vault.PutSubjectRequest{Type: "data_subject", BirthDate: "1990-01-01"}); err != nil {
		t.Fatal(err)
	}
	toks := tokenize(t, s.Root, vault.TokenizeItem{Category: "demographic.religion", Value: "Buddhist", Subject: "u1"})
	res, err := s.Root.Detokenize(ctx, &vault.DetokenizeRequest{Purpose: "marketing",
		Ground: &policy.Ground{Type: "consent", Ref: "c_x"}, Tokens: toks, CategoryHint: "contact.phone", Reveal: "full"})
	if res == nil || res.Items[0].Denied == nil || res.Items[0].Denied.Code != policy.CodeCategoryMismatch {
		t.Fatalf("category hint mismatch: %+v, %v", res, err)
	}
}

// After a full erasure nothing more is stored for the subject; after a
// category erasure the category can be collected again, and its new tokens
// read while the old ones stay erased.
func TestTokenizeAfterErasure(t *testing.T) {
	s := vaulttest.New(t, vaulttest.Options{})
	ctx := context.Background()
	for _, id := range []string{"gone", "lives"} {
		if _, err := s.Root.PutSubject(ctx, id, &vault.PutSubjectRequest{Type: "data_subject", BirthDate: "1990-01-01"}); err != nil {
			t.Fatal(err)
		}
	}
	tokenize(t, s.Root, vault.TokenizeItem{Category: "health", Value: "asthma", Subject: "gone"})
	if _, err := s.Root.Erase(ctx, "gone", &vault.EraseRequest{Trigger: "s33_request"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Root.Tokenize(ctx, &vault.TokenizeRequest{Items: []vault.TokenizeItem{{Category: "health", Value: "asthma", Subject: "gone"}}})
	if e, ok := err.(*client.APIError); !ok || len(e.Items) != 1 || e.Items[0].Code != vault.CodeSubjectErased {
		t.Fatalf("tokenize for an erased subject: %v", err)
	}

	old := tokenize(t, s.Root, vault.TokenizeItem{Category: "health", Value: "asthma", Subject: "lives"})
	if _, err := s.Root.Erase(ctx, "lives", &vault.EraseRequest{Categories: []string{"health"}, Trigger: "consent_withdrawn"}); err != nil {
		t.Fatal(err)
	}
	fresh := tokenize(t, s.Root, vault.TokenizeItem{Category: "health", Value: "asthma", Subject: "lives"})
	if fresh[0] == old[0] {
		t.Fatal("re-tokenising after a category erasure brought back the old token (F-5)")
	}
	subj, err := s.Root.GetSubject(ctx, "lives")
	if err != nil || len(subj.ErasedCategories) != 0 {
		t.Fatalf("erased categories after re-collection: %v, %v", subj.ErasedCategories, err)
	}
	cv, err := s.Root.GrantConsent(ctx, &vault.GrantConsentRequest{Subject: "lives", Explicit: true,
		GrantedBy:  []consent.Grantor{{Party: consent.PartySubject, ID: "lives", Verified: true}},
		Categories: []string{"health"}, Purposes: []string{"marketing"}, NoticeVersion: "v1", CollectionMethod: "in_app"})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := s.Root.Detokenize(ctx, &vault.DetokenizeRequest{Purpose: "marketing", Reveal: "full",
		Ground: &policy.Ground{Type: "consent", Ref: cv.ID}, Tokens: []string{old[0], fresh[0]}})
	if res == nil || res.Items[0].Denied == nil || res.Items[0].Denied.Code != policy.CodeTokenErased || res.Items[1].Value != "asthma" {
		t.Fatalf("old and new tokens after re-collection: %+v", res)
	}
}

// TestCrowdedPhoneGroup: the 8-digit numbers +66XX5678 share their country
// code and last 4 and have one random digit to draw, so only 10 tokens of
// their own length exist for 90 numbers. Every number still gets a token (a
// wider one once the group is crowded), all distinct, all of the phone
// format, and each reads back as its own number.
func TestCrowdedPhoneGroup(t *testing.T) {
	s := vaulttest.New(t, vaulttest.Options{})
	ctx := context.Background()
	if _, err := s.Root.PutSubject(ctx, "crowd", &vault.PutSubjectRequest{Type: "data_subject", BirthDate: "1990-01-01"}); err != nil {
		t.Fatal(err)
	}
	var items []vault.TokenizeItem
	for i := 10; i < 100; i++ {
		items = append(items, vault.TokenizeItem{Category: "contact.phone", Value: fmt.Sprintf("+66%d5678", i), Subject: "crowd",
			Deterministic: boolp(false)})
	}
	// One batch, then one item per call: both paths meet collisions.
	toks := tokenize(t, s.Root, items[:45]...)
	for _, it := range items[45:] {
		toks = append(toks, tokenize(t, s.Root, it)...)
	}
	seen := map[string]bool{}
	wider := 0
	for i, tok := range toks {
		if seen[tok] {
			t.Fatalf("token %q given twice", tok)
		}
		seen[tok] = true
		if f, err := tokenizer.ParseToken(tok); err != nil || f != tokenizer.FormatPhone ||
			!strings.HasPrefix(tok, "+660") || !strings.HasSuffix(tok, "5678") || len(tok) > 16 {
			t.Fatalf("token %q of %s: not a phone token keeping +66 and 5678", tok, items[i].Value)
		}
		if len(tok) > len(items[i].Value) {
			wider++
		}
	}
	if wider < 80 {
		t.Errorf("%d of 90 tokens wider than their value; with 10 same-length tokens at least 80 must be", wider)
	}
	cv, err := s.Root.GrantConsent(ctx, &vault.GrantConsentRequest{Subject: "crowd", Explicit: true,
		GrantedBy:  []consent.Grantor{{Party: consent.PartySubject, ID: "crowd", Verified: true}},
		Categories: []string{"contact.phone"}, Purposes: []string{"marketing"}, NoticeVersion: "v1", CollectionMethod: "in_app"})
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
			t.Fatalf("token %q read back as %q, want %s (denied: %+v)", toks[i], it.Value, items[i].Value, it.Denied)
		}
	}
}
