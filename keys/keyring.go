package keys

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/fieldvault/fieldvault/keys/kek"
	"github.com/fieldvault/fieldvault/tokenizer"
)

// Sentinel errors.
var (
	// ErrConflict is returned by Storage.SaveKeyset when the stored revision
	// moved; the keyring reloads and retries.
	ErrConflict = errors.New("keys: keyset changed concurrently")
	// ErrUnknownVersion: a value or DEK names a version the keyset does not
	// have (destroyed, or never existed).
	ErrUnknownVersion = errors.New("keys: unknown key version")
	// ErrVersionNotUsable: the version exists but is disabled or destroyed.
	ErrVersionNotUsable = errors.New("keys: key version disabled or destroyed")
	// ErrKEK wraps KEK failures (start-up and rotation only).
	ErrKEK = errors.New("keys: KEK failure")
	// ErrStorage wraps storage failures.
	ErrStorage = errors.New("keys: storage failure")
	// ErrCorrupt: a stored keyset or DEK does not decrypt or parse.
	ErrCorrupt = errors.New("keys: stored key material is corrupt")
)

// Storage is what the keyring needs from the vault's store. Every write must
// be durable when it returns.
type Storage interface {
	// LoadKeyset returns the stored keyset document and its revision, or
	// (nil, 0, nil) when the category has none yet.
	LoadKeyset(ctx context.Context, category string) ([]byte, uint64, error)
	// SaveKeyset stores doc if the revision is still expectRev (0: absent)
	// and returns the new revision, or ErrConflict.
	SaveKeyset(ctx context.Context, category string, doc []byte, expectRev uint64) (uint64, error)
	// GetSubjectKeys returns one wrapped DEK per ref, nil where absent.
	GetSubjectKeys(ctx context.Context, refs []DEKRef) ([][]byte, error)
	// InsertSubjectKeys stores each absent ref and returns what is stored
	// afterwards (ours, or another writer's).
	InsertSubjectKeys(ctx context.Context, refs []DEKRef, wrapped [][]byte) ([][]byte, error)
}

