package transittest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Vault's messages for user errors (sdk/helper/keysutil, builtin/logical/transit).
const (
	errNoPrefix        = "invalid ciphertext: no prefix"
	errWrongFields     = "invalid ciphertext: wrong number of fields"
	errBadVersion      = "invalid ciphertext: version number could not be decoded"
	errTooNew          = "invalid ciphertext: version is too new"
	errTooOld          = "ciphertext or signature version is disallowed by policy (too old)"
	errBadBase64       = "invalid ciphertext: could not decode base64"
	errBadLength       = "invalid ciphertext length"
	errKeyNotFound     = "encryption key not found"
	errMissingPlain    = "missing plaintext to encrypt"
	errMissingCipher   = "missing ciphertext to decrypt"
	errMissingBatch    = "missing batch input to process"
	errEncVersionHigh  = "requested version for encryption is higher than the latest key version"
	errEncVersionLow   = "requested version for encryption is less than the minimum encryption key version"
	versionPrefix      = "vault:v"
	defaultKeyType     = "aes256-gcm96"
	gcmNonceSize       = 12
	maxKeyVersionsLeft = 1 << 20
)

// engine is one Transit mount.
type engine struct {
	mount       string
	id          string
	description string
	keys        map[string]*key
}

func newEngine(mount string) *engine {
	return &engine{mount: mount, id: newUUID(), keys: make(map[string]*key)}
}

// key is a Transit key: numbered versions of real AES-GCM key material.
type key struct {
	name                 string
	typ                  string
	versions             map[int]*keyVersion
	latest               int
	minDecrypt           int
	minEncrypt           int
	deletionAllowed      bool
	exportable           bool
	allowPlaintextBackup bool
	autoRotatePeriod     time.Duration
}

type keyVersion struct {
	created time.Time
	aead    cipher.AEAD
}

func (e *engine) createKey(name, typ string) (*key, error) {
	if typ == "" {
		typ = defaultKeyType
	}
	switch typ {
	case "aes256-gcm96", "aes128-gcm96":
	case "chacha20-poly1305", "ed25519", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048", "rsa-3072", "rsa-4096", "hmac":
		return nil, fmt.Errorf("transittest: key type %q is not supported", typ)
	default:
		return nil, fmt.Errorf("unknown key type %v", typ)
	}
	k := &key{name: name, typ: typ, versions: make(map[int]*keyVersion)}
	if err := k.rotate(); err != nil {
		return nil, err
	}
	k.minDecrypt = 1
	e.keys[name] = k
	return k, nil
}

func (k *key) rotate() error {
	if k.latest >= maxKeyVersionsLeft {
		return errors.New("transittest: too many key versions")
	}
	size := 32
	if k.typ == "aes128-gcm96" {
		size = 16
	}
	raw := make([]byte, size)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	k.latest++
	k.versions[k.latest] = &keyVersion{created: time.Now(), aead: aead}
	return nil
}

// encrypt follows keysutil.Policy.Encrypt for a non-derived AES-GCM key.
func (k *key) encrypt(pt []byte, ver int) (string, int, error) {
	switch {
	case ver == 0:
		ver = k.latest
	case ver > k.latest:
		return "", 0, errors.New(errEncVersionHigh)
	case k.minEncrypt > 0 && ver < k.minEncrypt:
		return "", 0, errors.New(errEncVersionLow)
	}
	kv := k.versions[ver]
	if kv == nil || ver < k.minDecrypt {
		return "", 0, errors.New(errEncVersionLow)
	}
	nonce := make([]byte, gcmNonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return "", 0, err
	}
	out := kv.aead.Seal(nonce, nonce, pt, nil)
	return versionPrefix + strconv.Itoa(ver) + ":" + base64.StdEncoding.EncodeToString(out), ver, nil
}

