package transittest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// do sends a JSON request and returns the status and decoded body.
func do(t *testing.T, s *Server, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd *strings.Reader
	if body != nil {
		out, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = strings.NewReader(string(out))
	} else {
		rd = strings.NewReader("")
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatalf("%s %s: decoding: %v", method, path, err)
		}
	}
	return resp.StatusCode, m
}

func errorsOf(m map[string]any) string {
	b, _ := json.Marshal(m["errors"])
	return string(b)
}

func TestTamperSubstitution(t *testing.T) {
	r := newReplayer(t, nil)
	rec := "vault:v1:A88GzG0R4O5tgcCBETM9rCXhpURYdz6K2eyTclumK+nurS3PhCobikouP9oFGfVKgZxwTQ=="
	payload, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(rec, "vault:v1:"))
	if err != nil {
		t.Fatal(err)
	}
	ours := "vault:v1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), len(payload)))
	r.ciphertexts[rec] = ours
	got := r.mapCiphertext(rec[:len(rec)-4] + "AAAA")
	if want := ours[:len(ours)-4] + "AAAA"; got != want {
		t.Errorf("tampered substitution = %s, want %s", got, want)
	}
	if got := r.mapCiphertext(rec); got != ours {
		t.Errorf("substitution = %s, want %s", got, ours)
	}
	if got := r.mapCiphertext("garbage"); got != "garbage" {
		t.Errorf("unrelated value substituted: %s", got)
	}
}

func TestSealUnseal(t *testing.T) {
	s := New(t, Options{})
	s.Seal()
	st, body := do(t, s, "GET", "/v1/transit/keys/k", s.RootToken, nil)
	if st != http.StatusServiceUnavailable || errorsOf(body) != `["Vault is sealed"]` {
		t.Errorf("sealed read = %d %v, want 503 Vault is sealed", st, body)
	}
	st, body = do(t, s, "GET", "/v1/sys/health", "", nil)
	if st != http.StatusServiceUnavailable || body["sealed"] != true {
		t.Errorf("sealed health = %d %v", st, body)
	}
	s.Unseal()
	if st, _ := do(t, s, "GET", "/v1/sys/health", "", nil); st != http.StatusOK {
		t.Errorf("unsealed health = %d", st)
	}
}

func TestStopStart(t *testing.T) {
	s := New(t, Options{})
	if err := s.CreateKey("transit", "k"); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	_, err := client.Get(s.URL + "/v1/sys/health")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("request while stopped: %v, want connection refused", err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if st, _ := do(t, s, "GET", "/v1/transit/keys/k", s.RootToken, nil); st != http.StatusOK {
		t.Errorf("key after restart: %d, want 200 (state kept)", st)
	}
}

func TestTokenTTLAndRenewal(t *testing.T) {
	s := New(t, Options{})
	tok := s.CreateToken(TokenOptions{TTL: time.Second, Renewable: true})
	st, body := do(t, s, "GET", "/v1/auth/token/lookup-self", tok, nil)
	if st != http.StatusOK {
		t.Fatalf("lookup-self = %d", st)
	}
	if data, _ := body["data"].(map[string]any); data["renewable"] != true || data["policies"].([]any)[0] != "default" {
		t.Errorf("lookup-self data = %v", data)
	}
	time.Sleep(600 * time.Millisecond)
	st, body = do(t, s, "POST", "/v1/auth/token/renew-self", tok, map[string]any{})
	if auth, _ := body["auth"].(map[string]any); st != http.StatusOK || auth["lease_duration"] != float64(1) {
		t.Fatalf("renew-self = %d %v", st, body)
	}
	time.Sleep(600 * time.Millisecond) // past the original TTL, within the renewed one
	if st, _ := do(t, s, "GET", "/v1/auth/token/lookup-self", tok, nil); st != http.StatusOK {
		t.Errorf("renewed token refused: %d", st)
	}
	time.Sleep(1100 * time.Millisecond)
	st, body = do(t, s, "GET", "/v1/auth/token/lookup-self", tok, nil)
	if st != http.StatusForbidden || errorsOf(body) != `["permission denied"]` {
		t.Errorf("expired token = %d %v, want 403 permission denied", st, body)
	}
	if st, body := do(t, s, "POST", "/v1/auth/token/renew-self", s.RootToken, nil); st != http.StatusBadRequest {
		t.Errorf("renewing the root token = %d %v, want 400", st, body)
	}
}

func TestACL(t *testing.T) {
	s := New(t, Options{})
	if err := s.SetPolicy("svc", `
path "transit/encrypt/k" { capabilities = ["update"] }
path "transit/decrypt/+" { capabilities = ["update"] }
path "transit/keys/*"    { capabilities = ["read"] }
path "transit/keys/k/rotate" { capabilities = ["deny"] }
`); err != nil {
		t.Fatal(err)
	}
	tok := s.CreateToken(TokenOptions{Policies: []string{"svc"}, NoDefaultPolicy: true})
	pt := map[string]any{"plaintext": "aGk="}

	// The key is missing, so encrypt needs "create": the upsert is denied.
	if st, _ := do(t, s, "POST", "/v1/transit/encrypt/k", tok, pt); st != http.StatusForbidden {
		t.Errorf("upsert with update only = %d, want 403", st)
	}
	if err := s.CreateKey("transit", "k"); err != nil {
		t.Fatal(err)
	}
	st, body := do(t, s, "POST", "/v1/transit/encrypt/k", tok, pt)
	if st != http.StatusOK {
		t.Fatalf("encrypt = %d %v", st, body)
	}
	ct := body["data"].(map[string]any)["ciphertext"]
	if st, _ := do(t, s, "POST", "/v1/transit/decrypt/k", tok, map[string]any{"ciphertext": ct}); st != http.StatusOK {
		t.Errorf("decrypt via + glob = %d", st)
	}
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/v1/transit/keys/k", http.StatusOK},
		{"POST", "/v1/transit/keys/k/rotate", http.StatusForbidden},
		{"POST", "/v1/transit/rewrap/k", http.StatusForbidden},
		{"GET", "/v1/auth/token/lookup-self", http.StatusForbidden}, // no default policy
		{"GET", "/v1/transit/nothing-here", http.StatusForbidden},
	} {
		if st, _ := do(t, s, c.method, c.path, tok, nil); st != c.want {
			t.Errorf("%s %s = %d, want %d", c.method, c.path, st, c.want)
		}
	}
	if st, body := do(t, s, "GET", "/v1/transit/nothing-here", s.RootToken, nil); st != http.StatusNotFound {
		t.Errorf("unknown route as root = %d %v, want 404", st, body)
	}
}

