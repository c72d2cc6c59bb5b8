package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/fieldvault/fieldvault/tokenizer"
)

// ErrPrimary: the primary version cannot be disabled or destroyed.
var ErrPrimary = errors.New("keys: the primary version cannot be disabled or destroyed")

// ErrState: the version is not in a state that allows the change (for
// example destroying a version that is not disabled).
var ErrState = errors.New("keys: invalid version state for this change")

// Describe returns the keyset of cat as stored, without creating one:
// exists is false when the category has no keyset yet.
func (k *Keyring) Describe(ctx context.Context, cat *tokenizer.Category) (info KeysetInfo, exists bool, err error) {
	data, _, err := k.storage.LoadKeyset(ctx, cat.Name)
	if err != nil {
		return KeysetInfo{}, false, fmt.Errorf("%w: loading the keyset of %s: %w", ErrStorage, cat.Name, err)
	}
	if data == nil {
		return KeysetInfo{}, false, nil
	}
	var doc keysetDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return KeysetInfo{}, false, fmt.Errorf("%w: keyset document of %s", ErrCorrupt, cat.Name)
	}
	return doc.KeysetInfo, true, nil
}

// update loads cat fresh, applies fn to the Tink manager and the document,
// writes the result with compare-and-set, and caches it. fn returns whether
// the AEAD keyset changed (and so must be re-wrapped).
func (k *Keyring) update(ctx context.Context, cat *tokenizer.Category, fn func(m *keyset.Manager, doc *keysetDoc) (bool, error)) (*catKeys, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for attempt := 0; attempt < 3; attempt++ {
		ck, err := k.loadOrCreate(ctx, cat)
		if err != nil {
			return nil, err
		}
		doc := ck.doc
		doc.Versions = slices.Clone(doc.Versions)
		m := keyset.NewManagerFromHandle(ck.handle)
		changed, err := fn(m, &doc)
		if err != nil {
			return nil, err
		}
		if changed {
			h, err := m.Handle()
			if err != nil {
				return nil, err
			}
			if doc.AEAD, err = writeKeyset(ctx, k.kek, h, "aead", cat.Name); err != nil {
				return nil, err
			}
		}
		raw, err := json.Marshal(doc)
		if err != nil {
			return nil, err
		}
		rev, err := k.storage.SaveKeyset(ctx, cat.Name, raw, ck.rev)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: saving the keyset of %s: %w", ErrStorage, cat.Name, err)
		}
		nck, err := k.open(ctx, cat, raw, rev)
		if err != nil {
			return nil, err
		}
		k.cats.Store(cat.ID, nck)
		return nck, nil
	}
	return nil, fmt.Errorf("%w: keyset of %s kept changing", ErrConflict, cat.Name)
}

func findVersion(doc *keysetDoc, version uint32) (*VersionInfo, error) {
	for i := range doc.Versions {
		if doc.Versions[i].Version == version {
			return &doc.Versions[i], nil
		}
	}
	return nil, fmt.Errorf("%w: %s version %d", ErrUnknownVersion, doc.Category, version)
}

// Disable disables a version: values under it stop decrypting until it is
// enabled again. The caller must first make sure nothing still uses it (the
// vault refuses while any token does).
func (k *Keyring) Disable(ctx context.Context, cat *tokenizer.Category, version uint32) error {
	_, err := k.update(ctx, cat, func(m *keyset.Manager, doc *keysetDoc) (bool, error) {
		v, err := findVersion(doc, version)
		if err != nil {
			return false, err
		}
		if doc.Primary == version {
			return false, ErrPrimary
		}
		if v.State != StateEnabled {
			return false, fmt.Errorf("%w: version %d is %s", ErrState, version, v.State)
		}
		if err := m.Disable(v.KeyID); err != nil {
			return false, err
		}
		v.State = StateDisabled
		return true, nil
	})
	if err == nil {
		k.cache.forgetVersion(cat.ID, version)
	}
	return err
}

