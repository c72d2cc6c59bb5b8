package vault

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fieldvault/fieldvault/keys"
	"github.com/fieldvault/fieldvault/keys/kek"
	"github.com/fieldvault/fieldvault/tokenizer"
)

// Key-management error codes.
const (
	CodeKeyVersionInUse  = "KEY_VERSION_IN_USE"
	CodeKeyVersionState  = "KEY_VERSION_STATE"
	CodeUnknownVersion   = "UNKNOWN_KEY_VERSION"
	CodeKEKNotRotatable  = "KEK_NOT_ROTATABLE"
	CodeJobNotFound      = "JOB_NOT_FOUND"
	CodeJobAlreadyActive = "JOB_ALREADY_RUNNING"
)

// KeyVersionView is one key version with the number of stored tokens it
// protects.
type KeyVersionView struct {
	Version   uint32    `json:"version"`
	State     string    `json:"state"`
	Primary   bool      `json:"primary"`
	Tokens    int64     `json:"tokens"`
	CreatedAt time.Time `json:"created_at"`
}

// CategoryKeysView describes the keys of one category.
type CategoryKeysView struct {
	Category   string           `json:"category"`
	Tier       string           `json:"tier"`
	Primary    uint32           `json:"primary"`
	AutoRotate string           `json:"auto_rotate_period,omitempty"`
	RotatedAt  time.Time        `json:"rotated_at,omitzero"`
	Versions   []KeyVersionView `json:"versions"`
}

// KeysView lists the categories that have keys.
type KeysView struct {
	Categories []CategoryKeysView `json:"categories"`
}

// ListKeys lists, per category with a keyset: versions, primary, state and
// how many stored tokens each version protects.
func (v *Vault) ListKeys(ctx context.Context, p *Principal) (*KeysView, error) {
	if !v.authz.Can(p, OpKeysRead) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not read keys")
	}
	counts, err := v.store.TokenCounts(ctx)
	if err != nil {
		return nil, storeErr(err)
	}
	byKey := make(map[[2]uint32]int64, len(counts))
	for _, c := range counts {
		byKey[[2]uint32{uint32(c.Category), c.Version}] = c.Count
	}
	out := &KeysView{Categories: []CategoryKeysView{}}
	for _, cat := range tokenizer.All() {
		info, ok, err := v.keys.Describe(ctx, cat)
		if err != nil {
			return nil, keysErr(err)
		}
		if !ok {
			continue
		}
		cv := CategoryKeysView{Category: cat.Name, Tier: cat.Tier.String(), Primary: info.Primary, RotatedAt: info.RotatedAt}
		if info.AutoRotate > 0 {
			cv.AutoRotate = time.Duration(info.AutoRotate).String()
		}
		states := map[string]int{}
		for _, ver := range info.Versions {
			cv.Versions = append(cv.Versions, KeyVersionView{Version: ver.Version, State: ver.State,
				Primary: ver.Version == info.Primary, Tokens: byKey[[2]uint32{uint32(cat.ID), ver.Version}],
				CreatedAt: ver.CreatedAt})
			states[ver.State]++
		}
		if ko, ok := v.obs.(KeyObserver); ok {
			ko.KeyVersions(cat.Name, states, info.Primary)
		}
		out.Categories = append(out.Categories, cv)
	}
	return out, nil
}

// KeyObserver is an optional Observer extension for key metrics.
type KeyObserver interface {
	KeyVersions(category string, states map[string]int, primary uint32)
	Rewrap(done, total int64, running bool)
}

func lookupCategory(name string) (*tokenizer.Category, error) {
	cat, ok := tokenizer.Lookup(name)
	if !ok {
		return nil, errorf(KindNotFound, CodeUnknownCategory, "unknown category")
	}
	return cat, nil
}