// decrypt follows keysutil.Policy.Decrypt, check for check and message for
// message.
func (k *key) decrypt(value string) ([]byte, error) {
	if !strings.HasPrefix(value, versionPrefix) {
		return nil, errors.New(errNoPrefix)
	}
	parts := strings.SplitN(strings.TrimPrefix(value, versionPrefix), ":", 2)
	if len(parts) != 2 {
		return nil, errors.New(errWrongFields)
	}
	ver, err := strconv.Atoi(parts[0])
	if err != nil {
		return nil, errors.New(errBadVersion)
	}
	if ver == 0 {
		// Compatibility with keys that started at version 0.
		ver = 1
	}
	if ver > k.latest {
		return nil, errors.New(errTooNew)
	}
	if k.minDecrypt > 0 && ver < k.minDecrypt {
		return nil, errors.New(errTooOld)
	}
	decoded, err := base64.StdEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errors.New(errBadBase64)
	}
	kv := k.versions[ver]
	if kv == nil {
		return nil, errors.New(errTooOld)
	}
	if len(decoded) < gcmNonceSize {
		return nil, errors.New(errBadLength)
	}
	pt, err := kv.aead.Open(nil, decoded[:gcmNonceSize], decoded[gcmNonceSize:], nil)
	if err != nil {
		return nil, err // "cipher: message authentication failed"
	}
	return pt, nil
}

type keyData struct {
	AllowPlaintextBackup bool             `json:"allow_plaintext_backup"`
	AutoRotatePeriod     int64            `json:"auto_rotate_period"`
	DeletionAllowed      bool             `json:"deletion_allowed"`
	Derived              bool             `json:"derived"`
	Exportable           bool             `json:"exportable"`
	ImportedKey          bool             `json:"imported_key"`
	Keys                 map[string]int64 `json:"keys"`
	LatestVersion        int              `json:"latest_version"`
	MinAvailableVersion  int              `json:"min_available_version"`
	MinDecryptionVersion int              `json:"min_decryption_version"`
	MinEncryptionVersion int              `json:"min_encryption_version"`
	Name                 string           `json:"name"`
	SoftDeleted          bool             `json:"soft_deleted"`
	SupportsDecryption   bool             `json:"supports_decryption"`
	SupportsDerivation   bool             `json:"supports_derivation"`
	SupportsEncryption   bool             `json:"supports_encryption"`
	SupportsSigning      bool             `json:"supports_signing"`
	Type                 string           `json:"type"`
}

// data is what reading the key returns; versions below
// min_decryption_version are archived and not listed.
func (k *key) data() keyData {
	d := keyData{
		AllowPlaintextBackup: k.allowPlaintextBackup,
		AutoRotatePeriod:     int64(k.autoRotatePeriod / time.Second),
		DeletionAllowed:      k.deletionAllowed,
		Exportable:           k.exportable,
		Keys:                 make(map[string]int64),
		LatestVersion:        k.latest,
		MinDecryptionVersion: k.minDecrypt,
		MinEncryptionVersion: k.minEncrypt,
		Name:                 k.name,
		SupportsDecryption:   true,
		SupportsDerivation:   true,
		SupportsEncryption:   true,
		Type:                 k.typ,
	}
	for v, kv := range k.versions {
		if v >= k.minDecrypt {
			d.Keys[strconv.Itoa(v)] = kv.created.Unix()
		}
	}
	return d
}

