package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/policy"
)

// secretSet collects what must never appear in logs, error bodies or metrics.
type secretSet struct {
	text  map[string]string // needle -> what it is
	bytes map[string][]byte // binary needles (key bytes)
}

func newSecretSet() *secretSet {
	return &secretSet{text: map[string]string{}, bytes: map[string][]byte{}}
}

func (s *secretSet) add(what string, needles ...string) {
	for _, n := range needles {
		if len(n) >= 6 {
			s.text[n] = what
		}
	}
}

// find returns what each needle found in hay is (case-insensitively).
func (s *secretSet) find(hay []byte) []string {
	low := strings.ToLower(string(hay))
	var out []string
	for n, what := range s.text {
		if strings.Contains(low, strings.ToLower(n)) {
			out = append(out, fmt.Sprintf("%s %q", what, n))
		}
	}
	for what, b := range s.bytes {
		if bytes.Contains(hay, b) {
			out = append(out, what+" (raw bytes)")
		}
	}
	return out
}

// digits keeps the digits of s.
func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// stripEchoedTokens removes what a detokenise answer legitimately echoes
// back (the caller's own tokens, as item keys) before a body is searched for
// tokens.
func stripEchoedTokens(body []byte) []byte {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	items, _ := m["items"].([]any)
	for _, it := range items {
		if o, ok := it.(map[string]any); ok {
			delete(o, "token")
		}
	}
	b, _ := json.Marshal(m)
	return b
}

