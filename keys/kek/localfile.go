package kek

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The key file is JSON, so that an operator can see what it holds (versions,
// primary, creation times) without tools:
//
//	{
//	  "format": "fieldvault-local-kek/v1",
//	  "primary": 2,
//	  "versions": [
//	    {"version": 1, "created": "2026-01-02T03:04:05Z", "key": "<base64, 32 bytes>"},
//	    {"version": 2, "created": "2026-06-01T00:00:00Z", "key": "<base64, 32 bytes>"}
//	  ]
//	}
//
// Parsing is strict: unknown fields, trailing data, duplicate or zero
// versions, keys that are not exactly 32 bytes of canonical base64, and a
// primary that is not in the file are all refused.
const keyFileFormat = "fieldvault-local-kek/v1"

const (
	// localKeySize is the AES-256 key size.
	localKeySize = 32
	// maxKeyFileSize bounds what LoadOrCreateLocal reads. A key file with
	// 10,000 versions is about 1 MiB.
	maxKeyFileSize = 4 << 20
)

type keyFile struct {
	Format   string           `json:"format"`
	Primary  uint32           `json:"primary"`
	Versions []keyFileVersion `json:"versions"`
}

type keyFileVersion struct {
	Version uint32    `json:"version"`
	Created time.Time `json:"created"`
	Key     keyBytes  `json:"key"`
}

// clear zeroes the key bytes (best-effort).
func (kf *keyFile) clear() {
	if kf == nil {
		return
	}
	for i := range kf.Versions {
		clear(kf.Versions[i].Key)
	}
}

func (kf *keyFile) maxVersion() uint32 {
	var m uint32
	for _, v := range kf.Versions {
		m = max(m, v.Version)
	}
	return m
}

// newKeyFile returns a key file with one fresh version, the primary.
func newKeyFile(now time.Time) (*keyFile, error) {
	kf := &keyFile{Format: keyFileFormat}
	if err := kf.addVersion(now); err != nil {
		return nil, err
	}
	return kf, nil
}

// addVersion appends a fresh random key as version max+1 and makes it the
// primary.
func (kf *keyFile) addVersion(now time.Time) error {
	next := kf.maxVersion()
	if next == math.MaxUint32 {
		return errors.New("kek/local: key file has no version numbers left")
	}
	next++
	key := make([]byte, localKeySize)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return fmt.Errorf("kek/local: generating a key: %w", err)
	}
	kf.Versions = append(kf.Versions, keyFileVersion{Version: next, Created: now.UTC().Truncate(time.Second), Key: key})
	kf.Primary = next
	return nil
}

// validate checks the invariants parseKeyFile promises. Messages never
// include key bytes.
func (kf *keyFile) validate() error {
	if kf.Format != keyFileFormat {
		return fmt.Errorf("format is %q, want %q", kf.Format, keyFileFormat)
	}
	if len(kf.Versions) == 0 {
		return errors.New("no key versions")
	}
	seen := make(map[uint32]bool, len(kf.Versions))
	for i, v := range kf.Versions {
		if v.Version == 0 {
			return fmt.Errorf("versions[%d]: version 0 is not valid", i)
		}
		if seen[v.Version] {
			return fmt.Errorf("versions[%d]: version %d appears twice", i, v.Version)
		}
		seen[v.Version] = true
		if len(v.Key) != localKeySize {
			return fmt.Errorf("versions[%d] (version %d): key is %d bytes, want %d", i, v.Version, len(v.Key), localKeySize)
		}
	}
	if !seen[kf.Primary] {
		return fmt.Errorf("primary version %d is not in the file", kf.Primary)
	}
	return nil
}

// parseKeyFile parses and validates a key file. Errors describe where the
// file is wrong but never quote it: a JSON syntax error names the offset,
// not the offending byte, which might be key material.
func parseKeyFile(data []byte) (*keyFile, error) {
	var kf keyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		kf.clear()
		return nil, describeJSONError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		kf.clear()
		return nil, errors.New("trailing data after the JSON object")
	}
	if err := kf.validate(); err != nil {
		kf.clear()
		return nil, err
	}
	return &kf, nil
}

// keyBytes is a key in the key file: exactly canonical, padded standard
// base64 (what MarshalJSON writes), decoded without passing through an
// immutable string.
type keyBytes []byte

func (k keyBytes) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, base64.StdEncoding.EncodedLen(len(k))+2)
	out = append(out, '"')
	out = base64.StdEncoding.AppendEncode(out, k)
	return append(out, '"'), nil
}

func (k *keyBytes) UnmarshalJSON(data []byte) error {
	if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
		return errNotBase64Key
	}
	src := data[1 : len(data)-1]
	dst := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	n, err := base64.StdEncoding.Strict().Decode(dst, src)
	if err != nil {
		clear(dst)
		return errNotBase64Key
	}
	*k = dst[:n]
	return nil
}

var errNotBase64Key = errors.New("a key is not canonical base64")

func describeJSONError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("not valid JSON at byte offset %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Errorf("field %q has the wrong JSON type (%s)", typ.Field, typ.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("file is empty or truncated")
	case errors.Is(err, errNotBase64Key):
		return errNotBase64Key
	default:
		return errors.New("not a valid key file: " + sanitizeJSONError(err))
	}
}

// sanitizeJSONError keeps encoding/json's message only when it is one we know
// quotes no content ("json: unknown field ..."); otherwise it is dropped.
func sanitizeJSONError(err error) string {
	const unknown = "json: unknown field "
	if msg := err.Error(); len(msg) < 128 && strings.HasPrefix(msg, unknown) {
		return msg
	}
	return "malformed content"
}

func mustMarshalKeyFile(kf *keyFile) []byte {
	out, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		// Only fails for unsupported types, which keyFile has none of.
		panic("kek/local: marshalling the key file: " + err.Error())
	}
	return append(out, '\n')
}

// readKeyFile opens path, refuses it if group or others can read or write
// it, and parses it.
func readKeyFile(path string) (*keyFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("kek/local: key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("kek/local: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("kek/local: key file %s has mode %#o: group and others must have no access to a key file (chmod 600 %s)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("kek/local: reading key file %s: %w", path, err)
	}
	defer clear(data)
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("kek/local: key file %s is larger than %d bytes", path, maxKeyFileSize)
	}
	kf, err := parseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("kek/local: key file %s: %w", path, err)
	}
	return kf, nil
}

// writeKeyFile replaces path atomically: it writes a temporary file in the
// same directory with mode 0600, fsyncs it, renames it over path and fsyncs
// the directory, so a crash leaves either the old file or the new one.
func writeKeyFile(path string, kf *keyFile) (err error) {
	data := mustMarshalKeyFile(kf)
	defer clear(data)

	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("kek/local: writing key file %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("kek/local: writing key file %s: %w", path, err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("kek/local: writing key file %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("kek/local: syncing key file %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("kek/local: writing key file %s: %w", path, err)
	}
	if err = os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("kek/local: replacing key file %s: %w", path, err)
	}
	if err = syncDir(dir); err != nil {
		return fmt.Errorf("kek/local: syncing directory of key file %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