// route serves the Transit paths below the mount.
func (e *engine) route(rest string) *route {
	parts := strings.Split(rest, "/")
	name := ""
	if len(parts) >= 2 {
		name = parts[1]
	}
	if name == "" {
		return nil
	}
	exists := func() bool { return e.keys[name] != nil }
	switch {
	case len(parts) == 2 && parts[0] == "keys":
		return &route{
			read:   func(*request) reply { return e.readKey(name) },
			write:  func(r *request) reply { return e.writeKey(name, r) },
			del:    func(*request) reply { return e.deleteKey(name) },
			exists: exists,
		}
	case len(parts) == 3 && parts[0] == "keys" && parts[2] == "config":
		return &route{write: func(r *request) reply { return e.configKey(name, r) }}
	case len(parts) == 3 && parts[0] == "keys" && parts[2] == "rotate":
		return &route{write: func(*request) reply { return e.rotateKey(name) }}
	case len(parts) == 2 && parts[0] == "encrypt":
		return &route{write: func(r *request) reply { return e.encrypt(name, r) }, exists: exists}
	case len(parts) == 2 && parts[0] == "decrypt":
		return &route{write: func(r *request) reply { return e.decrypt(name, r) }}
	case len(parts) == 2 && parts[0] == "rewrap":
		return &route{write: func(r *request) reply { return e.rewrap(name, r) }}
	}
	return nil
}

func (e *engine) readKey(name string) reply {
	k := e.keys[name]
	if k == nil {
		return errorReply(http.StatusNotFound)
	}
	return okReply(k.data())
}

func (e *engine) writeKey(name string, r *request) reply {
	for _, f := range []string{"derived", "convergent_encryption"} {
		if b, _, err := r.bool(f); err != nil {
			return fieldError(f, err)
		} else if b {
			return badRequest("transittest: derived and convergent keys are not supported")
		}
	}
	if k := e.keys[name]; k != nil {
		return okReply(k.data(), fmt.Sprintf("key %s already existed", name))
	}
	typ, _, err := r.str("type")
	if err != nil {
		return fieldError("type", err)
	}
	k, err := e.createKey(name, typ)
	if err != nil {
		return badRequest(err.Error())
	}
	if v, ok, err := r.bool("exportable"); err != nil {
		return fieldError("exportable", err)
	} else if ok {
		k.exportable = v
	}
	if v, ok, err := r.bool("allow_plaintext_backup"); err != nil {
		return fieldError("allow_plaintext_backup", err)
	} else if ok {
		k.allowPlaintextBackup = v
	}
	if d, ok, err := r.duration("auto_rotate_period"); err != nil {
		return fieldError("auto_rotate_period", err)
	} else if ok {
		k.autoRotatePeriod = d
	}
	return okReply(k.data())
}

func (e *engine) deleteKey(name string) reply {
	k := e.keys[name]
	if k == nil {
		return noContent()
	}
	if !k.deletionAllowed {
		return badRequest("deletion is not allowed for this key")
	}
	delete(e.keys, name)
	return noContent()
}

func (e *engine) configKey(name string, r *request) reply {
	k := e.keys[name]
	if k == nil {
		return badRequest(fmt.Sprintf("no existing key named %s could be found", name))
	}
	minDec, minEnc := k.minDecrypt, k.minEncrypt
	if v, ok, err := r.int("min_decryption_version"); err != nil {
		return fieldError("min_decryption_version", err)
	} else if ok {
		if v < 0 || v > k.latest {
			return badRequest(fmt.Sprintf("cannot set min decryption version of %d, latest key version is %d", v, k.latest))
		}
		if v > 0 {
			minDec = v
		}
	}
	if v, ok, err := r.int("min_encryption_version"); err != nil {
		return fieldError("min_encryption_version", err)
	} else if ok {
		if v < 0 || v > k.latest {
			return badRequest(fmt.Sprintf("cannot set min encryption version of %d, latest key version is %d", v, k.latest))
		}
		minEnc = v
	}
	if minEnc > 0 && minEnc < minDec {
		return badRequest("min encryption version should not be less than min decryption version")
	}
	if v, ok, err := r.bool("exportable"); err != nil {
		return fieldError("exportable", err)
	} else if ok {
		if k.exportable && !v {
			return badRequest("exportable key cannot be made non-exportable")
		}
		k.exportable = v
	}
	if v, ok, err := r.bool("allow_plaintext_backup"); err != nil {
		return fieldError("allow_plaintext_backup", err)
	} else if ok {
		if k.allowPlaintextBackup && !v {
			return badRequest("plaintext backup cannot be disabled once allowed")
		}
		k.allowPlaintextBackup = v
	}
	if v, ok, err := r.bool("deletion_allowed"); err != nil {
		return fieldError("deletion_allowed", err)
	} else if ok {
		k.deletionAllowed = v
	}
	if d, ok, err := r.duration("auto_rotate_period"); err != nil {
		return fieldError("auto_rotate_period", err)
	} else if ok {
		k.autoRotatePeriod = d
	}
	k.minDecrypt, k.minEncrypt = minDec, minEnc
	return okReply(k.data())
}

