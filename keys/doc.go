// Package keys holds fieldvault's key hierarchy below the KEK: per-category
// Tink keysets and per-subject data keys (DEKs), and the sealed-value format.
//
// # Key management
//
//	KEK (package kek: local key file or Vault Transit)
//	 └─ per category: a Tink AEAD keyset (AES-256-GCM), versioned
//	     │             a Tink PRF keyset (HMAC-SHA256) for fingerprints
//	     └─ per (subject, category, version): a random 256-bit DEK,
//	        wrapped by that version of the category keyset
//	         └─ values: AES-256-GCM under the DEK, random 96-bit nonce,
//	            associated data binding token, category and subject
//
// Keysets are stored wrapped by the KEK and unwrapped once, then cached: the
// KEK is on the start-up and rotation path, not the request path. DEKs are
// stored wrapped by their category keyset and cached unwrapped in a bounded
// in-memory cache with a time limit, so a DEK deleted by another replica stops
// being usable here within CacheTTL.
//
// # Crypto-shredding
//
// A value can be decrypted only with its subject's DEK. Deleting a subject's
// DEKs (store.DeleteSubjectKeys) therefore makes every copy of that subject's
// ciphertext unreadable, backups included, as long as no backup of the DEKs
// outlives the erasure: back up subject key material separately from token
// rows, with a retention shorter than the erasure deadline (see README). The
// category keysets are not enough: they only unwrap DEKs.
//
// # Versions and rotation
//
// Each category keyset has numbered versions (1, 2, ...), each a Tink key.
// New DEKs, and so new values, use the primary version; older versions still
// decrypt until they are disabled or destroyed. Rotate adds a version and
// makes it primary. A sealed value starts with a format byte and its key
// version, so it names the key that opens it.
//
// Fingerprints (deterministic tokens) use the category PRF keyset's primary
// key, which Rotate does not change: rotating it would break equality with
// every existing deterministic token.
//
// # Secrets in memory
//
// DEKs and keysets live in unexported fields and never appear in errors,
// logs or String output. Zeroing memory in Go is best-effort; the package
// clears DEK bytes it no longer needs with clear().
package keys