func TestPolicyParsing(t *testing.T) {
	for _, bad := range []string{
		`path "a" { capabilities = ["fly"] }`,
		`path "a" { capabilties = ["read"] }`,
		`path "a*b" { capabilities = ["read"] }`,
		`not hcl {`,
	} {
		if err := New(t, Options{}).SetPolicy("p", bad); err == nil {
			t.Errorf("SetPolicy(%q) succeeded", bad)
		}
	}
}

func TestMountsAndPolicies(t *testing.T) {
	s := New(t, Options{NoMount: true})
	if st, _ := do(t, s, "GET", "/v1/sys/mounts/transit", s.RootToken, nil); st != http.StatusBadRequest {
		t.Errorf("missing mount = %d, want 400", st)
	}
	if st, _ := do(t, s, "POST", "/v1/sys/mounts/transit", s.RootToken, map[string]any{"type": "transit"}); st != http.StatusNoContent {
		t.Errorf("enable = %d, want 204", st)
	}
	if st, body := do(t, s, "POST", "/v1/sys/mounts/transit", s.RootToken, map[string]any{"type": "transit"}); st != http.StatusBadRequest || errorsOf(body) != `["path is already in use at transit/"]` {
		t.Errorf("enable twice = %d %v", st, body)
	}
	st, body := do(t, s, "PUT", "/v1/sys/policies/acl/p", s.RootToken, map[string]any{"policy": `path "x" { capabilities = ["read"] }`})
	if st != http.StatusNoContent {
		t.Errorf("write policy = %d %v", st, body)
	}
	if src, ok := s.Policy("p"); !ok || !strings.Contains(src, `path "x"`) {
		t.Errorf("Policy(p) = %q, %v", src, ok)
	}
}

func TestKeyDeletionRefused(t *testing.T) {
	s := New(t, Options{})
	if err := s.CreateKey("transit", "k"); err != nil {
		t.Fatal(err)
	}
	st, body := do(t, s, "DELETE", "/v1/transit/keys/k", s.RootToken, nil)
	if st != http.StatusBadRequest || errorsOf(body) != `["deletion is not allowed for this key"]` {
		t.Errorf("delete = %d %v", st, body)
	}
}

func TestBatchDecryptPartialFailure(t *testing.T) {
	s := New(t, Options{})
	_, body := do(t, s, "POST", "/v1/transit/encrypt/k", s.RootToken, map[string]any{"plaintext": "aGk="})
	ct := body["data"].(map[string]any)["ciphertext"]
	st, body := do(t, s, "POST", "/v1/transit/decrypt/k", s.RootToken, map[string]any{
		"batch_input": []any{map[string]any{"ciphertext": ct, "reference": "a"}, map[string]any{"ciphertext": "garbage", "reference": "b"}},
	})
	if st != http.StatusBadRequest {
		t.Fatalf("status = %d, want 400", st)
	}
	res := body["data"].(map[string]any)["batch_results"].([]any)
	if r0 := res[0].(map[string]any); r0["plaintext"] != "aGk=" || r0["reference"] != "a" {
		t.Errorf("good item = %v", r0)
	}
	if r1 := res[1].(map[string]any); r1["error"] != "invalid ciphertext: no prefix" || r1["plaintext"] != "" {
		t.Errorf("bad item = %v", r1)
	}
}