func (e *engine) rotateKey(name string) reply {
	k := e.keys[name]
	if k == nil {
		return badRequest("key not found")
	}
	if err := k.rotate(); err != nil {
		return errorReply(http.StatusInternalServerError, err.Error())
	}
	return okReply(k.data())
}

// batchItem is one element of batch_input (or the single request).
type batchItem struct {
	Plaintext  string      `json:"plaintext"`
	Ciphertext string      `json:"ciphertext"`
	Context    string      `json:"context"`
	Nonce      string      `json:"nonce"`
	Reference  string      `json:"reference"`
	KeyVersion json.Number `json:"key_version"`
}

// items returns the request's items: batch_input, or one item built from
// the top-level fields. isBatch reports which.
func (r *request) items(field string) (items []batchItem, isBatch bool, fail *reply) {
	if r.has("batch_input") {
		if err := json.Unmarshal(r.data["batch_input"], &items); err != nil {
			rep := badRequest("failed to parse batch input: " + err.Error())
			return nil, true, &rep
		}
		if len(items) == 0 {
			rep := badRequest(errMissingBatch)
			return nil, true, &rep
		}
		return items, true, nil
	}
	var it batchItem
	for k, dst := range map[string]*string{"plaintext": &it.Plaintext, "ciphertext": &it.Ciphertext, "context": &it.Context, "nonce": &it.Nonce, "reference": &it.Reference} {
		v, _, err := r.str(k)
		if err != nil {
			rep := fieldError(k, err)
			return nil, false, &rep
		}
		*dst = v
	}
	if v, ok, err := r.int("key_version"); err != nil {
		rep := fieldError("key_version", err)
		return nil, false, &rep
	} else if ok {
		it.KeyVersion = json.Number(strconv.Itoa(v))
	}
	switch field {
	case "plaintext":
		if !r.has("plaintext") {
			rep := badRequest(errMissingPlain)
			return nil, false, &rep
		}
	case "ciphertext":
		if it.Ciphertext == "" {
			rep := badRequest(errMissingCipher)
			return nil, false, &rep
		}
	}
	return []batchItem{it}, false, nil
}

func (it batchItem) keyVersion() (int, error) {
	if it.KeyVersion == "" {
		return 0, nil
	}
	v, err := strconv.Atoi(it.KeyVersion.String())
	if err != nil {
		return 0, errors.New("invalid key_version")
	}
	return v, nil
}

// cipherResult is an encrypt or rewrap result item.
type cipherResult struct {
	Ciphertext string `json:"ciphertext,omitempty"`
	KeyVersion int    `json:"key_version,omitempty"`
	Reference  string `json:"reference"`
	Error      string `json:"error,omitempty"`
}

// plainResult is a decrypt result item; plaintext is always present.
type plainResult struct {
	Plaintext string `json:"plaintext"`
	Reference string `json:"reference"`
	Error     string `json:"error,omitempty"`
}

// batchStatus is 200, or 400 when an item failed, unless
// partial_failure_response_code overrides it and something succeeded.
func (r *request) batchStatus(failed, succeeded bool) int {
	if !failed {
		return http.StatusOK
	}
	code := http.StatusBadRequest
	if v, ok, err := r.int("partial_failure_response_code"); err == nil && ok && succeeded && v >= 1 && v <= 599 {
		code = v
	}
	return code
}

