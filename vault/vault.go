// Package vault is the fieldvault service: tokenise and detokenise batches,
// and the lifecycle of subjects, consents, evidence and API keys.
//
// # Security properties
//
//   - Deny by default: a value leaves Detokenize only when the decision
//     engine (package policy) allowed it on evidence the vault looked up in
//     its own store, and only after the decision's audit record was
//     committed. If the audit write fails, nothing is released
//     (AUDIT_UNAVAILABLE).
//   - A token's category and subject come from its stored row, never from the
//     caller.
//   - Consent status and subject state are read from the store on every
//     decision: no allow is cached, so a withdrawal takes effect on the next
//     call, on every replica.
//   - Errors returned to callers carry a stable code and a message that never
//     contains a value, a token, a key or a subject identifier.
package vault

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldvault/fieldvault/keys"
	"github.com/fieldvault/fieldvault/keys/kek"
	"github.com/fieldvault/fieldvault/vault/audit"
	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/store"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// AuditLog is what the vault needs from the audit log.
type AuditLog interface {
	audit.Appender
	Ref(id string) audit.Ref
}

// MaxBatchLimit is the largest Limits.MaxBatch: the audit record of a
// detokenise of that many tokens still fits in audit.MaxEntryBytes.
const MaxBatchLimit = 20000

// Limits bound request sizes.
type Limits struct {
	// MaxBatch is the largest number of items or tokens in one request.
	// Default 10000.
	MaxBatch int
}

// Config configures a Vault.
type Config struct {
	Store  store.Store
	Keys   *keys.Keyring
	Policy *policy.Policy
	Audit  AuditLog
	// AuditSource is this replica's audit chain, read for data-subject
	// access reports when AuditChains is nil; may be nil.
	AuditSource audit.Source
	// AuditChains lists every audit chain an access report must read, by
	// node: with a log shared by several replicas (the Redis stream sink)
	// each replica keeps its own chain, and a report that read only one
	// would be incomplete. May be nil.
	AuditChains AuditChains
	Roles       Roles
	Limits      Limits
	// Node names this replica in audit records.
	Node   string
	Logger *slog.Logger
	// Now is the clock; default time.Now. Every time-dependent rule uses it.
	Now func() time.Time
	// Observer receives events for metrics; may be nil.
	Observer Observer
	// KEK is the key-encryption key, for rotate-kek; may be nil.
	KEK kek.KEK
	// AfterKEKRotate re-wraps secrets the server keeps outside the keyring
	// after a KEK rotation; may be nil.
	AfterKEKRotate KEKRotator
	// KEKName names the KEK backend in error messages ("Vault Transit",
	// "the local key file"); default "the KEK".
	KEKName string
}

// Observer receives counts for metrics. Implementations must be cheap and
// must never receive values, tokens or subject ids.
type Observer interface {
	Tokenized(category string, outcome string, n int)
	Detokenized(category string, outcome string, n int)
	Decision(purpose, ground, decision, reason string, n int)
}

type nopObserver struct{}

func (nopObserver) Tokenized(string, string, int)                {}
func (nopObserver) Detokenized(string, string, int)              {}
func (nopObserver) Decision(string, string, string, string, int) {}

// Vault is the service. Safe for concurrent use.
type Vault struct {
	store  store.Store
	keys   *keys.Keyring
	engine atomic.Pointer[policy.Engine]
	pol    atomic.Pointer[policy.Policy]
	audit  AuditLog
	chains AuditChains
	authz  *authorizer
	limits Limits
	node   string
	log    *slog.Logger
	now    func() time.Time
	obs    Observer

	apikeyCache sync.Map // sha256 hex -> *cachedPrincipal

	subjects decodeCache[subject.Subject]
	consents decodeCache[consent.Consent]
	// consentHashes memoises the consent hash of audit snapshots.
	consentHashes hashCache
	evidence      decodeCache[policy.Evidence]

	kek            kek.KEK
	kekName        string
	afterKEKRotate KEKRotator
	jobs           jobRunner
}

