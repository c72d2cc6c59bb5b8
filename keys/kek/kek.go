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

// Rewrapper is implemented by KEKs that can move a wrapped blob to their
// current primary version without the plaintext ever reaching the caller
// (Vault Transit's rewrap endpoint). The aad bound at Wrap time stays bound:
// the result unwraps with the same aad as the input. A blob that is
// malformed or that the backend cannot decrypt fails with
// ErrInvalidCiphertext.
//
// KEKs without it (Local, whose aad is bound inside the AEAD) are rewrapped
// by Unwrap followed by Wrap.
type Rewrapper interface {
	Rewrap(ctx context.Context, wrapped []byte) ([]byte, error)
}

// Versioner is implemented by KEKs whose blobs record the KEK version that
// made them. WrappedVersion only parses the blob's header; it does not
// authenticate it, so use it to plan a rewrap or report progress, never to
// decide that a blob is genuine. A blob that cannot be parsed fails with
// ErrInvalidCiphertext.
type Versioner interface {
	WrappedVersion(wrapped []byte) (uint32, error)
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