// Config configures a Keyring.
type Config struct {
	KEK     kek.KEK
	Storage Storage
	// CacheSize bounds the number of unwrapped DEKs kept in memory.
	// Default 200000.
	CacheSize int
	// CacheTTL bounds how long an unwrapped DEK is used without re-reading
	// it from storage (and so how long a DEK shredded by another replica
	// may still be used here). Default 5 minutes.
	CacheTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Version states.
const (
	StateEnabled   = "enabled"
	StateDisabled  = "disabled"
	StateDestroyed = "destroyed"
)

// VersionInfo describes one key version of a category.
type VersionInfo struct {
	Version   uint32    `json:"version"`
	KeyID     uint32    `json:"key_id"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
}

// KeysetInfo describes a category's keyset, without key material.
type KeysetInfo struct {
	Category  string        `json:"category"`
	Primary   uint32        `json:"primary"`
	Versions  []VersionInfo `json:"versions"`
	CreatedAt time.Time     `json:"created_at"`
	RotatedAt time.Time     `json:"rotated_at,omitzero"`
	// AutoRotate is the automatic rotation period, 0 for none.
	AutoRotate Duration `json:"auto_rotate_period,omitempty"`
}

// keysetDoc is the stored form of a category keyset.
type keysetDoc struct {
	Format     int    `json:"format"`
	CategoryID uint16 `json:"category_id"`
	KeysetInfo
	// AEAD and PRF are Tink EncryptedKeyset messages, wrapped by the KEK
	// with associated data naming the category and the keyset's role.
	AEAD []byte `json:"aead"`
	PRF  []byte `json:"prf"`
}

// catKeys is the unwrapped, cached form of one category's keysets.
type catKeys struct {
	doc     keysetDoc
	rev     uint64
	handle  *keyset.Handle
	aead    tink.AEAD
	prf     prf.PRF
	byKeyID map[uint32]uint32
	state   map[uint32]string
	// fp holds keyed HMAC-SHA256 states for fingerprints, under a key the
	// category PRF derives once (see Fingerprint).
	fp *sync.Pool
}

// Keyring manages the category keysets and subject DEKs. Safe for concurrent
// use.
type Keyring struct {
	kek     kek.KEK
	storage Storage
	now     func() time.Time
	ttl     time.Duration
	cache   *dekCache

	mu   sync.Mutex // serialises loads and rotations
	cats sync.Map   // uint16 -> *catKeys
}

// New returns a keyring. It does no I/O.
func New(cfg Config) (*Keyring, error) {
	if cfg.KEK == nil || cfg.Storage == nil {
		return nil, errors.New("keys: KEK and Storage are required")
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 200000
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Keyring{
		kek:     cfg.KEK,
		storage: cfg.Storage,
		now:     cfg.Now,
		ttl:     cfg.CacheTTL,
		cache:   newDEKCache(cfg.CacheSize, cfg.CacheTTL),
	}, nil
}

// kekAEAD adapts a kek.KEK to Tink's keyset encryption interface.
type kekAEAD struct{ k kek.KEK }

func (a kekAEAD) EncryptWithContext(ctx context.Context, pt, ad []byte) ([]byte, error) {
	return a.k.Wrap(ctx, pt, ad)
}

func (a kekAEAD) DecryptWithContext(ctx context.Context, ct, ad []byte) ([]byte, error) {
	return a.k.Unwrap(ctx, ct, ad)
}

func keysetAAD(role, category string) []byte {
	return []byte("fieldvault/keyset/v1/" + role + "/" + category)
}

func writeKeyset(ctx context.Context, k kek.KEK, h *keyset.Handle, role, category string) ([]byte, error) {
	var buf bytes.Buffer
	if err := h.WriteWithContext(ctx, keyset.NewBinaryWriter(&buf), kekAEAD{k}, keysetAAD(role, category)); err != nil {
		return nil, fmt.Errorf("%w: wrapping the %s keyset of %s: %w", ErrKEK, role, category, err)
	}
	return buf.Bytes(), nil
}

func readKeyset(ctx context.Context, k kek.KEK, data []byte, role, category string) (*keyset.Handle, error) {
	h, err := keyset.ReadWithContext(ctx, keyset.NewBinaryReader(bytes.NewReader(data)), kekAEAD{k}, keysetAAD(role, category))
	if err != nil {
		if errors.Is(err, kek.ErrInvalidCiphertext) {
			return nil, fmt.Errorf("%w: the %s keyset of %s does not unwrap with this KEK", ErrCorrupt, role, category)
		}
		return nil, fmt.Errorf("%w: unwrapping the %s keyset of %s: %w", ErrKEK, role, category, err)
	}
	return h, nil
}

// category returns the cached keys of cat, loading or creating them.
func (k *Keyring) category(ctx context.Context, cat *tokenizer.Category) (*catKeys, error) {
	if v, ok := k.cats.Load(cat.ID); ok {
		return v.(*catKeys), nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if v, ok := k.cats.Load(cat.ID); ok {
		return v.(*catKeys), nil
	}
	ck, err := k.loadOrCreate(ctx, cat)
	if err != nil {
		return nil, err
	}
	k.cats.Store(cat.ID, ck)
	return ck, nil
}

// reload re-reads cat from storage (after another replica rotated it).
func (k *Keyring) reload(ctx context.Context, cat *tokenizer.Category) (*catKeys, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ck, err := k.loadOrCreate(ctx, cat)
	if err != nil {
		return nil, err
	}
	k.cats.Store(cat.ID, ck)
	return ck, nil
}

func (k *Keyring) loadOrCreate(ctx context.Context, cat *tokenizer.Category) (*catKeys, error) {
	for attempt := 0; attempt < 3; attempt++ {
		data, rev, err := k.storage.LoadKeyset(ctx, cat.Name)
		if err != nil {
			return nil, fmt.Errorf("%w: loading the keyset of %s: %w", ErrStorage, cat.Name, err)
		}
		if data != nil {
			return k.open(ctx, cat, data, rev)
		}
		doc, err := k.create(ctx, cat)
		if err != nil {
			return nil, err
		}
		raw, err := json.Marshal(doc)
		if err != nil {
			return nil, err
		}
		rev, err = k.storage.SaveKeyset(ctx, cat.Name, raw, 0)
		if errors.Is(err, ErrConflict) {
			continue // another writer created it first: load theirs
		}
		if err != nil {
			return nil, fmt.Errorf("%w: saving the keyset of %s: %w", ErrStorage, cat.Name, err)
		}
		return k.open(ctx, cat, raw, rev)
	}
	return nil, fmt.Errorf("%w: keyset of %s kept changing", ErrConflict, cat.Name)
}

func (k *Keyring) create(ctx context.Context, cat *tokenizer.Category) (*keysetDoc, error) {
	ah, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return nil, err
	}
	ph, err := keyset.NewHandle(prf.HMACSHA256PRFKeyTemplate())
	if err != nil {
		return nil, err
	}
	primary, err := ah.Primary()
	if err != nil {
		return nil, err
	}
	now := k.now().UTC()
	doc := &keysetDoc{Format: 1, CategoryID: cat.ID, KeysetInfo: KeysetInfo{
		Category:  cat.Name,
		Primary:   1,
		Versions:  []VersionInfo{{Version: 1, KeyID: primary.KeyID(), State: StateEnabled, CreatedAt: now}},
		CreatedAt: now,
	}}
	if doc.AEAD, err = writeKeyset(ctx, k.kek, ah, "aead", cat.Name); err != nil {
		return nil, err
	}
	if doc.PRF, err = writeKeyset(ctx, k.kek, ph, "prf", cat.Name); err != nil {
		return nil, err
	}
	return doc, nil
}

func (k *Keyring) open(ctx context.Context, cat *tokenizer.Category, raw []byte, rev uint64) (*catKeys, error) {
	var doc keysetDoc
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Format != 1 || doc.CategoryID != cat.ID {
		return nil, fmt.Errorf("%w: keyset document of %s", ErrCorrupt, cat.Name)
	}
	ah, err := readKeyset(ctx, k.kek, doc.AEAD, "aead", cat.Name)
	if err != nil {
		return nil, err
	}
	ph, err := readKeyset(ctx, k.kek, doc.PRF, "prf", cat.Name)
	if err != nil {
		return nil, err
	}
	a, err := aead.New(ah)
	if err != nil {
		return nil, fmt.Errorf("%w: AEAD keyset of %s: %v", ErrCorrupt, cat.Name, err)
	}
	ps, err := prf.NewPRFSet(ph)
	if err != nil {
		return nil, fmt.Errorf("%w: PRF keyset of %s: %v", ErrCorrupt, cat.Name, err)
	}
	p, ok := ps.PRFs[ps.PrimaryID]
	if !ok {
		return nil, fmt.Errorf("%w: PRF keyset of %s has no primary", ErrCorrupt, cat.Name)
	}
	fpKey, err := p.ComputePRF([]byte("fieldvault/fingerprint-key/v1"), 32)
	if err != nil {
		return nil, fmt.Errorf("%w: PRF keyset of %s: %v", ErrCorrupt, cat.Name, err)
	}
	ck := &catKeys{doc: doc, rev: rev, handle: ah, aead: a, prf: p,
		byKeyID: make(map[uint32]uint32), state: make(map[uint32]string),
		fp: &sync.Pool{New: func() any { return hmac.New(sha256.New, fpKey) }}}
	for _, v := range doc.Versions {
		ck.byKeyID[v.KeyID] = v.Version
		ck.state[v.Version] = v.State
	}
	if ck.state[doc.Primary] != StateEnabled {
		return nil, fmt.Errorf("%w: primary version of %s is not enabled", ErrCorrupt, cat.Name)
	}
	return ck, nil
}

// Primary returns the primary key version of cat, loading or creating its
// keyset on first use.
func (k *Keyring) Primary(ctx context.Context, cat *tokenizer.Category) (uint32, error) {
	ck, err := k.category(ctx, cat)
	if err != nil {
		return 0, err
	}
	return ck.doc.Primary, nil
}

// FingerprintLen is the length of fingerprints in bytes (128 bits: the
// birthday bound is far beyond any realistic number of values).
const FingerprintLen = 16

// Fingerprint returns the keyed fingerprint of a normalised value:
// HMAC-SHA256 under a key that the category's Tink PRF (primary key)
// derives once, truncated to FingerprintLen. Equal values of one category
// give equal fingerprints; fingerprints of different categories are
// unrelated. Deriving the HMAC key once lets keyed hash states be reused
// (Tink's PRF re-keys on every call). Warning: a fingerprint reveals
// equality of values to anyone who sees two of them; it is stored, never
// returned.
func (k *Keyring) Fingerprint(ctx context.Context, cat *tokenizer.Category, normalized string) ([]byte, error) {
	ck, err := k.category(ctx, cat)
	if err != nil {
		return nil, err
	}
	h := ck.fp.Get().(hash.Hash)
	h.Reset()
	_, _ = io.WriteString(h, normalized)
	var sum [sha256.Size]byte
	out := h.Sum(sum[:0])
	ck.fp.Put(h)
	return bytes.Clone(out[:FingerprintLen]), nil
}

func dekAAD(ref DEKRef) []byte {
	b := make([]byte, 0, 32+len(ref.Subject))
	b = append(b, "fieldvault/dek/v1\x00"...)
	b = binary.BigEndian.AppendUint16(b, ref.Category)
	b = binary.BigEndian.AppendUint32(b, ref.Version)
	b = append(b, ref.Subject...)
	return b
}

// DEKs returns one DEK per ref (refs may repeat). Absent DEKs are created
// when create is true, which is allowed only for the category's primary
// version; otherwise their entry is nil. cats maps category ids to
// categories for every ref.
func (k *Keyring) DEKs(ctx context.Context, refs []DEKRef, create bool) ([]*DEK, error) {
	out := make([]*DEK, len(refs))
	now := k.now()
	var missIdx []int
	for i, r := range refs {
		if d := k.cache.get(r, now); d != nil {
			out[i] = d
			continue
		}
		missIdx = append(missIdx, i)
	}
	if len(missIdx) == 0 {
		return out, nil
	}
	// Deduplicate the misses.
	uniq := make([]DEKRef, 0, len(missIdx))
	pos := make(map[DEKRef]int, len(missIdx))
	for _, i := range missIdx {
		if _, ok := pos[refs[i]]; !ok {
			pos[refs[i]] = len(uniq)
			uniq = append(uniq, refs[i])
		}
	}
	wrapped, err := k.storage.GetSubjectKeys(ctx, uniq)
	if err != nil {
		return nil, fmt.Errorf("%w: reading subject keys: %w", ErrStorage, err)
	}
	deks := make([]*DEK, len(uniq))
	var absent []int
	for j, w := range wrapped {
		if w == nil {
			absent = append(absent, j)
			continue
		}
		d, err := k.unwrapDEK(ctx, uniq[j], w, now)
		if err != nil {
			return nil, err
		}
		deks[j] = d
	}
	if create && len(absent) > 0 {
		if err := k.createDEKs(ctx, uniq, absent, deks, now); err != nil {
			return nil, err
		}
	}
	for _, d := range deks {
		if d != nil {
			k.cache.put(d)
		}
	}
	for _, i := range missIdx {
		out[i] = deks[pos[refs[i]]]
	}
	return out, nil
}

func (k *Keyring) createDEKs(ctx context.Context, uniq []DEKRef, absent []int, deks []*DEK, now time.Time) error {
	refs := make([]DEKRef, len(absent))
	wrapped := make([][]byte, len(absent))
	raw := make([][]byte, len(absent))
	defer func() {
		for _, r := range raw {
			clear(r)
		}
	}()
	for n, j := range absent {
		ref := uniq[j]
		cat, ok := tokenizer.ByID(ref.Category)
		if !ok {
			return fmt.Errorf("keys: unknown category id %d", ref.Category)
		}
		ck, err := k.category(ctx, cat)
		if err != nil {
			return err
		}
		if ck.doc.Primary != ref.Version {
			// The caller's view of the primary is stale (another replica
			// rotated); new keys are made only for the primary.
			if ck, err = k.reload(ctx, cat); err != nil {
				return err
			}
			if ck.doc.Primary != ref.Version {
				return fmt.Errorf("%w: %s version %d is not the primary", ErrVersionNotUsable, cat.Name, ref.Version)
			}
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		raw[n] = key
		w, err := ck.aead.Encrypt(key, dekAAD(ref))
		if err != nil {
			return fmt.Errorf("keys: wrapping a data key: %w", err)
		}
		refs[n], wrapped[n] = ref, w
	}
	stored, err := k.storage.InsertSubjectKeys(ctx, refs, wrapped)
	if err != nil {
		return fmt.Errorf("%w: storing subject keys: %w", ErrStorage, err)
	}
	for n, j := range absent {
		var d *DEK
		if bytes.Equal(stored[n], wrapped[n]) {
			d, err = newDEK(refs[n], raw[n], now.Add(k.ttl))
		} else {
			d, err = k.unwrapDEK(ctx, refs[n], stored[n], now) // another writer won
		}
		if err != nil {
			return err
		}
		deks[j] = d
	}
	return nil
}

func (k *Keyring) unwrapDEK(ctx context.Context, ref DEKRef, wrapped []byte, now time.Time) (*DEK, error) {
	cat, ok := tokenizer.ByID(ref.Category)
	if !ok {
		return nil, fmt.Errorf("keys: unknown category id %d", ref.Category)
	}
	ck, err := k.category(ctx, cat)
	if err != nil {
		return nil, err
	}
	if _, ok := ck.state[ref.Version]; !ok {
		if ck, err = k.reload(ctx, cat); err != nil {
			return nil, err
		}
	}
	switch ck.state[ref.Version] {
	case StateEnabled:
	case "":
		return nil, fmt.Errorf("%w: %s version %d", ErrUnknownVersion, cat.Name, ref.Version)
	default:
		return nil, fmt.Errorf("%w: %s version %d", ErrVersionNotUsable, cat.Name, ref.Version)
	}
	// Tink's 5-byte prefix names the key; it must be this version's.
	if len(wrapped) < 5 || ck.byKeyID[binary.BigEndian.Uint32(wrapped[1:5])] != ref.Version {
		return nil, fmt.Errorf("%w: data key of %s does not match its version", ErrCorrupt, cat.Name)
	}
	key, err := ck.aead.Decrypt(wrapped, dekAAD(ref))
	if err != nil {
		return nil, fmt.Errorf("%w: data key of %s does not unwrap", ErrCorrupt, cat.Name)
	}
	defer clear(key)
	return newDEK(ref, key, now.Add(k.ttl))
}

// Forget drops cached DEKs of subject (every category when cats is nil). The
// vault calls it when it shreds the subject's keys.
func (k *Keyring) Forget(subject string, cats []uint16) { k.cache.forget(subject, cats) }

// Info describes the keyset of cat, creating it on first use.
func (k *Keyring) Info(ctx context.Context, cat *tokenizer.Category) (KeysetInfo, error) {
	ck, err := k.reload(ctx, cat)
	if err != nil {
		return KeysetInfo{}, err
	}
	info := ck.doc.KeysetInfo
	info.Versions = slices.Clone(info.Versions)
	return info, nil
}

// Rotate adds a new key version to cat and makes it primary. New DEKs (and
// so new values) use it; older versions still decrypt. On a conflict with a
// concurrent rotation it retries on the fresh keyset.
func (k *Keyring) Rotate(ctx context.Context, cat *tokenizer.Category) (uint32, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for attempt := 0; attempt < 3; attempt++ {
		ck, err := k.loadOrCreate(ctx, cat)
		if err != nil {
			return 0, err
		}
		m := keyset.NewManagerFromHandle(ck.handle)
		id, err := m.Add(aead.AES256GCMKeyTemplate())
		if err != nil {
			return 0, err
		}
		if err := m.SetPrimary(id); err != nil {
			return 0, err
		}
		h, err := m.Handle()
		if err != nil {
			return 0, err
		}
		doc := ck.doc
		doc.Versions = slices.Clone(doc.Versions)
		next := uint32(0)
		for _, v := range doc.Versions {
			next = max(next, v.Version)
		}
		next++
		now := k.now().UTC()
		doc.Versions = append(doc.Versions, VersionInfo{Version: next, KeyID: id, State: StateEnabled, CreatedAt: now})
		doc.Primary = next
		doc.RotatedAt = now
		if doc.AEAD, err = writeKeyset(ctx, k.kek, h, "aead", cat.Name); err != nil {
			return 0, err
		}
		raw, err := json.Marshal(doc)
		if err != nil {
			return 0, err
		}
		rev, err := k.storage.SaveKeyset(ctx, cat.Name, raw, ck.rev)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("%w: saving the keyset of %s: %w", ErrStorage, cat.Name, err)
		}
		nck, err := k.open(ctx, cat, raw, rev)
		if err != nil {
			return 0, err
		}
		k.cats.Store(cat.ID, nck)
		return next, nil
	}
	return 0, fmt.Errorf("%w: keyset of %s kept changing", ErrConflict, cat.Name)
}

// Refresh reloads every cached category whose stored revision moved, so
// that rotations made by another replica reach this one. The vault calls it
// periodically.
func (k *Keyring) Refresh(ctx context.Context) error {
	var errs []error
	k.cats.Range(func(key, v any) bool {
		ck := v.(*catKeys)
		_, rev, err := k.storage.LoadKeyset(ctx, ck.doc.Category)
		if err != nil {
			errs = append(errs, err)
			return true
		}
		if rev != ck.rev {
			if cat, ok := tokenizer.ByID(key.(uint16)); ok {
				if _, err := k.reload(ctx, cat); err != nil {
					errs = append(errs, err)
				}
			}
		}
		return true
	})
	return errors.Join(errs...)
}
