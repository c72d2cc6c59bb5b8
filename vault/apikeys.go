package vault

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/fieldvault/fieldvault/vault/audit"
	"github.com/fieldvault/fieldvault/vault/store"
)

// API keys are random 32-character base62 secrets with the prefix "fvk_",
// shown once at creation. The store keeps only their SHA-256 (the keys have
// ~190 bits of entropy, so a plain hash is not brute-forceable), as the id of
// an "apikey" record indexed by principal.
const apiKeyPrefix = "fvk_"

type apiKeyRecord struct {
	Principal string    `json:"principal"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

type cachedPrincipal struct {
	p       *Principal
	expires time.Time
}

// apiKeyCacheTTL bounds how long a revoked key keeps working on a replica
// other than the one that revoked it.
const apiKeyCacheTTL = 2 * time.Second

func hashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func newAPIKey() string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var b [64]byte
	out := make([]byte, 0, len(apiKeyPrefix)+32)
	out = append(out, apiKeyPrefix...)
	for len(out) < len(apiKeyPrefix)+32 {
		if _, err := rand.Read(b[:]); err != nil {
			panic("vault: crypto/rand failed: " + err.Error())
		}
		for _, c := range b {
			if c < 248 && len(out) < len(apiKeyPrefix)+32 { // 248 = 4*62: unbiased
				out = append(out, alphabet[c%62])
			}
		}
	}
	return string(out)
}

// Authenticate maps a bearer API key to its principal. Unknown keys are
// KindUnauthorized. The key itself never reaches a log or an error.
func (v *Vault) Authenticate(ctx context.Context, key string) (*Principal, error) {
	if len(key) < 8 || len(key) > 256 {
		return nil, errorf(KindUnauthorized, CodeUnauthorized, "missing or invalid API key")
	}
	h := hashAPIKey(key)
	now := v.now()
	if c, ok := v.apikeyCache.Load(h); ok {
		cp := c.(*cachedPrincipal)
		if now.Before(cp.expires) {
			return cp.p, nil
		}
	}
	var rec apiKeyRecord
	_, err := v.loadRecord(ctx, kindAPIKey, h, &rec)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(KindUnauthorized, CodeUnauthorized, "missing or invalid API key")
	}
	if err != nil {
		return nil, asStoreErr(err)
	}
	p := &Principal{Name: rec.Principal, Roles: rec.Roles}
	v.apikeyCache.Store(h, &cachedPrincipal{p: p, expires: now.Add(apiKeyCacheTTL)})
	return p, nil
}

// CreateAPIKeyRequest names the principal and its roles.
type CreateAPIKeyRequest struct {
	Principal string   `json:"principal"`
	Roles     []string `json:"roles"`
}

// CreateAPIKeyResult carries the new key, shown once.
type CreateAPIKeyResult struct {
	Principal string   `json:"principal"`
	Roles     []string `json:"roles"`
	Key       string   `json:"key"`
}

func validPrincipal(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.@:", c)) {
			return false
		}
	}
	return true
}

// CreateAPIKey creates a key for a principal (admin only).
func (v *Vault) CreateAPIKey(ctx context.Context, p *Principal, req *CreateAPIKeyRequest) (*CreateAPIKeyResult, error) {
	if !v.authz.Can(p, OpAPIKeys) {
		return nil, errorf(KindForbidden, CodeForbidden, "only an admin may create API keys")
	}
	return v.createAPIKey(ctx, p.Name, req, "")
}

func (v *Vault) createAPIKey(ctx context.Context, by string, req *CreateAPIKeyRequest, fixed string) (*CreateAPIKeyResult, error) {
	if !validPrincipal(req.Principal) {
		return nil, errorf(KindInvalid, CodeInvalidRequest, "principal must be 1-128 characters of letters, digits and -_.@:")
	}
	if len(req.Roles) == 0 {
		return nil, errorf(KindInvalid, CodeInvalidRequest, "roles is empty")
	}
	for _, r := range req.Roles {
		if _, ok := v.authz.roles[r]; !ok {
			return nil, errorf(KindInvalid, CodeInvalidRequest, "unknown role %q", r)
		}
	}
	key := fixed
	if key == "" {
		key = newAPIKey()
	}
	now := v.now().UTC()
	rec := apiKeyRecord{Principal: req.Principal, Roles: slices.Clone(req.Roles), CreatedAt: now, CreatedBy: by}
	if _, err := v.saveRecord(ctx, kindAPIKey, hashAPIKey(key), req.Principal, rec, 0); err != nil {
		return nil, err
	}
	if err := v.adminAudit(ctx, "apikey.create", "", "", map[string]string{
		"principal": req.Principal, "roles": strings.Join(req.Roles, ","), "by": by}); err != nil {
		return nil, err
	}
	return &CreateAPIKeyResult{Principal: req.Principal, Roles: rec.Roles, Key: key}, nil
}

// RevokeAPIKeys deletes every key of a principal (admin only) and returns
// how many were deleted.
func (v *Vault) RevokeAPIKeys(ctx context.Context, p *Principal, principal string) (int, error) {
	if !v.authz.Can(p, OpAPIKeys) {
		return 0, errorf(KindForbidden, CodeForbidden, "only an admin may revoke API keys")
	}
	recs, err := v.store.ListByIndex(ctx, kindAPIKey, principal)
	if err != nil {
		return 0, storeErr(err)
	}
	if len(recs) == 0 {
		return 0, errorf(KindNotFound, CodeNotFound, "no API keys for that principal")
	}
	for _, r := range recs {
		if err := v.store.DeleteRecord(ctx, kindAPIKey, r.ID); err != nil {
			return 0, storeErr(err)
		}
		v.apikeyCache.Delete(r.ID)
	}
	if err := v.adminAudit(ctx, "apikey.revoke", "", "", map[string]string{"principal": principal, "by": p.Name}); err != nil {
		return 0, err
	}
	return len(recs), nil
}

// EnsureAdminKey creates an admin API key for principal "admin" when the
// store has no API key at all (first run), and returns it. With fixed set
// (the dev root token), that key is used and is created if missing even when
// other keys exist. created is false when nothing was created.
func (v *Vault) EnsureAdminKey(ctx context.Context, fixed string) (key string, created bool, err error) {
	if fixed != "" {
		if len(fixed) < 8 {
			return "", false, errors.New("vault: the dev root token must be at least 8 characters")
		}
		if _, err := v.Authenticate(ctx, fixed); err == nil {
			return fixed, false, nil
		}
		res, err := v.createAPIKey(ctx, "bootstrap", &CreateAPIKeyRequest{Principal: "root", Roles: []string{"admin"}}, fixed)
		if err != nil {
			return "", false, err
		}
		return res.Key, true, nil
	}
	recs, err := v.store.ListRecords(ctx, kindAPIKey)
	if err != nil {
		return "", false, storeErr(err)
	}
	if len(recs) > 0 {
		return "", false, nil
	}
	res, err := v.createAPIKey(ctx, "bootstrap", &CreateAPIKeyRequest{Principal: "admin", Roles: []string{"admin"}}, "")
	if err != nil {
		return "", false, err
	}
	return res.Key, true, nil
}

// adminAudit records an administrative action. Identifiers go in as Refs;
// details must hold no values or subject ids.
func (v *Vault) adminAudit(ctx context.Context, action, target, subjectID string, details map[string]string) error {
	now := v.now()
	rec := &audit.Record{
		Type:    audit.TypeAdmin,
		Time:    now.UTC(),
		TimeICT: now.In(ict).Format(time.RFC3339),
		Action:  action,
		Details: details,
	}
	if target != "" {
		rec.Target = v.audit.Ref(target)
	}
	if subjectID != "" {
		rec.Subject = v.audit.Ref(subjectID)
	}
	if err := v.audit.Append(ctx, rec); err != nil {
		return wrapErr(KindUnavailable, CodeAuditUnavailable, "the audit log is unavailable", err)
	}
	return nil
}

// principalJSON is used by tests and the CLI.
func (p *Principal) String() string {
	b, _ := json.Marshal(struct {
		Name  string   `json:"name"`
		Roles []string `json:"roles"`
	}{p.Name, p.Roles})
	return string(b)
}
