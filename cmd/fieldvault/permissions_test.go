package main

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestPermissions checks role enforcement over HTTP and key revocation.
func TestPermissions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startDev(t)
	fx := setupBadFixture(t, s)
	admin := s.root()

	keys := map[string]string{}
	for principal, role := range map[string]string{"auditor-1": "auditor", "security-1": "security", "service-1": "service"} {
		res, err := admin.CreateAPIKey(ctx, principal, role)
		if err != nil {
			t.Fatalf("create %s key: %v", role, err)
		}
		if res.Key == "" || res.Principal != principal {
			t.Fatalf("create %s key: %+v", role, res)
		}
		keys[role] = res.Key
	}

	tokBody := jsonBytes(t, map[string]any{"items": []any{
		map[string]any{"category": "identity.name", "value": "Perm Test", "subject": badSubjectA}}})
	detBody := jsonBytes(t, marketingRequest(fx.consentA, fx.tokA))
	keyBody := jsonBytes(t, map[string]any{"principal": "sneaky-1", "roles": []string{"admin"}})

	expect := func(name string, r response, status int, code string) {
		t.Helper()
		if r.status != status {
			t.Errorf("%s: status %d, want %d: %s", name, r.status, status, r)
			return
		}
		if code != "" {
			if e := apiError(t, r); e.Error.Code != code {
				t.Errorf("%s: code %q, want %q", name, e.Error.Code, code)
			}
		}
	}
	for _, role := range []string{"auditor", "security"} {
		k := keys[role]
		expect(role+" detokenize", s.do(http.MethodPost, "/v1/detokenize", k, "application/json", detBody), 403, "FORBIDDEN")
		expect(role+" tokenize", s.do(http.MethodPost, "/v1/tokenize", k, "application/json", tokBody), 403, "FORBIDDEN")
		expect(role+" create API key", s.do(http.MethodPost, "/v1/auth/keys", k, "application/json", keyBody), 403, "FORBIDDEN")
		expect(role+" revoke API key", s.do(http.MethodDelete, "/v1/auth/keys/service-1", k, "", nil), 403, "FORBIDDEN")
	}
	svc := keys["service"]
	expect("service create API key", s.do(http.MethodPost, "/v1/auth/keys", svc, "application/json", keyBody), 403, "FORBIDDEN")
	// The non-admin attempts created nothing: the principal has no key to revoke.
	expect("revoke the never-created key", s.do(http.MethodDelete, "/v1/auth/keys/sneaky-1", e2eRootToken, "", nil), 404, "NOT_FOUND")

	// The service key works (a positive control for the denials above).
	expect("service tokenize", s.do(http.MethodPost, "/v1/tokenize", svc, "application/json", tokBody), 200, "")
	r := s.do(http.MethodPost, "/v1/detokenize", svc, "application/json", detBody)
	expect("service detokenize", r, 200, "")

	n, err := admin.RevokeAPIKeys(ctx, "service-1")
	if err != nil || n != 1 {
		t.Fatalf("revoke: %d, %v", n, err)
	}
	// A revoked key stops working within the cache TTL (2 s): poll.
	deadline := time.Now().Add(3 * time.Second)
	for {
		r := s.do(http.MethodPost, "/v1/tokenize", svc, "application/json", tokBody)
		if r.status == http.StatusUnauthorized {
			expect("revoked key", r, 401, "UNAUTHORIZED")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revoked key still works 3 s after revocation: %s", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	expect("revoked key detokenize", s.do(http.MethodPost, "/v1/detokenize", svc, "application/json", detBody), 401, "UNAUTHORIZED")
	// The other keys still work.
	expect("auditor after another key's revocation", s.do(http.MethodPost, "/v1/tokenize", keys["auditor"], "application/json", tokBody), 403, "FORBIDDEN")
	expect("revoke again", s.do(http.MethodDelete, "/v1/auth/keys/service-1", e2eRootToken, "", nil), 404, "NOT_FOUND")
}