// New builds a Vault. It does no I/O.
func New(cfg Config) (*Vault, error) {
	if cfg.Store == nil || cfg.Keys == nil || cfg.Audit == nil {
		return nil, errors.New("vault: Store, Keys and Audit are required")
	}
	if cfg.Policy == nil {
		cfg.Policy = policy.Default()
	}
	eng, err := policy.New(cfg.Policy)
	if err != nil {
		return nil, fmt.Errorf("vault: policy: %w", err)
	}
	if cfg.Roles == nil {
		cfg.Roles = DefaultRoles()
	}
	if err := cfg.Roles.Validate(); err != nil {
		return nil, fmt.Errorf("vault: roles: %w", err)
	}
	if cfg.Limits.MaxBatch <= 0 {
		cfg.Limits.MaxBatch = 10000
	}
	if cfg.Limits.MaxBatch > MaxBatchLimit {
		return nil, fmt.Errorf("vault: max batch %d: at most %d (a detokenise decision is one audit record, of at most %d bytes)",
			cfg.Limits.MaxBatch, MaxBatchLimit, audit.MaxEntryBytes)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.KEKName == "" {
		cfg.KEKName = "the KEK"
	}
	if cfg.AuditChains == nil && cfg.AuditSource != nil {
		src, node := cfg.AuditSource, cfg.Node
		cfg.AuditChains = func(context.Context) (map[string]audit.Source, error) {
			return map[string]audit.Source{node: src}, nil
		}
	}
	v := &Vault{
		store:  cfg.Store,
		keys:   cfg.Keys,
		audit:  cfg.Audit,
		chains: cfg.AuditChains,
		authz:  &authorizer{roles: cfg.Roles},
		limits: cfg.Limits,
		node:   cfg.Node,
		log:    cfg.Logger,
		now:    cfg.Now,
		obs:    cfg.Observer,

		kek:            cfg.KEK,
		kekName:        cfg.KEKName,
		afterKEKRotate: cfg.AfterKEKRotate,
	}
	v.engine.Store(eng)
	v.pol.Store(cfg.Policy)
	return v, nil
}

// Policy returns the policy in force.
func (v *Vault) Policy() *policy.Policy { return v.pol.Load() }

// Roles returns the role table.
func (v *Vault) Roles() Roles { return v.authz.roles }

// Ready reports whether the store answers.
func (v *Vault) Ready(ctx context.Context) error {
	if err := v.store.Ping(ctx); err != nil {
		return storeErr(err)
	}
	return nil
}

// storeErr turns a store failure into an API error.
func storeErr(err error) *Error {
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrClosed) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return wrapErr(KindUnavailable, CodeStoreUnavailable, "the token store is unavailable", err)
	}
	return wrapErr(KindInternal, CodeInternal, "internal error", err)
}

// keysErr turns a keyring failure into an API error.
func keysErr(err error) *Error {
	switch {
	case errors.Is(err, keys.ErrStorage):
		return storeErr(err)
	case errors.Is(err, keys.ErrKEK):
		return wrapErr(KindUnavailable, CodeKEKUnavailable,
			"the key-encryption key is unavailable; keys already loaded keep serving", err)
	}
	return wrapErr(KindInternal, CodeInternal, "internal error", err)
}

// kekErr is keysErr naming the KEK backend (for key management calls).
func (v *Vault) kekErr(err error) *Error {
	e := keysErr(err)
	if e.Code == CodeKEKUnavailable {
		e.Message = "the key-encryption key (" + v.kekName + ") is unavailable; keys already loaded keep serving"
	}
	return e
}

// newID returns a prefixed, time-ordered, unguessable identifier:
// prefix + 26 base32 characters (48-bit millisecond time, 80 random bits).
func newID(prefix string, now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic("vault: crypto/rand failed: " + err.Error())
	}
	const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	out := make([]byte, 0, len(prefix)+26)
	out = append(out, prefix...)
	var acc uint64
	bits := 0
	for _, c := range b {
		acc = acc<<8 | uint64(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out = append(out, alphabet[(acc>>bits)&31])
		}
	}
	if bits > 0 {
		out = append(out, alphabet[(acc<<(5-bits))&31])
	}
	return string(out)
}

// keyStorage adapts store.Store to keys.Storage.
type keyStorage struct{ s store.Store }

// KeyStorage returns the keys.Storage view of a store, for building the
// keyring.
func KeyStorage(s store.Store) keys.Storage { return keyStorage{s} }

const kindKeyset = "keyset"

func (k keyStorage) LoadKeyset(ctx context.Context, category string) ([]byte, uint64, error) {
	rec, err := k.s.GetRecord(ctx, kindKeyset, category)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	return rec.Value, rec.Rev, nil
}

func (k keyStorage) SaveKeyset(ctx context.Context, category string, doc []byte, expectRev uint64) (uint64, error) {
	rev, err := k.s.PutRecord(ctx, store.Record{Kind: kindKeyset, ID: category, Value: doc}, expectRev)
	if errors.Is(err, store.ErrConflict) {
		return 0, keys.ErrConflict
	}
	return rev, err
}

func toStoreRefs(refs []keys.DEKRef) []store.SubjectKeyRef {
	out := make([]store.SubjectKeyRef, len(refs))
	for i, r := range refs {
		out[i] = store.SubjectKeyRef(r)
	}
	return out
}

func (k keyStorage) GetSubjectKeys(ctx context.Context, refs []keys.DEKRef) ([][]byte, error) {
	return k.s.GetSubjectKeys(ctx, toStoreRefs(refs))
}

func (k keyStorage) InsertSubjectKeys(ctx context.Context, refs []keys.DEKRef, wrapped [][]byte) ([][]byte, error) {
	return k.s.InsertSubjectKeys(ctx, toStoreRefs(refs), wrapped)
}
