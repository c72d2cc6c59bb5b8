package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldvault/fieldvault/keys"
	"github.com/fieldvault/fieldvault/keys/kek"
	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/audit"
	"github.com/fieldvault/fieldvault/vault/httpapi"
	"github.com/fieldvault/fieldvault/vault/store/pebble"
)

const fuzzRootToken = "fuzz-root-token-0123"

// fuzzAPI is an in-process API handler on a real Pebble store, local KEK and
// file audit log, wired as serve.go wires them.
type fuzzAPI struct {
	h    http.Handler
	logs *syncBuffer
	// tok is a phone token of fuzz-u1, consent a marketing consent of fuzz-u1
	// covering it; fuzz inputs refer to them as $TOK and $CONSENT.
	tok, consent string
}

func newFuzzAPI(tb testing.TB) *fuzzAPI {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	st, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{CacheSize: 8 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	k, _, err := kek.LoadOrCreateLocal(filepath.Join(dir, "kek.key"))
	if err != nil {
		tb.Fatal(err)
	}
	ring, err := keys.New(keys.Config{KEK: k, Storage: vault.KeyStorage(st)})
	if err != nil {
		tb.Fatal(err)
	}
	sink, err := audit.OpenFileSink(audit.FileConfig{Dir: filepath.Join(dir, "audit")})
	if err != nil {
		tb.Fatal(err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	refKey := make([]byte, audit.RefKeySize)
	if _, err := rand.Read(refKey); err != nil {
		tb.Fatal(err)
	}
	al, err := audit.New(audit.Config{Node: "fuzz", RefKey: refKey, SigningKey: priv, Sink: sink, Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = al.Close(); _ = sink.Close() })
	v, err := vault.New(vault.Config{Store: st, Keys: ring, Audit: al, AuditSource: sink, Node: "fuzz", Logger: log,
		Limits: vault.Limits{MaxBatch: 1000}})
	if err != nil {
		tb.Fatal(err)
	}
	if _, _, err := v.EnsureAdminKey(ctx, fuzzRootToken); err != nil {
		tb.Fatal(err)
	}
	f := &fuzzAPI{h: httpapi.New(httpapi.Config{Vault: v, Logger: log, MaxBodyBytes: 1 << 20}), logs: logs}

	// Fixture: a subject, a token and a consent.
	if rr := f.post("PUT", "/v1/subjects/fuzz-u1", []byte(`{"type":"data_subject","birth_date":"1990-04-01"}`)); rr.Code != 201 {
		tb.Fatalf("fixture subject: %d %s", rr.Code, rr.Body)
	}
	rr := f.post("POST", "/v1/tokenize", []byte(`{"items":[{"category":"contact.phone","value":"081-234-5678","subject":"fuzz-u1"}]}`))
	var tr vault.TokenizeResult
	if rr.Code != 200 || json.Unmarshal(rr.Body.Bytes(), &tr) != nil || len(tr.Items) != 1 || tr.Items[0].Token == "" {
		tb.Fatalf("fixture token: %d %s", rr.Code, rr.Body)
	}
	f.tok = tr.Items[0].Token
	rr = f.post("POST", "/v1/consents", []byte(`{"subject":"fuzz-u1","granted_by":[{"party":"subject","id":"fuzz-u1","verified":true}],
		"categories":["contact.phone"],"purposes":["marketing"],"recipients":[{"id":"crm","country":"TH"}],
		"notice_version":"2020-09-15","collection_method":"in_app"}`))
	var cv struct {
		ID string `json:"id"`
	}
	if rr.Code != 201 || json.Unmarshal(rr.Body.Bytes(), &cv) != nil || cv.ID == "" {
		tb.Fatalf("fixture consent: %d %s", rr.Code, rr.Body)
	}
	f.consent = cv.ID
	// The fixture releases: seeds that refer to it reach the allow path.
	rr = f.post("POST", "/v1/detokenize", []byte(`{"purpose":"marketing","ground":{"type":"consent","ref":"`+f.consent+
		`"},"recipient":{"id":"crm","country":"TH"},"reveal":"full","tokens":["`+f.tok+`"]}`))
	if rr.Code != 200 || !strings.Contains(rr.Body.String(), `"value":"+66812345678"`) {
		tb.Fatalf("fixture detokenize: %d %s", rr.Code, rr.Body)
	}
	return f
}

func (f *fuzzAPI) post(method, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+fuzzRootToken)
	rr := httptest.NewRecorder()
	f.h.ServeHTTP(rr, req)
	return rr
}

// check asserts the answer's invariants: never a 5xx, and every non-2xx
// answer is the JSON error envelope with an UPPER_SNAKE code.
func (f *fuzzAPI) check(t *testing.T, path string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	body = bytes.ReplaceAll(body, []byte("$TOK"), []byte(f.tok))
	body = bytes.ReplaceAll(body, []byte("$CONSENT"), []byte(f.consent))
	rr := f.post("POST", path, body)
	if rr.Code >= 500 {
		t.Fatalf("status %d for %q: %s\nlogs:\n%s", rr.Code, body, rr.Body, lastLines(f.logs.String(), 5))
	}
	if ct := rr.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q for %q", ct, body)
	}
	if rr.Code/100 == 2 {
		var ok map[string]json.RawMessage
		if err := json.Unmarshal(rr.Body.Bytes(), &ok); err != nil || ok["items"] == nil {
			t.Fatalf("2xx body without items for %q: %s", body, rr.Body)
		}
		return rr
	}
	var env struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(rr.Body.Bytes(), &env); err != nil || env.Error == nil {
		t.Fatalf("status %d without an error envelope for %q: %s", rr.Code, body, rr.Body)
	}
	if !upperSnake.MatchString(env.Error.Code) || env.Error.Message == "" {
		t.Fatalf("status %d with code %q message %q for %q", rr.Code, env.Error.Code, env.Error.Message, body)
	}
	if strings.Contains(f.logs.String(), "panic") {
		t.Fatalf("a panic was logged for %q:\n%s", body, lastLines(f.logs.String(), 5))
	}
	return rr
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// FuzzTokenizeRequest posts arbitrary bodies to POST /v1/tokenize.
func FuzzTokenizeRequest(f *testing.F) {
	api := newFuzzAPI(f)
	for _, s := range []string{
		`{"items":[{"category":"contact.phone","value":"081-234-5678","subject":"fuzz-u1"}]}`,
		`{"items":[{"category":"contact.email","value":"A.B@Example.COM","subject":"fuzz-u2","deterministic":true,"keep_domain":true}]}`,
		`{"items":[{"category":"govid.th_national_id","value":"1-1037-02071-83-8","subject":"fuzz-u1","keep_last4":true}]}`,
		`{"items":[{"category":"financial.card_pan","value":"4111 1111 1111 1111","subject":"fuzz-u1","luhn_valid":true}]}`,
		`{"items":[{"category":"financial.bank_account","value":"123-4-56789-0","subject":"fuzz-u1"}]}`,
		`{"items":[{"category":"identity.name","value":"สมชาย ใจดี","subject":"fuzz-u1","expires_at":"2999-01-01T00:00:00Z"}]}`,
		`{"items":[{"category":"identity.name","value":"x","subject":"fuzz-u1","expires_at":"2000-01-01T00:00:00Z"}]}`,
		`{"items":[{"category":"health","value":"x","subject":"fuzz-u1","deterministic":true}]}`,
		`{"partial_success":true,"items":[{"category":"contact.phone","value":"+66 81 234 5678","subject":"fuzz-u3"},{"category":"nope","value":"x","subject":"s"}]}`,
		`{"items":[{"category":"contact.phone","value":"","subject":""}]}`,
		`{"items":[]}`,
		`{"items":[{"category":"contact.phone","value":"0812345678","subject":"fuzz-u1"},{"category":"contact.phone","value":"0812345678","subject":"fuzz-u2"}]}`,
		`{"items":[{"category":"account.social","value":"@handle","subject":"fuzz-u1","deterministic":false}]}`,
		`{"items":null}`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rr := api.check(t, "/v1/tokenize", body)
		if rr.Code == 200 {
			var res vault.TokenizeResult
			if err := json.Unmarshal(rr.Body.Bytes(), &res); err != nil {
				t.Fatalf("200 body: %v: %s", err, rr.Body)
			}
			for i, it := range res.Items {
				if (it.Token == "") == (it.Error == nil) {
					t.Fatalf("item %d has both or neither of token and error: %s", i, rr.Body)
				}
				if it.Error != nil && !upperSnake.MatchString(it.Error.Code) {
					t.Fatalf("item %d code %q", i, it.Error.Code)
				}
			}
		}
	})
}

// FuzzDetokenizeRequest posts arbitrary bodies to POST /v1/detokenize.
func FuzzDetokenizeRequest(f *testing.F) {
	api := newFuzzAPI(f)
	for _, s := range []string{
		`{"purpose":"marketing","ground":{"type":"consent","ref":"$CONSENT"},"recipient":{"id":"crm","country":"TH"},"reveal":"full","tokens":["$TOK"]}`,
		`{"purpose":"marketing","ground":{"type":"consent","ref":"$CONSENT"},"recipient":{"id":"crm","country":"TH"},"reveal":"partial","tokens":["$TOK","$TOK"]}`,
		`{"purpose":"marketing","ground":{"type":"consent","ref":"$CONSENT"},"recipient":{"id":"crm","country":"SG"},"transfer_basis":{"type":"safeguards","ref":"e_x"},"tokens":["$TOK"]}`,
		`{"purpose":"marketing","ground":{"type":"consent","ref":"$CONSENT"},"tokens":["$TOK","tok_nm_0000","+66012340000"],"category_hint":"contact.phone"}`,
		`{"purpose":"support","ground":{"type":"contract","ref":"e_1"},"tokens":["$TOK"],"on_behalf_of":"agent-7","justification":"ticket 42"}`,
		`{"purpose":"emergency","ground":{"type":"vital_interest"},"reveal":"masked","tokens":["$TOK"]}`,
		`{"purpose":"data_subject_request","ground":{"type":"data_subject_request","ref":"e_2"},"tokens":["$TOK"]}`,
		`{"purpose":"marketing","ground":{"type":"consent","ref":"c_missing"},"tokens":[""]}`,
		`{"purpose":"","ground":null,"tokens":[]}`,
		`{"purpose":"marketing","ground":{"type":"consent","ref":"$CONSENT"},"reveal":"bogus","tokens":["$TOK"]}`,
		`{"tokens":["$TOK"]}`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rr := api.check(t, "/v1/detokenize", body)
		if rr.Code == 200 || rr.Code == 403 || rr.Code == 404 {
			var res vault.DetokenizeResult
			if err := json.Unmarshal(rr.Body.Bytes(), &res); err == nil && res.DecisionID != "" {
				for i, it := range res.Items {
					n := 0
					for _, set := range []bool{it.Value != "", it.Masked != "", it.Denied != nil} {
						if set {
							n++
						}
					}
					if n != 1 {
						t.Fatalf("item %d is not exactly one of value, masked, denied: %s", i, rr.Body)
					}
					if rr.Code != 200 && it.Denied == nil {
						t.Fatalf("status %d with a released item: %s", rr.Code, rr.Body)
					}
				}
			}
		}
	})
}

