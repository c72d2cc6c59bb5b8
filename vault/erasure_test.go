package vault_test

// Erasure by crypto-shredding (pdpa-model §2.6), through the HTTP API, and
// proven on the raw store: after POST /v1/subjects/{id}/erase no plaintext
// and no key material of the subject can be found or recovered, even with
// the KEK and every key left in the store.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/keys"
	"github.com/fieldvault/fieldvault/keys/kek"
	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/audit"
	"github.com/fieldvault/fieldvault/vault/client"
	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/internal/vaulttest"
	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/store"
	"github.com/fieldvault/fieldvault/vault/store/pebble"
	"github.com/fieldvault/fieldvault/vault/subject"
)

var ict = time.FixedZone("ICT", 7*3600)

func at(y int, m time.Month, d, hh, mm, ss int) time.Time {
	return time.Date(y, m, d, hh, mm, ss, 0, ict)
}

func tp(t time.Time) *time.Time { return &t }

var modelClock = at(2025, 6, 1, 10, 0, 0)

// thaiID completes 12 digits with the Thai national ID check digit.
func thaiID(d12 string) string {
	s := 0
	for i := 0; i < 12; i++ {
		s += int(d12[i]-'0') * (13 - i)
	}
	return d12 + strconv.Itoa((11-s%11)%10)
}

// result carries a call's value and error: try(f()).must(t).
type result[T any] struct {
	v   T
	err error
}

func try[T any](v T, err error) result[T] { return result[T]{v, err} }

func (r result[T]) must(t testing.TB) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

func normalised(t testing.TB, cat, value string) string {
	t.Helper()
	c, ok := tokenizer.Lookup(cat)
	if !ok {
		t.Fatalf("unknown category %s", cat)
	}
	n, err := c.Normalize(value)
	if err != nil {
		t.Fatalf("normalise %s: %v", cat, err)
	}
	return n
}

// field is one value tokenised for a subject.
type field struct {
	cat, value string
	norm, tok  string
}

func tokenizeFields(t testing.TB, c *client.Client, subj string, fields []field) {
	t.Helper()
	req := &vault.TokenizeRequest{}
	for _, f := range fields {
		req.Items = append(req.Items, vault.TokenizeItem{Category: f.cat, Value: f.value, Subject: subj})
	}
	res := try(c.Tokenize(context.Background(), req)).must(t)
	for i := range fields {
		if res.Items[i].Error != nil {
			t.Fatalf("tokenize %s: %+v", fields[i].cat, res.Items[i].Error)
		}
		fields[i].tok = res.Items[i].Token
		fields[i].norm = normalised(t, fields[i].cat, fields[i].value)
	}
}

func tokensOf(fields []field) []string {
	var out []string
	for _, f := range fields {
		out = append(out, f.tok)
	}
	return out
}

// dsr registers a verified data-subject request of subj by subj.
func dsr(t testing.TB, dpo *client.Client, subj string) string {
	t.Helper()
	ctx := context.Background()
	e := try(dpo.CreateEvidence(ctx, &vault.CreateEvidenceRequest{Kind: policy.KindDSR, Subjects: []string{subj},
		Attributes: map[string]string{policy.AttrRequester: subj}})).must(t)
	try(dpo.ApproveEvidence(ctx, e.ID)).must(t)
	return e.ID
}

func dsrRequest(ref, subj string, toks []string) *vault.DetokenizeRequest {
	return &vault.DetokenizeRequest{Purpose: policy.PurposeDataSubjectRequest,
		Ground: &policy.Ground{Type: policy.GroundDataSubjectRequest, Ref: ref}, OnBehalfOf: subj,
		Reveal: policy.RevealFull, Tokens: toks}
}

// wantValues asserts that every field came back in full.
func wantValues(t testing.TB, res *vault.DetokenizeResult, err error, fields []field, what string) {
	t.Helper()
	if err != nil || res == nil || len(res.Items) != len(fields) {
		t.Fatalf("%s: %v %+v", what, err, res)
	}
	for i, f := range fields {
		if it := res.Items[i]; it.Denied != nil || it.Value != f.norm {
			t.Errorf("%s: %s: got %+v, want its value", what, f.cat, it)
		}
	}
}

// wantDenied asserts that every token was denied with code.
func wantDenied(t testing.TB, res *vault.DetokenizeResult, err error, n int, code, what string) {
	t.Helper()
	if res == nil || len(res.Items) != n {
		t.Fatalf("%s: %v %+v", what, err, res)
	}
	for _, it := range res.Items {
		if it.Value != "" || it.Masked != "" || it.Denied == nil || it.Denied.Code != code {
			t.Errorf("%s: got %+v, want %s", what, it, code)
		}
	}
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Code != code {
		t.Errorf("%s: error %v, want %s", what, err, code)
	}
}