// Enable re-enables a disabled version.
func (k *Keyring) Enable(ctx context.Context, cat *tokenizer.Category, version uint32) error {
	_, err := k.update(ctx, cat, func(m *keyset.Manager, doc *keysetDoc) (bool, error) {
		v, err := findVersion(doc, version)
		if err != nil {
			return false, err
		}
		if v.State != StateDisabled {
			return false, fmt.Errorf("%w: version %d is %s", ErrState, version, v.State)
		}
		if err := m.Enable(v.KeyID); err != nil {
			return false, err
		}
		v.State = StateEnabled
		return true, nil
	})
	return err
}

// Destroy deletes a disabled version's key material from the keyset for
// good. Data keys wrapped by it can never be unwrapped again.
func (k *Keyring) Destroy(ctx context.Context, cat *tokenizer.Category, version uint32) error {
	_, err := k.update(ctx, cat, func(m *keyset.Manager, doc *keysetDoc) (bool, error) {
		v, err := findVersion(doc, version)
		if err != nil {
			return false, err
		}
		if doc.Primary == version {
			return false, ErrPrimary
		}
		if v.State != StateDisabled {
			return false, fmt.Errorf("%w: disable version %d before destroying it", ErrState, version)
		}
		if err := m.Delete(v.KeyID); err != nil {
			return false, err
		}
		v.State = StateDestroyed
		return true, nil
	})
	if err == nil {
		k.cache.forgetVersion(cat.ID, version)
	}
	return err
}

// SetAutoRotate sets (or with 0 clears) the automatic rotation period of cat.
func (k *Keyring) SetAutoRotate(ctx context.Context, cat *tokenizer.Category, period time.Duration) error {
	if period < 0 || (period > 0 && period < time.Hour) {
		return fmt.Errorf("keys: an automatic rotation period must be at least an hour")
	}
	_, err := k.update(ctx, cat, func(m *keyset.Manager, doc *keysetDoc) (bool, error) {
		doc.AutoRotate = Duration(period)
		return false, nil
	})
	return err
}

// RotateDue rotates every category whose automatic rotation period has
// passed since its latest version was made, and returns the rotated ones.
func (k *Keyring) RotateDue(ctx context.Context) ([]string, error) {
	var out []string
	var errs []error
	now := k.now()
	for _, cat := range tokenizer.All() {
		info, ok, err := k.Describe(ctx, cat)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok || info.AutoRotate <= 0 {
			continue
		}
		last := info.CreatedAt
		for _, v := range info.Versions {
			if v.Version == info.Primary {
				last = v.CreatedAt
			}
		}
		if now.Sub(last) < time.Duration(info.AutoRotate) {
			continue
		}
		if _, err := k.Rotate(ctx, cat); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, cat.Name)
	}
	return out, errors.Join(errs...)
}

// RewrapKeysets re-wraps every stored keyset with the KEK's current primary
// version (after a KEK rotation). Keysets are read with whichever KEK version
// wrapped them and written back with the primary; key material does not
// change. Returns how many keysets were re-wrapped.
func (k *Keyring) RewrapKeysets(ctx context.Context) (int, error) {
	n := 0
	for _, cat := range tokenizer.All() {
		_, ok, err := k.Describe(ctx, cat)
		if err != nil {
			return n, err
		}
		if !ok {
			continue
		}
		_, err = k.update(ctx, cat, func(m *keyset.Manager, doc *keysetDoc) (bool, error) {
			ph, err := readKeyset(ctx, k.kek, doc.PRF, "prf", cat.Name)
			if err != nil {
				return false, err
			}
			if doc.PRF, err = writeKeyset(ctx, k.kek, ph, "prf", cat.Name); err != nil {
				return false, err
			}
			return true, nil
		})
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Duration is a time.Duration that marshals as a Go duration string.
type Duration time.Duration

// MarshalJSON writes "720h0m0s" style strings.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads duration strings (and integers as nanoseconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*d = Duration(n)
	return nil
}