func (e *engine) encrypt(name string, r *request) reply {
	items, isBatch, fail := r.items("plaintext")
	if fail != nil {
		return *fail
	}
	k := e.keys[name]
	if k == nil {
		// Upsert: encrypt creates a missing key (the ACL asked for
		// "create" rather than "update").
		typ, _, err := r.str("type")
		if err != nil {
			return fieldError("type", err)
		}
		if k, err = e.createKey(name, typ); err != nil {
			return badRequest(err.Error())
		}
	}
	results := make([]cipherResult, len(items))
	failed, succeeded := false, false
	for i, it := range items {
		results[i].Reference = it.Reference
		pt, err := base64.StdEncoding.DecodeString(it.Plaintext)
		if err != nil {
			results[i].Error, failed = err.Error(), true
			continue
		}
		ver, err := it.keyVersion()
		if err != nil {
			results[i].Error, failed = err.Error(), true
			continue
		}
		ct, v, err := k.encrypt(pt, ver)
		if err != nil {
			results[i].Error, failed = err.Error(), true
			continue
		}
		results[i].Ciphertext, results[i].KeyVersion, succeeded = ct, v, true
	}
	if isBatch {
		return statusReply(r.batchStatus(failed, succeeded), map[string]any{"batch_results": results})
	}
	if results[0].Error != "" {
		return badRequest(results[0].Error)
	}
	return okReply(map[string]any{"ciphertext": results[0].Ciphertext, "key_version": results[0].KeyVersion})
}

func (e *engine) decrypt(name string, r *request) reply {
	items, isBatch, fail := r.items("ciphertext")
	if fail != nil {
		return *fail
	}
	k := e.keys[name]
	if k == nil {
		return badRequest(errKeyNotFound)
	}
	results := make([]plainResult, len(items))
	failed, succeeded := false, false
	for i, it := range items {
		results[i].Reference = it.Reference
		if it.Ciphertext == "" {
			results[i].Error, failed = errMissingCipher, true
			continue
		}
		pt, err := k.decrypt(it.Ciphertext)
		if err != nil {
			results[i].Error, failed = err.Error(), true
			continue
		}
		results[i].Plaintext, succeeded = base64.StdEncoding.EncodeToString(pt), true
	}
	if isBatch {
		return statusReply(r.batchStatus(failed, succeeded), map[string]any{"batch_results": results})
	}
	if results[0].Error != "" {
		return badRequest(results[0].Error)
	}
	return okReply(map[string]any{"plaintext": results[0].Plaintext})
}

// rewrap decrypts and re-encrypts under the latest version (or key_version).
// Unlike encrypt and decrypt, a batch with failed items still answers 200.
func (e *engine) rewrap(name string, r *request) reply {
	items, isBatch, fail := r.items("ciphertext")
	if fail != nil {
		return *fail
	}
	k := e.keys[name]
	if k == nil {
		return badRequest(errKeyNotFound)
	}
	results := make([]cipherResult, len(items))
	for i, it := range items {
		results[i].Reference = it.Reference
		if it.Ciphertext == "" {
			results[i].Error = errMissingCipher
			continue
		}
		pt, err := k.decrypt(it.Ciphertext)
		if err != nil {
			results[i].Error = err.Error()
			continue
		}
		ver, err := it.keyVersion()
		if err != nil {
			results[i].Error = err.Error()
			continue
		}
		ct, v, err := k.encrypt(pt, ver)
		if err != nil {
			results[i].Error = err.Error()
			continue
		}
		results[i].Ciphertext, results[i].KeyVersion = ct, v
	}
	if isBatch {
		return okReply(map[string]any{"batch_results": results})
	}
	if results[0].Error != "" {
		return badRequest(results[0].Error)
	}
	return okReply(map[string]any{"ciphertext": results[0].Ciphertext, "key_version": results[0].KeyVersion})
}
