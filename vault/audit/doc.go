// Package audit is fieldvault's tamper-evident audit log: one record per
// decision (allow and deny) and per administrative action, hash-chained,
// with checkpoints signed by Ed25519, written by a [Log] into a [Sink]
// ([FileSink], [RedisStreamSink]) and checked by [Verify].
//
// Records hold no plaintext, no token and no identifier in clear:
// identifiers travel as [Ref]s. Records outlive erasure; the Ref key is per
// deployment, not per subject, so erasing a subject does not orphan them.
//
// # What the chain proves, and what it does not
//
// Each record carries its sequence number (1, 2, ... per node), the hash of
// the record before it and its own hash, SHA-256 over its canonical
// encoding. Each vault replica (Node) keeps its own chain. A checkpoint is a
// node's Ed25519 signature over (node, seq, hash, time) of its latest
// record. The Log writes one into the log with every group commit, in the
// same write as the records it covers, and puts the latest into a
// checkpoint store kept apart from the log (a separate file, a separate
// Redis key) every CheckpointEvery records or CheckpointInterval, at start
// and on Close.
//
// Against someone who can write the log but does not hold the signing key:
//
//   - an edited, deleted, reordered or inserted record is found by Verify,
//     with its kind and seq: an edit breaks the record's hash; an edit with
//     the hash recomputed breaks the next record's prev_hash; rewriting the
//     whole chain from that point breaks every later checkpoint, which
//     cannot be re-signed;
//   - records appended to the log are found: no signed checkpoint covers
//     them (Unsigned);
//   - a truncated tail is found as long as the checkpoint store still holds
//     a checkpoint past the cut: the log must reach every checkpoint. This
//     is why the checkpoint store must live apart from the log, with
//     different write access, ideally on another machine, and be backed up
//     separately.
//
// It does not prove:
//
//   - anything against a holder of the signing key, who can rewrite the
//     whole log and sign new checkpoints: keep that key away from the
//     log's storage and its administrators;
//   - that the last records were not cut off, with their checkpoints, when
//     the checkpoint store does not cover them yet (at most CheckpointEvery
//     records or CheckpointInterval; see Report.Stored), nor when the log
//     and the checkpoint store were both rolled back together (restored
//     from one backup): an external witness that keeps the latest
//     checkpoints closes that gap;
//   - that every decision was logged: the vault guarantees that by
//     committing the record before releasing plaintext and failing closed
//     (AUDIT_UNAVAILABLE) when Append fails. An Append that failed may still
//     have left its record in the log (the sink stored it but could not
//     confirm); such a record is chained like any other, and the vault
//     released nothing for it.
//
// # Canonical encoding
//
// A record is hashed and stored as one line of JSON, its canonical
// encoding: the fields of [Record] in declaration order under their json
// names, no whitespace, with these rules, which match encoding/json's
// Marshal of a Record whose times are in UTC:
//
//   - a field tagged omitempty is left out when it is "", 0, nil, an empty
//     slice or map, or a nil pointer; omitzero times are left out when
//     zero; every other field is always written (seq, node, prev_hash,
//     hash, type, ts_utc, fields_released; kind and ref of evidence;
//     token_ref and decision of items; type of grounds; entity of a party);
//   - integers in decimal; times in UTC as RFC 3339 with the fewest
//     fractional-second digits that are exact ("2025-01-02T03:04:05.5Z");
//   - strings as JSON strings, escaping '"' and '\' with a backslash, the
//     control characters \b \f \n \r \t as such and the others as \u00XX,
//     '<' '>' '&' as \u003c \u003e \u0026, U+2028 and U+2029 as \u2028
//     and \u2029, lower-case hex; every other character as its UTF-8; an
//     invalid UTF-8 byte becomes U+FFFD (as UTF-8);
//   - details (a map) with keys in byte order; keys must be valid UTF-8.
//
// Hash is the lower-case hex SHA-256 of the canonical encoding with hash
// set to "" (the line reads "hash":""); the stored line is the same
// encoding with the hash filled in. The first record of a chain has
// prev_hash "". A reader decodes a line and re-encodes it: a line that is
// not exactly the canonical encoding of what it decodes to does not verify,
// so no byte of a stored record can change unnoticed, unknown fields
// included. New fields added to Record must be omitempty or omitzero, so
// that older records keep their encoding.
//
// A checkpoint line is
//
//	{"checkpoint":{"node":N,"seq":S,"hash":H,"time":T},"sig":"<hex>"}
//
// with the same string and time rules, the signature being Ed25519 over
// "fieldvault audit checkpoint v1\n" followed by the inner object's bytes.
// Seq 0 with hash "" is the genesis checkpoint of an empty chain. The
// checkpoint store holds the latest checkpoint line.
//
// # Refs
//
// A Ref is the first 32 hex digits (128 bits) of
// HMAC-SHA256(key, "fieldvault audit ref v1" || 0x00 || identifier), with a
// 32-byte key per deployment (Config.RefKey). It is the same for the same
// key in every process and across restarts, so a data-subject access report
// finds a subject's records by [ForSubject]; without the key it cannot be
// reversed or confirmed by guessing identifiers, which matters because
// phone numbers and national IDs are guessable. With the key it can: guard
// it like a data key. No key material is ever written to a sink, a log line
// or an error.
//
// # Group commit and failure
//
// [Log.Append] returns only after the record is durable: concurrent
// Appends wait together and are written with one sink write and one sync
// (one fsync for [FileSink]; one atomic script and one AOF fsync for
// [RedisStreamSink]). If the sink fails, every Append of the group fails
// and the chain head stays where it was; before its next write the Log
// re-reads the sink's tail, so the chain continues validly after the sink
// recovers.
//
// # Deployment
//
//   - Node: one per vault replica, stable across restarts (a StatefulSet pod
//     name); each has its own chain: FileSink directory or Redis stream
//     [StreamKey](prefix, node). Verify each node's chain on its own.
//   - RefKey: 32 random bytes per deployment, stored like a data key
//     (wrapped by the KEK). Rotating it makes old records unfindable by
//     [ForSubject].
//   - SigningKey: an Ed25519 key kept out of reach of whoever administers
//     the log's storage. Give auditors the public key ([Log.PublicKey]);
//     Verify needs nothing else.
//   - FileSink: the log in a 0700 directory; point
//     FileConfig.CheckpointPath at another volume or a location backed up
//     separately. RedisStreamSink: appendonly yes and appendfsync always
//     (checked at start); the checkpoint key has no hash tag, so in a
//     Cluster it usually lives on another master; RedisConfig.CheckpointClient
//     can put it on another Redis altogether.
//   - Verify a file log that a vault is writing through a read-only
//     FileSink (FileConfig.ReadOnly): it takes no lock and repairs nothing.
package audit