func (v *Vault) keyMgmtErr(err error) error {
	switch {
	case errors.Is(err, keys.ErrPrimary), errors.Is(err, keys.ErrState), errors.Is(err, keys.ErrVersionNotUsable):
		return wrapErr(KindConflict, CodeKeyVersionState, err.Error(), err)
	case errors.Is(err, keys.ErrUnknownVersion):
		return wrapErr(KindNotFound, CodeUnknownVersion, err.Error(), err)
	}
	return v.kekErr(err)
}

// RotateKeys adds a new primary version to a category. New tokens use it;
// old ones still read. Nothing stops serving.
func (v *Vault) RotateKeys(ctx context.Context, p *Principal, category string) (*CategoryKeysView, error) {
	if !v.authz.Can(p, OpKeysRotate) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not rotate keys")
	}
	cat, err := lookupCategory(category)
	if err != nil {
		return nil, err
	}
	ver, err := v.keys.Rotate(ctx, cat)
	if err != nil {
		return nil, v.keyMgmtErr(err)
	}
	if err := v.adminAudit(ctx, "key.rotate", "", "", map[string]string{"by": p.Name, "category": cat.Name,
		"version": fmt.Sprint(ver)}); err != nil {
		return nil, err
	}
	return v.categoryKeys(ctx, p, cat)
}

func (v *Vault) categoryKeys(ctx context.Context, p *Principal, cat *tokenizer.Category) (*CategoryKeysView, error) {
	all, err := v.ListKeys(ctx, p)
	if err != nil {
		return nil, err
	}
	for i := range all.Categories {
		if all.Categories[i].Category == cat.Name {
			return &all.Categories[i], nil
		}
	}
	return nil, errorf(KindNotFound, CodeUnknownCategory, "the category has no keys yet")
}

// versionInUse counts the stored tokens of cat on version: the maintained
// counter first, then a full scan, because destroying a version that a
// token still uses would lose that value for good.
func (v *Vault) versionInUse(ctx context.Context, cat *tokenizer.Category, version uint32) (int64, error) {
	counts, err := v.store.TokenCounts(ctx)
	if err != nil {
		return 0, storeErr(err)
	}
	for _, c := range counts {
		if c.Category == cat.ID && c.Version == version && c.Count > 0 {
			return c.Count, nil
		}
	}
	var n int64
	cursor := ""
	for {
		rows, next, err := v.store.ScanTokens(ctx, cursor, 4096)
		if err != nil {
			return 0, storeErr(err)
		}
		for i := range rows {
			if rows[i].Category == cat.ID && rows[i].KeyVersion == version {
				n++
			}
		}
		if next == "" {
			return n, nil
		}
		cursor = next
	}
}

// KeyVersionRequest names a version.
type KeyVersionRequest struct {
	Version uint32 `json:"version"`
}

// SetKeyVersionState disables, enables or destroys a version. Disabling and
// destroying are refused while any stored token still uses the version
// (rewrap first); destroying needs a disabled version.
func (v *Vault) SetKeyVersionState(ctx context.Context, p *Principal, category, action string, version uint32) (*CategoryKeysView, error) {
	if !v.authz.Can(p, OpKeysRotate) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not change keys")
	}
	cat, err := lookupCategory(category)
	if err != nil {
		return nil, err
	}
	if action == "disable" || action == "destroy" {
		n, err := v.versionInUse(ctx, cat, version)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, errorf(KindConflict, CodeKeyVersionInUse,
				"%d stored tokens still use version %d of %s; run a rewrap first", n, version, cat.Name)
		}
	}
	switch action {
	case "disable":
		err = v.keys.Disable(ctx, cat, version)
	case "enable":
		err = v.keys.Enable(ctx, cat, version)
	case "destroy":
		err = v.keys.Destroy(ctx, cat, version)
	default:
		return nil, errorf(KindInvalid, CodeInvalidRequest, "action must be disable, enable or destroy")
	}
	if err != nil {
		return nil, v.keyMgmtErr(err)
	}
	if err := v.adminAudit(ctx, "key."+action, "", "", map[string]string{"by": p.Name, "category": cat.Name,
		"version": fmt.Sprint(version)}); err != nil {
		return nil, err
	}
	return v.categoryKeys(ctx, p, cat)
}

