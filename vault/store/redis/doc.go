// Package redis is fieldvault's production store: a store.Store on Redis
// through go-redis's UniversalClient, on a standalone server, a
// Sentinel-managed master or a Redis Cluster. Stateless fieldvault replicas
// share one Redis; the store keeps no state of its own between calls.
//
//	s, err := redis.Open(ctx, "redis-cluster://10.0.0.1:6379,10.0.0.2:6379", redis.Options{})
//
// See NewClient for the URL forms (redis://, rediss://, redis-cluster://,
// redis-sentinel://) and New to use an existing client.
//
// # Redis settings
//
// Operators must run every master with:
//
//	appendonly yes
//	appendfsync always
//	maxmemory-policy noeviction
//	hash-max-listpack-entries 1024
//	hash-max-listpack-value 1024
//
// With appendfsync always Redis writes and fsyncs the AOF before it
// replies, so a nil error from a write method means the write survives a
// crash of Redis or of the machine. With everysec, a crash loses up to
// about a second of acknowledged writes; with appendonly no, everything
// since the last snapshot. Open reads these settings (CONFIG GET) on every
// master and, per Options.AOFCheck, logs a warning (the default) or refuses
// to start; AOFSkip is for managed services that disable CONFIG.
// noeviction makes a full Redis refuse writes (the API answers 503)
// instead of silently dropping rows or keys. The listpack limits keep the
// bucket hashes (below) compact; with Redis's defaults (128 entries, 64
// bytes) rows do not fit and buckets use the hashtable encoding, which
// costs about 70 more bytes per token.
//
// Replication is asynchronous: a failover to a replica loses what the old
// master acknowledged but had not yet sent. Options.WaitReplicas makes
// every write pipeline end with WAIT n, on the pipeline's own connection
// (through a hook on each node client, so also in a Cluster), and fail
// with store.ErrUnavailable unless n replicas acknowledged it within
// Options.WaitTimeout; the write may then still exist on the master, as
// after any ambiguous failure. WAIT does not make the replicas fsync: for
// failover durability the replicas need appendfsync always too. Redis 7.0
// has no WAITAOF.
//
// # Key layout
//
// Keys start with Options.Prefix ("fv:"); see keys.go for the full table.
// Token rows, fingerprint bindings, subject-index entries and subject keys
// live in buckets: small hashes whose key ends in a bucket number, the top
// Options.BucketBits bits of a 64-bit hash of the token (of the category
// and fingerprint, of the subject). A bucket key has no hash tag, so
// buckets spread over every Cluster slot and no tag makes a hot slot, and
// each command touches one key: nothing is cross-slot. Each row is a field
// of its bucket holding store.AppendToken's encoding; a hash of up to
// hash-max-listpack-entries small fields is a listpack, so the per-key
// overhead (about 90 bytes) is shared by the rows of the bucket. Choose
// BucketBits at creation as about log2(expected tokens / 64): the default,
// 16, suits up to about 10 million tokens. A store keeps the value it was
// created with (recorded in P meta); changing it needs a migration.
//
// Counters per (category, key version) are hash fields across 16 keys,
// changed with HINCRBY. Records are a hash each (revision, index, value),
// written by a compare-and-set script on their one key, with per-kind and
// per-index sorted sets of ids for ListRecords and ListByIndex; see
// records.go.
//
// # Round trips
//
// GetTokens, LookupFingerprints, GetSubjectKeys, GetRecords and
// InsertSubjectKeys are one pipelined round trip per Redis node (go-redis's
// ClusterClient splits a pipeline by node and sends the parts in
// parallel). InsertTokens is one for rows without fingerprints and two
// with: a fingerprint is bound only after its row is stored. UpdateTokenKeys
// is two: read, then compare-and-set each row (a script on its bucket)
// with the counter changes. Collisions and races take more rounds.
//
// Large pipelines are cut into chunks of about 15 KiB (45 KiB in a
// Cluster) sent in parallel on separate connections: Redis reads at most
// 16 KiB from a connection per event-loop iteration and, with appendfsync
// always, fsyncs once per iteration, so one connection would pay one fsync
// per 16 KiB of a batch while parallel ones share one.
//
// # Crashes and retries
//
// A write method's nil error means every command it sent was applied (and
// fsynced, with the settings above). A call that fails may have applied
// part of its commands; a fieldvault crash between round trips leaves the
// same. The layout keeps every such state safe:
//
//   - InsertTokens writes the subject-index entry with the row, and binds
//     the fingerprint (HSETNX) only after the row is stored. A crash in
//     between leaves a row nobody was given (its call did not return): its
//     fingerprint is unbound, so the next tokenisation of the value makes
//     and binds a new token; the orphan row is listed by ScanTokens and
//     erased with its subject, and is unreadable once the subject's keys
//     are shredded.
//   - A binding whose token has no row (a DeleteTokens interrupted between
//     its steps, or a Redis that lost the row's write and kept the
//     binding's, as after a failover) is treated as unbound: the vault
//     ignores a looked-up token without a row, and InsertTokens replaces
//     such a binding with a compare-and-set, so of two writers repairing it
//     at once exactly one wins and the other adopts its token.
//   - Two replicas tokenising one value at once both store a row; the first
//     HSETNX on the binding wins, the other removes its row and returns the
//     winner's token (store.ErrFingerprintBound), whose row already exists.
//   - The subject index is a superset: entries are added before rows and
//     removed after them, and SubjectTokens keeps only entries whose row
//     exists and names the subject. One race can drop an entry: deleting
//     a token while the same token string is inserted again for the same
//     subject; the row then survives its subject's erasure, unreadable once
//     the subject's keys are shredded.
//   - Counts are changed in the same pipelines as the rows, optimistically,
//     and corrected when a row is rejected. A crash between the two, a lost
//     reply retried by the client, or a rejected row whose correction did
//     not land makes TokenCounts drift from the rows. The vault's
//     disable/destroy check trusts a positive count and falls back to a
//     full ScanTokens walk when the count says zero, so drift never lets a
//     version in use be destroyed.
//   - go-redis retries a pipeline once on a network error (MaxRetries 1).
//     When the first attempt was applied and only its reply lost, HSETNX
//     reports the row as existing: the vault retries with a new token and
//     the first row is an orphan as above. A retried binding that finds
//     its own token counts as bound. A retried record compare-and-set
//     reports store.ErrConflict though it was applied; the vault re-reads
//     and sees it.
//
// # Outages
//
// The client dials with a 1 s timeout and reads and writes with 3 s ones,
// retries once, and does not queue: with Redis down, every call fails
// within a few seconds (at once when the connection is refused) with an
// error wrapping store.ErrUnavailable, which the API answers with 503
// STORE_UNAVAILABLE, and Ping (readiness) fails. go-redis redials on the
// next call and, after repeated failures, probes in the background, so the
// store recovers by itself when Redis returns. Scripts are loaded again
// when a restarted Redis no longer knows them (NOSCRIPT).
//
// # Subject keys
//
// DeleteSubjectKeys removes key material from Redis's memory with HDEL.
// Copies remain in the AOF until its next rewrite, in RDB snapshots and
// backups, and on replicas until they apply the deletion. For
// crypto-shredding to hold within the erasure deadline, keep subject keys
// on a Redis of their own (Options.KeysClient) with no long-lived backups,
// and have it rewrite its AOF (BGREWRITEAOF, or auto-aof-rewrite settings)
// well within that deadline; the token ciphertext may stay on the main
// Redis and its backups for years.
//
// # Scans
//
// ScanTokens and ScanSubjectKeys walk the buckets in order and each
// bucket's fields in byte order. Their cursor is the bucket and the last
// field returned, printable ASCII that depends only on the layout, not on
// Redis's SCAN cursors (which a Redis restart, failover or resharding
// invalidates, and which can repeat keys), so a job can persist it and
// resume across restarts of fieldvault and of Redis. A walk reads every
// bucket, empty or not: 65,536 small reads at the default BucketBits.
//
// # Compatibility
//
// The layout version ("1", in P meta) and bucket bits are checked at
// Open; a store written with another layout is refused with
// store.ErrCorrupt. Token rows use store.AppendToken, which carries its own
// format version.
package redis