// instrument registers an authority instrument approved by two lawyers.
func instrument(t testing.TB, l1, l2 *client.Client, subjects, cats []string) string {
	t.Helper()
	ctx := context.Background()
	e := try(l1.CreateEvidence(ctx, &vault.CreateEvidenceRequest{Kind: policy.KindAuthorityInstrument,
		Subjects: subjects, Categories: cats, ValidUntil: tp(at(2026, 1, 1, 0, 0, 0)),
		Attributes: map[string]string{"authority": "Thai court", "jurisdiction": "TH"}})).must(t)
	try(l1.ApproveEvidence(ctx, e.ID)).must(t)
	try(l2.ApproveEvidence(ctx, e.ID)).must(t)
	return e.ID
}

// recordKinds are every record kind the vault writes (vault/records.go and
// the keyset kind of vault.go).
var recordKinds = []string{"subject", "consent", "evidence", "apikey", "tombstone", "erasure", "job", "keyset"}

// TestErasureCryptoShredding: tokenise several categories of E1 (and of K1,
// who stays), read them back, erase E1 (s.33), and check the certificate,
// the denials (T-35), the access report, and then the raw store: no
// plaintext in any file, no key of E1 left, and no remaining key opens
// E1's old ciphertext.
func TestErasureCryptoShredding(t *testing.T) {
	ctx := context.Background()
	clock := vaulttest.NewClock(modelClock)
	st := vaulttest.New(t, vaulttest.Options{Clock: clock})
	dpo, svc := st.Client(t, "dpo-1", "dpo"), st.Client(t, "svc", "service")
	legal1, legal2, legal := st.Client(t, "legal-1", "legal"), st.Client(t, "legal-2", "legal"), st.Client(t, "legal-3", "legal")
	for _, id := range []string{"E1", "K1"} {
		try(dpo.PutSubject(ctx, id, &vault.PutSubjectRequest{Type: subject.DataSubject, BirthDate: "1980-02-03"})).must(t)
	}
	erased := []field{
		{cat: "contact.phone", value: "081-765-4321"},
		{cat: "contact.email", value: "Erased.Person.E1@Example.ORG"},
		{cat: "govid.th_national_id", value: thaiID("310150012345")},
		{cat: "identity.name", value: "สมชาย ใจดี-E1-erased"},
		{cat: "demographic.religion", value: "E1-religion Zoroastrian-7731"},
		{cat: "health", value: "E1-health: type 1 diabetes, HbA1c 7.9"},
		{cat: "financial.bank_account", value: "987-6-54321-0"},
		{cat: "criminal_record", value: "E1-criminal: petty theft 2011, case 4471/2554"},
		{cat: "location.precise", value: "13.7465,100.5348 E1-erased"},
	}
	kept := []field{
		{cat: "contact.phone", value: "082-333-4444"},
		{cat: "demographic.religion", value: "K1-religion keeper value 5521"},
		{cat: "health", value: "K1-health keeper value 8812"},
	}
	tokenizeFields(t, svc, "E1", erased)
	tokenizeFields(t, svc, "K1", kept)
	var cats []string
	for _, f := range erased {
		cats = append(cats, f.cat)
	}

	// Readable before the erasure, on the subject's own request and on a
	// court order.
	dsrE1, dsrK1 := dsr(t, dpo, "E1"), dsr(t, dpo, "K1")
	res, err := svc.Detokenize(ctx, dsrRequest(dsrE1, "E1", tokensOf(erased)))
	wantValues(t, res, err, erased, "DSR before erasure")
	before := []string{res.DecisionID}
	ord := instrument(t, legal1, legal2, []string{"E1"}, cats)
	authReq := &vault.DetokenizeRequest{Purpose: policy.PurposeLegalAuthority, Reveal: policy.RevealFull,
		Ground: &policy.Ground{Type: policy.GroundAuthorityInstrument, Ref: ord}, Tokens: tokensOf(erased)}
	res, err = legal.Detokenize(ctx, authReq)
	wantValues(t, res, err, erased, "instrument before erasure")
	before = append(before, res.DecisionID)
	res, err = svc.Detokenize(ctx, dsrRequest(dsrK1, "K1", tokensOf(kept)))
	wantValues(t, res, err, kept, "K1")

	// What a backup taken now would hold: E1's rows and wrapped keys.
	oldRows := try(st.Store.GetTokens(ctx, tokensOf(erased))).must(t)
	var e1Refs, keptRefs []store.SubjectKeyRef
	for _, r := range allSubjectKeys(t, st.Store) {
		switch r.Subject {
		case "E1":
			e1Refs = append(e1Refs, r)
		case "K1":
			keptRefs = append(keptRefs, r)
		}
	}
	if len(e1Refs) != len(erased) {
		t.Fatalf("E1 has %d subject keys, want one per category (%d)", len(e1Refs), len(erased))
	}
	e1Wrapped := try(st.Store.GetSubjectKeys(ctx, e1Refs)).must(t)
	keptWrapped := try(st.Store.GetSubjectKeys(ctx, keptRefs)).must(t)

	// The erasure.
	clock.Add(time.Minute)
	cert, err := dpo.Erase(ctx, "E1", &vault.EraseRequest{Trigger: "s33_request", Approver: "dpo-2"})
	if err != nil {
		t.Fatalf("erase: %v", err)
	}
	for _, c := range cats {
		if !slices.Contains(cert.Categories, c) {
			t.Errorf("certificate: category %s not listed as erased: %v", c, cert.Categories)
		}
	}
	if cert.KeysDestroyed != len(e1Refs) || cert.TokensRemoved != len(erased) || cert.Trigger != "s33_request" ||
		cert.SubjectState != string(subject.Erased) || cert.SubjectRef == "" || len(cert.LegalHoldExcluded) != 0 ||
		cert.Operator != "dpo-1" || cert.Approver != "dpo-2" || cert.ID == "" || cert.Method == "" ||
		cert.CompletedAt.Before(cert.StartedAt) {
		t.Errorf("certificate %+v: want %d keys destroyed (> 0), %d tokens removed, erased", cert, len(e1Refs), len(erased))
	}
	certs := try(dpo.ErasureCertificates(ctx, "E1")).must(t)
	if len(certs) != 1 || certs[0].ID != cert.ID || certs[0].TokensRemoved != cert.TokensRemoved {
		t.Errorf("GET erasures: %+v", certs)
	}
	if s := try(dpo.GetSubject(ctx, "E1")).must(t); s.State != subject.Erased {
		t.Errorf("subject state %s, want erased", s.State)
	}

	// T-35: every old token denies TOKEN_ERASED, even on a valid court
	// order, and one by one as well as in a batch.
	res, err = legal.Detokenize(ctx, authReq)
	wantDenied(t, res, err, len(erased), policy.CodeTokenErased, "instrument after erasure")
	res, err = svc.Detokenize(ctx, dsrRequest(dsrE1, "E1", tokensOf(erased)))
	wantDenied(t, res, err, len(erased), policy.CodeTokenErased, "DSR after erasure")
	for _, f := range erased {
		res, err = legal.Detokenize(ctx, &vault.DetokenizeRequest{Purpose: authReq.Purpose, Ground: authReq.Ground,
			Reveal: policy.RevealFull, Tokens: []string{f.tok}})
		wantDenied(t, res, err, 1, policy.CodeTokenErased, "instrument after erasure, "+f.cat)
	}
	res, err = svc.Detokenize(ctx, dsrRequest(dsrK1, "K1", tokensOf(kept)))
	wantValues(t, res, err, kept, "K1 after E1's erasure")

	// The audit trail outlives the erasure (T-35).
	rep := try(dpo.AccessReport(ctx, "E1")).must(t)
	for _, id := range before {
		if !slices.ContainsFunc(rep.Entries, func(e vault.AccessReportEntry) bool {
			return e.DecisionID == id && e.Allowed == len(erased)
		}) {
			t.Errorf("the access report after erasure lacks decision %s: %+v", id, rep.Entries)
		}
	}
	if !slices.ContainsFunc(rep.Entries, func(e vault.AccessReportEntry) bool { return e.Action == "subject.erase" }) {
		t.Errorf("the access report lacks the erasure")
	}

	// Stop the vault: from here on only the files are read.
	st.Server.Close()
	_ = st.Audit.Close()
	if err := st.Store.Close(); err != nil {
		t.Fatalf("close store: %v", err)
	}

	// Every file of the data directory, as raw bytes.
	var needles [][]byte
	var names []string
	for _, f := range append(slices.Clone(erased), kept...) {
		for _, form := range []string{f.value, f.norm} {
			needles = append(needles, []byte(form))
			names = append(names, f.cat+" value "+strconv.Quote(form))
		}
	}
	needles = append(needles, []byte("817654321"), []byte("9876543210"))
	names = append(names, "E1 phone digits", "E1 bank digits")
	files, total := 0, 0
	keptKeyFound := make([]bool, len(keptWrapped))
	err = filepath.WalkDir(st.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		total += len(b)
		rel, _ := filepath.Rel(st.Dir, path)
		for i, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("raw file %s holds the plaintext %s", rel, names[i])
			}
		}
		for i, k := range e1Wrapped {
			if len(k) > 0 && bytes.Contains(b, k) {
				t.Errorf("raw file %s still holds E1's wrapped data key for %v: with the KEK it opens the old ciphertext", rel, e1Refs[i])
			}
		}
		for i, k := range keptWrapped {
			if len(k) > 0 && bytes.Contains(b, k) {
				keptKeyFound[i] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking the data directory: %v", err)
	}
	t.Logf("scanned %d files, %d bytes", files, total)
	if files < 5 || total == 0 {
		t.Fatalf("the raw scan read %d files", files)
	}
	// Control: the scan does find key material that is still there.
	if !slices.Contains(keptKeyFound, true) {
		t.Errorf("the raw scan found none of K1's wrapped keys: it cannot see key material at all")
	}

	// The store itself, opened on a copy (so the original stays as it was).
	cp := filepath.Join(t.TempDir(), "store")
	copyDir(t, filepath.Join(st.Dir, "store"), cp)
	ps, err := pebble.Open(cp, pebble.Options{})
	if err != nil {
		t.Fatalf("open the store copy: %v", err)
	}
	defer ps.Close()
	rows := allTokens(t, ps)
	keptRows := 0
	for _, r := range rows {
		if r.Subject == "E1" {
			t.Errorf("a token row of E1 remains (category %d)", r.Category)
		}
		if r.Subject == "K1" {
			keptRows++
		}
		for i, n := range needles {
			if bytes.Contains(r.Ciphertext, n) || bytes.Contains([]byte(r.Token), n) {
				t.Errorf("a token row holds %s", names[i])
			}
		}
	}
	if keptRows != len(kept) {
		t.Errorf("%d rows of K1, want %d", keptRows, len(kept))
	}
	remaining := allSubjectKeys(t, ps)
	for _, r := range remaining {
		if r.Subject == "E1" {
			t.Errorf("a subject key of E1 remains: %+v", r)
		}
	}
	if w := try(ps.GetSubjectKeys(ctx, e1Refs)).must(t); slices.ContainsFunc(w, func(b []byte) bool { return b != nil }) {
		t.Errorf("GetSubjectKeys still answers for E1")
	}
	tombstones := 0
	for _, kind := range recordKinds {
		recs := try(ps.ListRecords(ctx, kind)).must(t)
		for _, rec := range recs {
			for i, n := range needles {
				if bytes.Contains(rec.Value, n) || bytes.Contains([]byte(rec.ID), n) || bytes.Contains([]byte(rec.Index), n) {
					t.Errorf("record %s/%s holds %s", kind, rec.ID, names[i])
				}
			}
			if kind == "tombstone" && slices.Contains(tokensOf(erased), rec.ID) {
				tombstones++
			}
		}
	}
	if tombstones != len(erased) {
		t.Errorf("%d tombstones for E1's %d tokens", tombstones, len(erased))
	}

	// Every DEK the keyring can still unwrap, tried on every ciphertext
	// left and on E1's old ciphertext (a backup's).
	k, err := kek.OpenLocal(filepath.Join(st.Dir, "kek.key"))
	if err != nil {
		t.Fatalf("open the KEK: %v", err)
	}
	ring, err := keys.New(keys.Config{KEK: k, Storage: vault.KeyStorage(ps)})
	if err != nil {
		t.Fatal(err)
	}
	deks := make([]*keys.DEK, 0, len(remaining))
	for _, r := range remaining {
		d, err := ring.DEKs(ctx, []keys.DEKRef{keys.DEKRef(r)}, false)
		if err != nil {
			t.Fatalf("unwrap %+v: %v", r, err)
		}
		if d[0] != nil {
			deks = append(deks, d[0])
		}
	}
	if len(deks) != len(remaining) || len(deks) < len(kept) {
		t.Fatalf("unwrapped %d of %d remaining keys", len(deks), len(remaining))
	}
	if d := try(ring.DEKs(ctx, toDEKRefs(e1Refs), false)).must(t); slices.ContainsFunc(d, func(x *keys.DEK) bool { return x != nil }) {
		t.Errorf("the keyring still unwraps a key of E1")
	}
	opened := 0
	for _, r := range rows {
		for _, d := range deks {
			pt, err := d.Open(nil, r.Token, r.Ciphertext)
			if err != nil {
				continue
			}
			opened++
			if slices.ContainsFunc(erased, func(f field) bool { return f.norm == string(pt) }) {
				t.Errorf("a remaining ciphertext opens to an erased value")
			}
		}
	}
	if opened < len(kept) {
		t.Errorf("the remaining keys opened %d ciphertexts; K1's %d should open (control)", opened, len(kept))
	}
	for i, r := range oldRows {
		if r == nil {
			t.Fatalf("no row captured for %s", erased[i].cat)
		}
		for _, d := range deks {
			if pt, err := d.Open(nil, r.Token, r.Ciphertext); err == nil {
				t.Errorf("E1's old %s ciphertext opens with a remaining key: %q", erased[i].cat, pt)
			}
		}
	}
}