// TestNoSecretsInLogsAndErrors runs a full session and checks that no value,
// token, API key, KEK byte or subject id reaches the server's output, an
// error body or the metrics.
func TestNoSecretsInLogsAndErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startDev(t, "--log-level", "debug",
		"--max-body-bytes", fmt.Sprint(testMaxBody), "--max-batch", fmt.Sprint(testMaxBatch))
	admin := s.root()

	values := newSecretSet() // plaintext: searched everywhere, error bodies included
	tokens := newSecretSet() // tokens: searched in logs, metrics and error envelopes
	others := newSecretSet() // keys, subject ids

	const subjA, subjB = "subj-Qx7Zp3-holder", "subj-Mv9Kt2-other"
	others.add("subject id", subjA, subjB, badSubjectA, badSubjectB, probeSubject, probeOtherSubject)
	putAdult(t, admin, subjA)
	putAdult(t, admin, subjB)

	raw := map[string]string{
		"contact.phone":        "081-555-7391",
		"contact.email":        "Kanya.Srisuk.Q7@Example.ORG",
		"govid.th_national_id": validThaiID("310050012345"),
		"financial.card_pan":   "4111 1111 1111 1111",
		"identity.name":        "Somchai Jaidee-Xq",
		"health":               "Diabetes type 2, insulin q7h",
	}
	for cat, v := range raw {
		values.add("value of "+cat, v, strings.ReplaceAll(v, " ", ""), strings.ReplaceAll(v, "-", ""))
		if d := digits(v); len(d) >= 9 {
			values.add("digits of "+cat, d)
		}
	}
	values.add("phone, E.164", "+66815557391", "815557391")
	values.add("email, lower case", strings.ToLower(raw["contact.email"]))

	var items []vault.TokenizeItem
	var cats []string
	for cat, v := range raw {
		items = append(items, vault.TokenizeItem{Category: cat, Value: v, Subject: subjA})
		cats = append(cats, cat)
	}
	res, err := admin.Tokenize(ctx, &vault.TokenizeRequest{Items: items})
	if err != nil {
		t.Fatalf("tokenize: %v", err)
	}
	var toks []string
	for i, it := range res.Items {
		if it.Token == "" {
			t.Fatalf("item %d: %+v", i, it)
		}
		toks = append(toks, it.Token)
		tokens.add("token of "+cats[i], it.Token)
	}
	resB, err := admin.Tokenize(ctx, &vault.TokenizeRequest{Items: []vault.TokenizeItem{
		{Category: "contact.phone", Value: "089-444-2618", Subject: subjB}}})
	if err != nil {
		t.Fatalf("tokenize B: %v", err)
	}
	values.add("value of B's phone", "089-444-2618", "0894442618", "+66894442618")
	tokens.add("token of B's phone", resB.Items[0].Token)

	// Consents and decisions: allowed, denied, after withdrawal.
	consentID := grantMarketing(t, admin, subjA, true, cats...)
	var bodies [][]byte // every error body
	det := func(req *vault.DetokenizeRequest) {
		r := s.postJSON("/v1/detokenize", req)
		if r.status/100 != 2 {
			bodies = append(bodies, r.body)
		}
		var dr vault.DetokenizeResult
		if json.Unmarshal(r.body, &dr) == nil {
			for _, it := range dr.Items {
				values.add("released value", it.Value) // the normalised form
			}
		}
	}
	det(marketingRequest(consentID, toks...))
	det(marketingRequest(consentID, resB.Items[0].Token))
	for _, rv := range []string{policy.RevealPartial, policy.RevealMasked} {
		req := marketingRequest(consentID, toks...)
		req.Reveal = rv
		det(req)
	}
	released := 0
	for _, what := range values.text {
		if what == "released value" {
			released++
		}
	}
	if released == 0 {
		t.Fatal("the session released no value: the search below would prove little")
	}
	if _, err := admin.WithdrawConsent(ctx, consentID, &vault.WithdrawConsentRequest{Channel: "app"}); err != nil {
		t.Errorf("withdraw: %v", err)
	}
	det(marketingRequest(consentID, toks...))

	// API keys: created, used, revoked, then used again.
	k, err := admin.CreateAPIKey(ctx, "leaky-service", "service")
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	others.add("created API key", k.Key)
	if _, err := s.client(k.Key).Tokenize(ctx, &vault.TokenizeRequest{Items: items[:1]}); err != nil {
		t.Errorf("new key: %v", err)
	}
	if _, err := admin.RevokeAPIKeys(ctx, "leaky-service"); err != nil {
		t.Errorf("revoke: %v", err)
	}
	r := s.do(http.MethodPost, "/v1/tokenize", k.Key, "application/json", jsonBytes(t, &vault.TokenizeRequest{Items: items[:1]}))
	if r.status != 401 {
		t.Errorf("revoked key: %s", r)
	}
	bodies = append(bodies, r.body)

	// Errors of every kind.
	fx := setupBadFixture(t, s)
	tokens.add("fixture token", fx.tokA, fx.tokB)
	values.add("fixture value", "081-777-1234", "0817771234", "+66817771234", "081-777-4321", "0817774321", "+66817774321")
	values.add("invalid value", "1103702071839", "Somchai Somchai Somchai", "Mixed Valid", "Batch Name")
	others.add("presented API key", "fvk_0000000000000000000000000000000X", "not-a-valid-key-at-all")
	for _, c := range badCases(fx) {
		for i := range c.probes {
			values.add("probe value", c.probes[i])
		}
		r := s.do(http.MethodPost, c.path, c.key, c.contentType, c.body)
		if r.status/100 != 2 {
			bodies = append(bodies, r.body)
		}
	}
	for _, p := range []struct{ method, path string }{
		{http.MethodGet, "/v1/subjects/" + "subj-Zz0-unknown"},
		{http.MethodGet, "/v1/consents/c_00000000000000000000000000"},
		{http.MethodPost, "/v1/consents/" + consentID + "/withdraw"},
		{http.MethodDelete, "/v1/auth/keys/leaky-service"},
		{http.MethodGet, "/v1/no-such-route/" + subjA},
	} {
		r := s.do(p.method, p.path, e2eRootToken, "", nil)
		if r.status/100 == 2 {
			t.Errorf("%s %s: want an error, got %s", p.method, p.path, r)
		}
		bodies = append(bodies, r.body)
	}
	others.add("subject id", "subj-Zz0-unknown")
	for _, body := range []any{
		map[string]any{"type": "data_subject", "birth_date": "1990-13-45"},
		map[string]any{"type": "alien"},
	} {
		r := s.do(http.MethodPut, "/v1/subjects/"+subjB, e2eRootToken, "application/json", jsonBytes(t, body))
		if r.status/100 == 2 {
			t.Errorf("bad subject %v: %s", body, r)
		}
		bodies = append(bodies, r.body)
	}
	r = s.postJSON("/v1/consents", map[string]any{"subject": "subj-Zz0-unknown", "categories": []string{"contact.phone"},
		"purposes": []string{"marketing"}, "notice_version": "x", "collection_method": "in_app",
		"granted_by": []any{map[string]any{"party": "subject", "id": "subj-Zz0-unknown", "verified": true}}})
	if r.status/100 == 2 {
		t.Errorf("consent for an unknown subject: %s", r)
	}
	bodies = append(bodies, r.body)

	// The KEK.
	kf, err := os.ReadFile(filepath.Join(s.dataDir, "kek.key"))
	if err != nil {
		t.Fatalf("KEK file: %v", err)
	}
	var kek struct {
		Versions []struct {
			Key string `json:"key"`
		} `json:"versions"`
	}
	if err := json.Unmarshal(kf, &kek); err != nil || len(kek.Versions) == 0 {
		t.Fatalf("KEK file: %v", err)
	}
	for i, v := range kek.Versions {
		kb, err := base64.StdEncoding.DecodeString(v.Key)
		if err != nil || len(kb) != 32 {
			t.Fatalf("KEK version %d: %v", i, err)
		}
		others.add("KEK (base64)", base64.StdEncoding.EncodeToString(kb), base64.RawStdEncoding.EncodeToString(kb),
			base64.URLEncoding.EncodeToString(kb), base64.RawURLEncoding.EncodeToString(kb))
		others.add("KEK (hex)", hex.EncodeToString(kb))
		others.bytes[fmt.Sprintf("KEK version %d", i)] = kb
	}

	metrics := s.do(http.MethodGet, "/metrics", "", "", nil)
	if metrics.status != 200 || !bytes.Contains(metrics.body, []byte("fieldvault_decisions_total")) {
		t.Fatalf("/metrics: %s", metrics)
	}

	// The server's own output: the one-time banner may show the root token,
	// nothing else may.
	stdout, stderr := s.stdout.String(), s.stderr.String()
	if n := strings.Count(stdout, e2eRootToken); n != 2 {
		t.Errorf("the banner shows the root token %d times, want 2 (the key line and the export line):\n%s", n, stdout)
	}
	var kept []string
	for _, line := range strings.Split(stdout, "\n") {
		if strings.TrimSpace(line) == e2eRootToken || strings.TrimSpace(line) == "export FIELDVAULT_TOKEN="+e2eRootToken {
			continue
		}
		kept = append(kept, line)
	}
	output := strings.Join(kept, "\n") + stderr
	if strings.Contains(output, e2eRootToken) {
		t.Errorf("the root token appears outside the banner")
	}
	if n := strings.Count(stderr, `"msg":"request"`); n < 50 {
		t.Fatalf("only %d access-log lines captured: the search below would prove little\n%s", n, stderr)
	}

	check := func(where string, hay []byte, sets ...*secretSet) {
		t.Helper()
		for _, set := range sets {
			for _, f := range set.find(hay) {
				t.Errorf("%s contains %s", where, f)
			}
		}
	}
	// Controls: the needles are found where they are.
	if len(values.find(jsonBytes(t, items))) < len(raw) || len(tokens.find(jsonBytes(t, res))) < len(toks) ||
		len(others.find(kf)) == 0 {
		t.Fatal("the search does not find the needles in the request, the response and the KEK file")
	}
	check("server output", []byte(output), values, tokens, others)
	check("/metrics", metrics.body, values, tokens, others)
	if bytes.Contains(metrics.body, []byte(e2eRootToken)) {
		t.Errorf("/metrics contains the root token")
	}
	for _, b := range bodies {
		where := "error body " + string(b)
		if len(where) > 300 {
			where = where[:300] + "…"
		}
		check(where, b, values, others)
		check(where, stripEchoedTokens(b), tokens)
		if bytes.Contains(b, []byte(e2eRootToken)) {
			t.Errorf("%s contains the root token", where)
		}
	}
	t.Logf("%d values released during the session", released)
	t.Logf("searched %d bytes of server output, %d error bodies and %d bytes of metrics for %d secrets",
		len(output), len(bodies), len(metrics.body), len(values.text)+len(tokens.text)+len(others.text)+len(others.bytes))
}
