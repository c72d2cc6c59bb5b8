package kek

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// localMagic is the first byte of every Local blob; it names format 1
// (AES-256-GCM, 96-bit random nonce, header bound as additional data).
const localMagic byte = 0xF1

const (
	gcmNonceSize = 12
	gcmTagSize   = 16
	// reloadInterval bounds how often Unwrap re-reads the key file when it
	// meets a version it does not hold.
	reloadInterval = time.Second
)

// Local is a KEK kept in a key file on local disk: numbered AES-256 key
// versions and a primary. It is the embedded default, for one machine (or
// processes sharing one file system).
//
// Wrap seals with the primary version under AES-256-GCM with a fresh random
// nonce; the blob header (format byte and version) and the caller's aad are
// the GCM additional data. Random 96-bit nonces are safe for well over the
// number of keysets a KEK wraps (NIST's 2^32 messages per key).
//
// Safe for concurrent use. Another process may rotate the same key file
// (fieldvault keys rotate-kek while fieldvault serve runs): this Local picks
// up the new versions and primary the first time Unwrap meets a blob made by
// a version it does not hold.
type Local struct {
	path string

	rotMu sync.Mutex // serialises Rotate and reload in this process

	mu         sync.RWMutex
	primary    uint32
	aeads      map[uint32]cipher.AEAD
	lastReload time.Time
}

var (
	_ KEK       = (*Local)(nil)
	_ Rotator   = (*Local)(nil)
	_ Versioner = (*Local)(nil)
)

// OpenLocal opens an existing key file. It fails with an error wrapping
// fs.ErrNotExist if there is none, and refuses a file that group or others
// can read or write.
func OpenLocal(path string) (*Local, error) {
	if path == "" {
		return nil, errors.New("kek/local: no key file path")
	}
	path = filepath.Clean(path)
	kf, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("kek/local: key file %s does not exist (fieldvault serve creates it on first run): %w", path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, wrapOpenErr(path, err)
	}
	defer kf.clear()
	return newLocal(path, kf)
}

// LoadOrCreateLocal opens the key file at path, or creates it with one fresh
// key version if there is none. created reports whether it did. A new key
// file is written atomically with mode 0600; missing parent directories are
// created with mode 0700. A file that group or others can read or write is
// refused rather than loaded.
func LoadOrCreateLocal(path string) (l *Local, created bool, err error) {
	if path == "" {
		return nil, false, errors.New("kek/local: no key file path")
	}
	path = filepath.Clean(path)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("kek/local: creating the key file's directory: %w", err)
	}
	kf, err := readKeyFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, false, wrapOpenErr(path, err)
	}
	if err == nil {
		defer kf.clear()
		l, err := newLocal(path, kf)
		return l, false, err
	}

	// Create it, under the lock so that two processes starting at once
	// agree on one key file.
	unlock, err := lockKeyFile(path)
	if err != nil {
		return nil, false, err
	}
	defer unlock()
	kf, err = readKeyFile(path)
	switch {
	case err == nil:
		defer kf.clear()
		l, err := newLocal(path, kf)
		return l, false, err
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, wrapOpenErr(path, err)
	}
	kf, err = newKeyFile(time.Now())
	if err != nil {
		return nil, false, err
	}
	defer kf.clear()
	if err := writeKeyFile(path, kf); err != nil {
		return nil, false, err
	}
	l, err = newLocal(path, kf)
	return l, err == nil, err
}

// wrapOpenErr prefixes errors from os.Open; readKeyFile's own errors are
// already prefixed.
func wrapOpenErr(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("kek/local: opening key file %s: %w", path, pe.Err)
	}
	return err
}

func newLocal(path string, kf *keyFile) (*Local, error) {
	aeads, err := buildAEADs(kf)
	if err != nil {
		return nil, err
	}
	return &Local{path: path, primary: kf.Primary, aeads: aeads}, nil
}

func buildAEADs(kf *keyFile) (map[uint32]cipher.AEAD, error) {
	aeads := make(map[uint32]cipher.AEAD, len(kf.Versions))
	for _, v := range kf.Versions {
		block, err := aes.NewCipher(v.Key)
		if err != nil {
			return nil, fmt.Errorf("kek/local: version %d: %w", v.Version, err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("kek/local: version %d: %w", v.Version, err)
		}
		aeads[v.Version] = gcm
	}
	return aeads, nil
}

// Wrap seals plaintext under the primary version, binding aad.
func (l *Local) Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kek/local: wrap: %w", err)
	}
	l.mu.RLock()
	version, aead := l.primary, l.aeads[l.primary]
	l.mu.RUnlock()

	out := make([]byte, 0, 1+binary.MaxVarintLen32+gcmNonceSize+len(plaintext)+gcmTagSize)
	out = appendLocalHeader(out, version)
	hdrLen := len(out)
	out = out[:hdrLen+gcmNonceSize]
	if _, err := io.ReadFull(rand.Reader, out[hdrLen:]); err != nil {
		return nil, fmt.Errorf("kek/local: wrap: reading a nonce: %w", err)
	}
	ad := localAdditionalData(out[:hdrLen], aad)
	return aead.Seal(out, out[hdrLen:], plaintext, ad), nil
}

