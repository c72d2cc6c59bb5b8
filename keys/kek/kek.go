// Package kek defines the key-encryption key (KEK) that protects fieldvault's
// per-category keysets at rest, and its backends: a local key file (the
// embedded default) and HashiCorp Vault Transit.
//
// The KEK is on the rotation and start-up path, never on the request path:
// keysets are unwrapped once and cached by package keys, so a KEK outage
// stops rotation but not serving.
package kek

import (
	"context"
	"errors"
)

// KEK wraps and unwraps small secrets (serialized keysets).
//
// Wrap must bind aad: Unwrap with different aad fails with
// ErrInvalidCiphertext. Wrapped blobs are self-describing enough for Unwrap
// to find the KEK version that made them, so rotating the KEK never makes
// older blobs unreadable.
type KEK interface {
	Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error)
}

// Rotator is implemented by KEKs that can add a new primary version. New
// wraps use the new version; old blobs still unwrap.
type Rotator interface {
	Rotate(ctx context.Context) error
}

// Sentinel errors. Backends wrap them with %w and add context that names the
// backend (for example "kek/transit: vault at https://...: ..."), never key
// material or plaintext.
var (
	// ErrInvalidCiphertext: the blob is malformed, was tampered with, has
	// the wrong aad, or was made by a KEK version that is gone. One opaque
	// error for all of these.
	ErrInvalidCiphertext = errors.New("kek: invalid ciphertext")
	// ErrUnavailable: the backend cannot be reached or is sealed.
	ErrUnavailable = errors.New("kek: backend unavailable")
	// ErrPermissionDenied: the backend refused our credentials.
	ErrPermissionDenied = errors.New("kek: permission denied")
	// ErrKeyNotFound: the named key does not exist in the backend.
	ErrKeyNotFound = errors.New("kek: key not found")
)