func toDEKRefs(refs []store.SubjectKeyRef) []keys.DEKRef {
	out := make([]keys.DEKRef, len(refs))
	for i, r := range refs {
		out[i] = keys.DEKRef(r)
	}
	return out
}

// allTokens walks every token row of a store.
func allTokens(t testing.TB, s store.Store) []store.Token {
	t.Helper()
	var out []store.Token
	for cur := ""; ; {
		page, next, err := s.ScanTokens(context.Background(), cur, 100)
		if err != nil {
			t.Fatalf("ScanTokens: %v", err)
		}
		out = append(out, page...)
		if cur = next; cur == "" {
			return out
		}
	}
}

// allSubjectKeys walks every subject key ref of a store.
func allSubjectKeys(t testing.TB, s store.Store) []store.SubjectKeyRef {
	t.Helper()
	var out []store.SubjectKeyRef
	for cur := ""; ; {
		page, next, err := s.ScanSubjectKeys(context.Background(), cur, 100)
		if err != nil {
			t.Fatalf("ScanSubjectKeys: %v", err)
		}
		out = append(out, page...)
		if cur = next; cur == "" {
			return out
		}
	}
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			_ = out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// TestErasureRetokenizeNewToken is F-5: after erasure, tokenising the same
// plaintext does not bring back the old token, deterministic categories
// included; the old tokens stay erased.
func TestErasureRetokenizeNewToken(t *testing.T) {
	ctx := context.Background()
	st := vaulttest.New(t, vaulttest.Options{Clock: vaulttest.NewClock(modelClock)})
	dpo, svc := st.Client(t, "dpo-1", "dpo"), st.Client(t, "svc", "service")
	for _, id := range []string{"F1", "F2"} {
		try(dpo.PutSubject(ctx, id, &vault.PutSubjectRequest{Type: subject.DataSubject, BirthDate: "1985-05-05"})).must(t)
	}
	mk := func() []field {
		return []field{
			{cat: "contact.phone", value: "081-234-5678"},
			{cat: "contact.email", value: "f1.person@example.com"},
			{cat: "govid.th_national_id", value: thaiID("110370207183")},
			{cat: "account.social", value: "@f1_person"},
			{cat: "demographic.religion", value: "F1 religion"},
		}
	}
	old := mk()
	tokenizeFields(t, svc, "F1", old)
	again := mk()
	tokenizeFields(t, svc, "F1", again)
	for i := range 4 { // F-4: the deterministic ones are stable before erasure
		if again[i].tok != old[i].tok {
			t.Errorf("%s: deterministic token changed before erasure", old[i].cat)
		}
	}
	if _, err := dpo.Erase(ctx, "F1", &vault.EraseRequest{Trigger: "s33_request"}); err != nil {
		t.Fatalf("erase: %v", err)
	}
	// The same person registered again under a new id.
	fresh := mk()
	tokenizeFields(t, svc, "F2", fresh)
	for i := range fresh {
		if fresh[i].tok == old[i].tok {
			t.Errorf("%s: the old token came back after erasure", old[i].cat)
		}
	}
	res, err := svc.Detokenize(ctx, dsrRequest(dsr(t, dpo, "F2"), "F2", tokensOf(fresh)))
	wantValues(t, res, err, fresh, "the new subject's tokens")
	// Re-tokenising under the erased id does not bring the old token back
	// either (whether or not the vault accepts the call).
	res2, err := svc.Tokenize(ctx, &vault.TokenizeRequest{Items: []vault.TokenizeItem{
		{Category: "contact.phone", Value: "081-234-5678", Subject: "F1"}}})
	if err == nil && res2.Items[0].Token == old[0].tok {
		t.Errorf("re-tokenising for the erased subject returned the old token")
	}
	res, err = svc.Detokenize(ctx, dsrRequest(dsr(t, dpo, "F2"), "F2", tokensOf(old)))
	wantDenied(t, res, err, len(old), policy.CodeTokenErased, "old tokens")
}

// TestErasureCategoryWithLegalHold: a category-only erasure while another
// category is under a legal hold; then a full erasure that keeps the held
// category (ERASURE_PENDING).
func TestErasureCategoryWithLegalHold(t *testing.T) {
	ctx := context.Background()
	clock := vaulttest.NewClock(modelClock)
	st := vaulttest.New(t, vaulttest.Options{Clock: clock})
	dpo, svc := st.Client(t, "dpo-1", "dpo"), st.Client(t, "svc", "service")
	legal1, legal2 := st.Client(t, "legal-1", "legal"), st.Client(t, "legal-2", "legal")
	try(dpo.PutSubject(ctx, "H1", &vault.PutSubjectRequest{Type: subject.DataSubject, BirthDate: "1975-10-10"})).must(t)
	fs := []field{
		{cat: "health", value: "H1 health record under hold"},
		{cat: "demographic.religion", value: "H1 religion to shred"},
		{cat: "contact.phone", value: "089-123-0000"},
	}
	tokenizeFields(t, svc, "H1", fs)
	health, religion, phone := fs[0:1], fs[1:2], fs[2:3]
	caseEv := try(legal1.CreateEvidence(ctx, &vault.CreateEvidenceRequest{Kind: policy.KindLegalCase,
		Subjects: []string{"H1"}, Categories: []string{"health", "demographic.religion", "contact.phone"}})).must(t)
	try(legal2.ApproveEvidence(ctx, caseEv.ID)).must(t)
	claims := func(toks []string) *vault.DetokenizeRequest {
		return &vault.DetokenizeRequest{Purpose: policy.PurposeDispute, Reveal: policy.RevealFull,
			Ground: &policy.Ground{Type: policy.GroundLegalClaims, Ref: caseEv.ID}, Tokens: toks}
	}
	res, err := legal1.Detokenize(ctx, claims(tokensOf(fs)))
	wantValues(t, res, err, fs, "before")

	s, err := dpo.AddLegalHold(ctx, "H1", &vault.LegalHoldRequest{Categories: []string{"health"}, Ref: caseEv.ID,
		Until: modelClock.AddDate(1, 0, 0)})
	if err != nil || len(s.LegalHolds) != 1 {
		t.Fatalf("legal hold: %+v %v", s, err)
	}
	if _, err := dpo.Erase(ctx, "H1", &vault.EraseRequest{Trigger: "s33_request", Categories: []string{"health"}}); !client.IsCode(err, vault.CodeLegalHold) {
		t.Errorf("erasing the held category: %v, want LEGAL_HOLD", err)
	}

	cert, err := dpo.Erase(ctx, "H1", &vault.EraseRequest{Trigger: "s33_request", Categories: []string{"demographic.religion"}})
	if err != nil {
		t.Fatalf("category erasure: %v", err)
	}
	if !slices.Equal(cert.Categories, []string{"demographic.religion"}) || cert.KeysDestroyed != 1 || cert.TokensRemoved != 1 ||
		cert.SubjectState != string(subject.Active) {
		t.Errorf("category erasure certificate %+v", cert)
	}
	res, err = legal1.Detokenize(ctx, claims(tokensOf(health)))
	wantValues(t, res, err, health, "held category under legal_claims")
	res, err = legal1.Detokenize(ctx, claims(tokensOf(phone)))
	wantValues(t, res, err, phone, "untouched category under legal_claims")
	res, err = legal1.Detokenize(ctx, claims(tokensOf(religion)))
	wantDenied(t, res, err, 1, policy.CodeTokenErased, "erased category")

	// Full erasure: everything but the held category goes; the subject
	// stays ERASURE_PENDING for the hold.
	cert, err = dpo.Erase(ctx, "H1", &vault.EraseRequest{Trigger: "s33_request"})
	if err != nil {
		t.Fatalf("full erasure: %v", err)
	}
	if !slices.Equal(cert.LegalHoldExcluded, []string{"health"}) || slices.Contains(cert.Categories, "health") ||
		cert.SubjectState != string(subject.ErasurePending) || cert.TokensRemoved != 1 || cert.KeysDestroyed != 1 {
		t.Errorf("full erasure under a hold: %+v", cert)
	}
	res, err = legal1.Detokenize(ctx, claims(tokensOf(health)))
	wantValues(t, res, err, health, "held category after full erasure")
	res, err = legal1.Detokenize(ctx, claims(tokensOf(phone)))
	wantDenied(t, res, err, 1, policy.CodeTokenErased, "phone after full erasure")
	contract := try(dpo.CreateEvidence(ctx, &vault.CreateEvidenceRequest{Kind: policy.KindContract, Subjects: []string{"H1"},
		Categories: []string{"health"}, Purposes: []string{policy.PurposeDispute}})).must(t)
	res, err = svc.Detokenize(ctx, &vault.DetokenizeRequest{Purpose: policy.PurposeDispute, Reveal: policy.RevealFull,
		Ground: &policy.Ground{Type: policy.GroundContract, Ref: contract.ID}, Tokens: tokensOf(health)})
	wantDenied(t, res, err, 1, policy.CodeErasurePending, "held category on another ground")
	left := allSubjectKeys(t, st.Store)
	healthCat, _ := tokenizer.Lookup("health")
	if len(left) != 1 || left[0].Subject != "H1" || left[0].Category != healthCat.ID {
		t.Errorf("subject keys left: %+v, want only H1's health key", left)
	}
}

// TestErasureRetentionTimer: a criminal record's retention timer (6 months
// from the vetting decision) runs out and the retention sweeper shreds the
// category, and only it.
func TestErasureRetentionTimer(t *testing.T) {
	ctx := context.Background()
	clock := vaulttest.NewClock(modelClock)
	st := vaulttest.New(t, vaulttest.Options{Clock: clock})
	dpo, svc := st.Client(t, "dpo-1", "dpo"), st.Client(t, "svc", "service")
	try(dpo.PutSubject(ctx, "R1", &vault.PutSubjectRequest{Type: subject.DataSubject, BirthDate: "1983-03-03"})).must(t)
	fs := []field{
		{cat: "criminal_record", value: "R1 criminal record certificate 2025/77"},
		{cat: "contact.phone", value: "087-700-7777"},
	}
	tokenizeFields(t, svc, "R1", fs)
	c := try(dpo.GrantConsent(ctx, &vault.GrantConsentRequest{Subject: "R1", GrantedBy: []consent.Grantor{{Party: consent.PartySubject}},
		Explicit: true, Categories: []string{"criminal_record"}, Purposes: []string{policy.PurposeProviderVetting},
		NoticeVersion: "2020-09-15", CollectionMethod: consent.MethodInApp})).must(t)
	vet := &vault.DetokenizeRequest{Purpose: policy.PurposeProviderVetting, Reveal: policy.RevealFull,
		Ground: &policy.Ground{Type: policy.GroundConsent, Ref: c.ID}, Tokens: tokensOf(fs[:1])}
	res, err := svc.Detokenize(ctx, vet)
	wantValues(t, res, err, fs[:1], "vetting")

	s, err := dpo.SetRetention(ctx, "R1", &vault.RetentionRequest{Category: "criminal_record", From: tp(modelClock), Reason: "vetting decided"})
	if err != nil || len(s.Retention) != 1 {
		t.Fatalf("retention: %+v %v", s, err)
	}
	shredAt := modelClock.AddDate(0, 6, 0)
	if !s.Retention[0].ShredAt.Equal(shredAt) {
		t.Errorf("shred_at %s, want %s (6 months)", s.Retention[0].ShredAt, shredAt)
	}
	if n := try(st.Vault.RunRetention(ctx)).must(t); n != 0 {
		t.Errorf("RunRetention before the timer: %d", n)
	}
	clock.Set(shredAt.Add(-time.Second))
	if n := try(st.Vault.RunRetention(ctx)).must(t); n != 0 {
		t.Errorf("RunRetention a second before the timer: %d", n)
	}
	res, err = svc.Detokenize(ctx, vet)
	wantValues(t, res, err, fs[:1], "a second before the timer")

	clock.Set(shredAt.Add(time.Second))
	res, err = svc.Detokenize(ctx, vet)
	wantDenied(t, res, err, 1, policy.CodeRetentionExpired, "timer run out, not yet swept")
	if n := try(st.Vault.RunRetention(ctx)).must(t); n != 1 {
		t.Fatalf("RunRetention after the timer: %d, want 1", n)
	}
	if n := try(st.Vault.RunRetention(ctx)).must(t); n != 0 {
		t.Errorf("RunRetention again: %d, want 0", n)
	}
	res, err = svc.Detokenize(ctx, vet)
	wantDenied(t, res, err, 1, policy.CodeTokenErased, "after the sweep")
	s = try(dpo.GetSubject(ctx, "R1")).must(t)
	if s.State != subject.Active || !slices.Equal(s.ErasedCategories, []string{"criminal_record"}) {
		t.Errorf("subject after the sweep: state %s, erased %v", s.State, s.ErasedCategories)
	}
	certs := try(dpo.ErasureCertificates(ctx, "R1")).must(t)
	if len(certs) != 1 || certs[0].Trigger != "retention" || !slices.Equal(certs[0].Categories, []string{"criminal_record"}) ||
		certs[0].KeysDestroyed != 1 || certs[0].TokensRemoved != 1 {
		t.Errorf("retention certificate: %+v", certs)
	}
	crim, _ := tokenizer.Lookup("criminal_record")
	for _, r := range allSubjectKeys(t, st.Store) {
		if r.Subject == "R1" && r.Category == crim.ID {
			t.Errorf("R1's criminal-record key survived the sweep")
		}
	}
	res, err = svc.Detokenize(ctx, dsrRequest(dsr(t, dpo, "R1"), "R1", tokensOf(fs[1:])))
	wantValues(t, res, err, fs[1:], "the other category after the sweep")
}

// TestRetentionTimerSurvivesProfileUpdate: a retention timer must still be
// swept after the subject's profile is updated (PUT /v1/subjects/{id}).
func TestRetentionTimerSurvivesProfileUpdate(t *testing.T) {
	ctx := context.Background()
	clock := vaulttest.NewClock(modelClock)
	st := vaulttest.New(t, vaulttest.Options{Clock: clock})
	dpo, svc := st.Client(t, "dpo-1", "dpo"), st.Client(t, "svc", "service")
	try(dpo.PutSubject(ctx, "R2", &vault.PutSubjectRequest{Type: subject.DataSubject, BirthDate: "1983-03-03"})).must(t)
	fs := []field{{cat: "criminal_record", value: "R2 criminal record"}}
	tokenizeFields(t, svc, "R2", fs)
	try(dpo.SetRetention(ctx, "R2", &vault.RetentionRequest{Category: "criminal_record", From: tp(modelClock)})).must(t)
	// A routine profile update (the subject married).
	try(dpo.PutSubject(ctx, "R2", &vault.PutSubjectRequest{Type: subject.DataSubject, BirthDate: "1983-03-03", Married: true})).must(t)
	clock.Set(modelClock.AddDate(0, 6, 1))
	if n := try(st.Vault.RunRetention(ctx)).must(t); n != 1 {
		t.Errorf("RunRetention after the timer: %d, want 1 — the profile update dropped the subject from the sweeper's timer index", n)
	}
}

// TestErasedTokenDecisionAudit: a decision on an erased token is still a
// decision about the subject's data: its audit item should carry the
// category (the tombstone has it; pdpa-model §2.7 categories[]) and the
// subject's reference, so that the subject's access report shows the
// attempt.
func TestErasedTokenDecisionAudit(t *testing.T) {
	ctx := context.Background()
	st := vaulttest.New(t, vaulttest.Options{Clock: vaulttest.NewClock(modelClock)})
	dpo, svc := st.Client(t, "dpo-1", "dpo"), st.Client(t, "svc", "service")
	legal1, legal2, legal := st.Client(t, "legal-1", "legal"), st.Client(t, "legal-2", "legal"), st.Client(t, "legal-3", "legal")
	try(dpo.PutSubject(ctx, "A1", &vault.PutSubjectRequest{Type: subject.DataSubject, BirthDate: "1970-01-01"})).must(t)
	fs := []field{{cat: "contact.phone", value: "081-000-1111"}}
	tokenizeFields(t, svc, "A1", fs)
	ord := instrument(t, legal1, legal2, []string{"A1"}, []string{"contact.phone"})
	try(dpo.Erase(ctx, "A1", &vault.EraseRequest{Trigger: "s33_request"})).must(t)
	res, err := legal.Detokenize(ctx, &vault.DetokenizeRequest{Purpose: policy.PurposeLegalAuthority, Reveal: policy.RevealFull,
		Ground: &policy.Ground{Type: policy.GroundAuthorityInstrument, Ref: ord}, Tokens: tokensOf(fs)})
	wantDenied(t, res, err, 1, policy.CodeTokenErased, "erased")

	src, err := audit.OpenFileSink(audit.FileConfig{Dir: st.AuditDir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var rec *audit.Record
	for r, err := range audit.Records(ctx, src) {
		if err != nil {
			t.Fatal(err)
		}
		if r.DecisionID == res.DecisionID {
			rec = r
		}
	}
	if rec == nil || len(rec.Items) != 1 {
		t.Fatalf("no audit record for the decision")
	}
	t.Run("category", func(t *testing.T) {
		if rec.Items[0].Category != "contact.phone" {
			t.Errorf("audit item of an erased token: category %q, want contact.phone (from the tombstone)", rec.Items[0].Category)
		}
	})
	t.Run("access report", func(t *testing.T) {
		rep := try(dpo.AccessReport(ctx, "A1")).must(t)
		if !slices.ContainsFunc(rep.Entries, func(e vault.AccessReportEntry) bool { return e.DecisionID == res.DecisionID }) {
			t.Errorf("the erased subject's access report does not show the later attempt on its data (audit item subject ref %q)", rec.Items[0].Subject)
		}
	})
}