// fuzzEndpoints are the other request decoders: every JSON body the API
// takes besides tokenize and detokenize.
var fuzzEndpoints = []struct{ method, path string }{
	{"POST", "/v1/consents"},
	{"PUT", "/v1/subjects/fuzz-s1"},
	{"POST", "/v1/evidence"},
	{"POST", "/v1/subjects/fuzz-s1/suspend"},
	{"POST", "/v1/subjects/fuzz-s1/proof"},
	{"POST", "/v1/subjects/fuzz-s1/restrict"},
	{"POST", "/v1/subjects/fuzz-s1/objection"},
	{"POST", "/v1/subjects/fuzz-s1/legal-holds"},
	{"POST", "/v1/subjects/fuzz-s1/retention"},
	{"POST", "/v1/subjects/fuzz-s1/erase"},
	{"POST", "/v1/consents/$CONSENT/withdraw"},
	{"POST", "/v1/keys/identity.name/config"},
	{"POST", "/v1/keys/rewrap"},
	{"POST", "/v1/auth/keys"},
}

// FuzzOtherRequests posts arbitrary bodies to every other endpoint that
// decodes JSON (the first byte picks the endpoint): never a 5xx, and every
// non-2xx answer is the error envelope with an UPPER_SNAKE code.
func FuzzOtherRequests(f *testing.F) {
	api := newFuzzAPI(f)
	seeds := []string{
		`{"subject":"fuzz-s1","granted_by":[{"party":"subject","id":"fuzz-s1","verified":true}],"categories":["contact.phone"],"purposes":["marketing"],"notice_version":"v1","collection_method":"in_app"}`,
		`{"type":"data_subject","birth_date":"2001-02-03"}`,
		`{"kind":"incident","subjects":["fuzz-s1"],"attributes":{"subject_incapable_of_consent":"true"}}`,
		`{"detected_at":"2025-01-01T00:00:00Z","reason":"mismatch"}`,
		`{"received_at":"2025-01-02T00:00:00Z"}`,
		`{"reason":"accuracy","categories":["health"]}`,
		`{"purpose":"marketing"}`,
		`{"categories":["contact.phone"],"ref":"e_x","until":"2030-01-01T00:00:00Z"}`,
		`{"category":"criminal_record","from":"2025-01-01T00:00:00Z"}`,
		`{"trigger":"s33_request","categories":["contact.phone"]}`,
		`{"channel":"email"}`,
		`{"auto_rotate_period":"720h"}`,
		`{"category":"identity.name","rate":10}`,
		`{"principal":"fuzz-p","roles":["auditor"]}`,
	}
	for i, s := range seeds {
		f.Add(append([]byte{byte(i)}, s...))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		ep := fuzzEndpoints[int(in[0])%len(fuzzEndpoints)]
		body := bytes.ReplaceAll(in[1:], []byte("$CONSENT"), []byte(api.consent))
		path := strings.ReplaceAll(ep.path, "$CONSENT", api.consent)
		rr := api.post(ep.method, path, body)
		if rr.Code >= 500 {
			t.Fatalf("%s %s: status %d for %q: %s\nlogs:\n%s", ep.method, path, rr.Code, body, rr.Body, lastLines(api.logs.String(), 5))
		}
		if ct := rr.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: Content-Type %q", ep.method, path, ct)
		}
		if rr.Code/100 == 2 {
			if !json.Valid(rr.Body.Bytes()) {
				t.Fatalf("%s %s: 2xx body is not JSON: %s", ep.method, path, rr.Body)
			}
			return
		}
		var env struct {
			Error *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(rr.Body.Bytes(), &env); err != nil || env.Error == nil ||
			!upperSnake.MatchString(env.Error.Code) || env.Error.Message == "" {
			t.Fatalf("%s %s: status %d without a proper error envelope: %s", ep.method, path, rr.Code, rr.Body)
		}
		if strings.Contains(api.logs.String(), "panic") {
			t.Fatalf("a panic was logged:\n%s", lastLines(api.logs.String(), 5))
		}
	})
}
