// Package kek defines the key-encryption key (KEK) that protects fieldvault's
// per-category keysets at rest, and its backends: a local key file (the
// embedded default) and HashiCorp Vault (or OpenBao) Transit.
//
// The KEK is on the rotation and start-up path, never on the request path:
// keysets are unwrapped once and cached by package keys, so a KEK outage
// stops rotation but not serving.
//
// # Backends
//
// [Local] keeps numbered AES-256 key versions and a primary in one key file,
// created on first run by [LoadOrCreateLocal] with mode 0600 (missing
// directories are created with mode 0700) and replaced atomically on
// [Local.Rotate]. A key file readable or writable by group or others is
// refused. Blobs are
//
//	0xF1 | uvarint(version) | nonce (12 bytes) | AES-256-GCM ciphertext and tag
//
// with the header and the caller's aad as GCM additional data. Back the key
// file up separately from the data it protects: whoever holds both holds the
// plaintext, and losing the key file loses every keyset.
//
// [Transit] calls Vault's Transit engine through github.com/hashicorp/vault/api.
// Its blobs are Transit ciphertexts, "vault:v<N>:<base64>", so an operator
// can inspect them with the vault CLI. The engine ignores the context parameter
// for non-derived keys, so the KEK encrypts SHA-256(aad) || plaintext and
// checks the digest in constant time on unwrap. The key must exist before
// [NewTransit] runs (deploy/vault/setup.sh creates it); the service policy
// (deploy/vault/fieldvault-policy.hcl) grants update, not create, on
// encrypt, so Transit's encrypt upsert can never create a stray key.
//
// # Errors
//
// Every backend wraps the sentinel errors ([ErrInvalidCiphertext],
// [ErrUnavailable], [ErrPermissionDenied], [ErrKeyNotFound]) with %w and
// names itself ("kek/local: ...", "kek/transit: vault at https://...: ...").
// No error, log line, String or panic carries key bytes, a Vault token or
// plaintext. Clearing plaintext buffers after use is best-effort: Go may have
// copied them, and base64 strings cannot be cleared.
//
// # Testing against a real Vault
//
// The conformance suite in package kektest runs against [Local], against
// [Transit] talking to the Transit-compatible test server in package
// transittest, and against a real Vault or OpenBao whenever VAULT_ADDR and
// VAULT_TOKEN are set:
//
//	bao server -dev -dev-root-token-id=root &        # or: vault server -dev
//	export VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=root
//	go test -run 'RealVault' -v ./keys/kek/
//
// The token needs to create and rotate the key (a dev root token does). The
// test enables the mount if it is missing and creates the key if needed:
//
//	FIELDVAULT_TEST_TRANSIT_MOUNT  Transit mount (default "transit")
//	FIELDVAULT_TEST_TRANSIT_KEY    key name (default "fieldvault-kektest")
//
// VAULT_CACERT, VAULT_NAMESPACE and VAULT_SKIP_VERIFY are honoured by the
// test (not by [NewTransit], which reads only VAULT_ADDR and VAULT_TOKEN).
// The suite rotates the test key, so point it at a key nothing else uses.
package kek