// Unwrap opens a blob made by Wrap with any version still in the key file.
// Every failure (malformed blob, unknown version, wrong aad, tampering)
// wraps ErrInvalidCiphertext.
func (l *Local) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kek/local: unwrap: %w", err)
	}
	version, hdrLen, err := parseLocalBlob(wrapped)
	if err != nil {
		return nil, err
	}
	aead := l.aead(version)
	if aead == nil {
		l.maybeReload()
		if aead = l.aead(version); aead == nil {
			return nil, fmt.Errorf("kek/local: key version %d is not in key file %s: %w", version, l.path, ErrInvalidCiphertext)
		}
	}
	nonce := wrapped[hdrLen : hdrLen+gcmNonceSize]
	ad := localAdditionalData(wrapped[:hdrLen], aad)
	pt, err := aead.Open(nil, nonce, wrapped[hdrLen+gcmNonceSize:], ad)
	if err != nil {
		return nil, fmt.Errorf("kek/local: unwrap with version %d: %w", version, ErrInvalidCiphertext)
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

// WrappedVersion returns the key version named in a blob's header, without
// authenticating the blob.
func (l *Local) WrappedVersion(wrapped []byte) (uint32, error) {
	v, _, err := parseLocalBlob(wrapped)
	return v, err
}

// Rotate adds a fresh key version to the key file and makes it the primary.
// The file is re-read and rewritten atomically under an exclusive lock, so
// versions added by another process are kept; if writing fails, nothing
// changes.
func (l *Local) Rotate(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kek/local: rotate: %w", err)
	}
	l.rotMu.Lock()
	defer l.rotMu.Unlock()
	unlock, err := lockKeyFile(l.path)
	if err != nil {
		return err
	}
	defer unlock()

	kf, err := readKeyFile(l.path)
	if err != nil {
		return fmt.Errorf("kek/local: rotate: %w", wrapOpenErr(l.path, err))
	}
	defer kf.clear()
	inFile := make(map[uint32]bool, len(kf.Versions))
	for _, v := range kf.Versions {
		inFile[v.Version] = true
	}
	l.mu.RLock()
	for v := range l.aeads {
		if !inFile[v] {
			l.mu.RUnlock()
			return fmt.Errorf("kek/local: rotate: key file %s no longer holds version %d, which this process uses; refusing to rewrite it", l.path, v)
		}
	}
	l.mu.RUnlock()

	if err := kf.addVersion(time.Now()); err != nil {
		return err
	}
	if err := writeKeyFile(l.path, kf); err != nil {
		return err
	}
	aeads, err := buildAEADs(kf)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.aeads, l.primary = aeads, kf.Primary
	l.mu.Unlock()
	return nil
}

// String describes the KEK without key material.
func (l *Local) String() string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return fmt.Sprintf("kek/local(%s, primary v%d, %d versions)", l.path, l.primary, len(l.aeads))
}

// Format prints String for every verb, so that no fmt verb (%#v, %+v, %x)
// can reach the key material.
func (l *Local) Format(f fmt.State, _ rune) { io.WriteString(f, l.String()) }

// LogValue describes the KEK to log/slog without key material.
func (l *Local) LogValue() slog.Value {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return slog.GroupValue(
		slog.String("backend", "local"),
		slog.String("path", l.path),
		slog.Uint64("primary", uint64(l.primary)),
		slog.Int("versions", len(l.aeads)),
	)
}

func (l *Local) aead(version uint32) cipher.AEAD {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.aeads[version]
}

// maybeReload re-reads the key file (at most once per reloadInterval) to
// pick up versions another process added. It never drops a version this
// process holds. Errors leave the current state in place; the caller
// reports the unknown version.
func (l *Local) maybeReload() {
	l.rotMu.Lock()
	defer l.rotMu.Unlock()
	l.mu.RLock()
	recent := time.Since(l.lastReload) < reloadInterval
	l.mu.RUnlock()
	if recent {
		return
	}
	kf, err := readKeyFile(l.path)
	l.mu.Lock()
	l.lastReload = time.Now()
	l.mu.Unlock()
	if err != nil {
		return
	}
	defer kf.clear()
	aeads, err := buildAEADs(kf)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for v, a := range l.aeads {
		if _, ok := aeads[v]; !ok {
			aeads[v] = a
		}
	}
	l.aeads = aeads
	if kf.Primary > l.primary {
		l.primary = kf.Primary
	}
}

// appendLocalHeader appends the blob header: the format byte and the
// version as a uvarint.
func appendLocalHeader(dst []byte, version uint32) []byte {
	return binary.AppendUvarint(append(dst, localMagic), uint64(version))
}

// parseLocalBlob checks a blob's framing strictly and returns its version
// and header length. It accepts only what Wrap writes: the format byte, a
// minimal uvarint version in 1..2^32-1, a nonce and at least a tag.
func parseLocalBlob(b []byte) (version uint32, hdrLen int, err error) {
	if len(b) == 0 || b[0] != localMagic {
		return 0, 0, fmt.Errorf("kek/local: not a local KEK blob: %w", ErrInvalidCiphertext)
	}
	v, n := binary.Uvarint(b[1:])
	if n <= 0 || v == 0 || v > math.MaxUint32 || n != uvarintLen(v) {
		return 0, 0, fmt.Errorf("kek/local: malformed version in blob header: %w", ErrInvalidCiphertext)
	}
	hdrLen = 1 + n
	if len(b) < hdrLen+gcmNonceSize+gcmTagSize {
		return 0, 0, fmt.Errorf("kek/local: blob is too short: %w", ErrInvalidCiphertext)
	}
	return uint32(v), hdrLen, nil
}

func uvarintLen(v uint64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], v)
}

// localAdditionalData is the GCM additional data: the blob header followed
// by the caller's aad. The header is self-delimiting, so the concatenation
// is unambiguous.
func localAdditionalData(hdr, aad []byte) []byte {
	ad := make([]byte, 0, len(hdr)+len(aad))
	return append(append(ad, hdr...), aad...)
}