// KeyConfigRequest configures a category's keys.
type KeyConfigRequest struct {
	// AutoRotatePeriod is a Go duration ("720h"); "0s" switches automatic
	// rotation off.
	AutoRotatePeriod string `json:"auto_rotate_period"`
}

// ConfigureKeys sets a category's automatic rotation period.
func (v *Vault) ConfigureKeys(ctx context.Context, p *Principal, category string, req *KeyConfigRequest) (*CategoryKeysView, error) {
	if !v.authz.Can(p, OpKeysRotate) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not change keys")
	}
	cat, err := lookupCategory(category)
	if err != nil {
		return nil, err
	}
	d, err := time.ParseDuration(req.AutoRotatePeriod)
	if err != nil {
		return nil, errorf(KindInvalid, CodeInvalidRequest, "auto_rotate_period must be a duration such as 720h")
	}
	if err := v.keys.SetAutoRotate(ctx, cat, d); err != nil {
		return nil, wrapErr(KindInvalid, CodeInvalidRequest, err.Error(), err)
	}
	if err := v.adminAudit(ctx, "key.config", "", "", map[string]string{"by": p.Name, "category": cat.Name,
		"auto_rotate_period": d.String()}); err != nil {
		return nil, err
	}
	return v.categoryKeys(ctx, p, cat)
}

// RotateDueKeys rotates the categories whose automatic period ran out. The
// server calls it periodically.
func (v *Vault) RotateDueKeys(ctx context.Context) ([]string, error) {
	rotated, err := v.keys.RotateDue(ctx)
	for _, c := range rotated {
		if aerr := v.adminAudit(ctx, "key.rotate", "", "", map[string]string{"by": "auto-rotation", "category": c}); aerr != nil {
			err = errors.Join(err, aerr)
		}
	}
	return rotated, err
}

// KEKRotator re-wraps what the KEK protects outside the keyring (the audit
// keys) after a KEK rotation. Wired by the server.
type KEKRotator func(ctx context.Context) error

// RotateKEK adds a new KEK version and re-wraps every keyset with it. Only
// keysets (and the audit keys) are rewrapped: DEKs and values do not depend
// on the KEK directly.
func (v *Vault) RotateKEK(ctx context.Context, p *Principal) (int, error) {
	if !v.authz.Can(p, OpKeysRotate) {
		return 0, errorf(KindForbidden, CodeForbidden, "this API key may not rotate keys")
	}
	extra := v.afterKEKRotate
	r, ok := v.kek.(kek.Rotator)
	if !ok {
		return 0, errorf(KindConflict, CodeKEKNotRotatable, "this KEK cannot be rotated from here")
	}
	if err := r.Rotate(ctx); err != nil {
		if errors.Is(err, kek.ErrUnavailable) || errors.Is(err, kek.ErrPermissionDenied) {
			return 0, wrapErr(KindUnavailable, CodeKEKUnavailable, "rotating the KEK ("+v.kekName+") failed: "+err.Error(), err)
		}
		return 0, wrapErr(KindInternal, CodeInternal, "internal error", err)
	}
	n, err := v.keys.RewrapKeysets(ctx)
	if err != nil {
		return n, v.kekErr(err)
	}
	if extra != nil {
		if err := extra(ctx); err != nil {
			return n, wrapErr(KindUnavailable, CodeKEKUnavailable, "re-wrapping the audit keys failed", err)
		}
	}
	if err := v.adminAudit(ctx, "kek.rotate", "", "", map[string]string{"by": p.Name, "keysets": fmt.Sprint(n)}); err != nil {
		return n, err
	}
	return n, nil
}
