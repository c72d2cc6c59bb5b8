// Package pebble is fieldvault's embedded store: a store.Store on two local
// Pebble instances, so that `fieldvault serve` works on one machine with no
// server.
//
// # Durability
//
// Every write method commits one Pebble batch with pebble.Sync and returns
// after the WAL fsync. Concurrent commits share fsyncs: Pebble's commit
// pipeline writes batches to the WAL in order and one syncing goroutine
// fsyncs everything written so far, releasing every batch it covered (group
// commit; see commitPipeline and record.LogWriter in Pebble).
//
// Pebble makes a batch visible to readers before its fsync completes. So
// that no read answers from data a crash could still lose, writers hold
// their locks only until the batch is visible, wait for the fsync after
// releasing them (so concurrent writers group-commit), and every read that
// may have seen a batch still waiting for its fsync waits for it too (one
// shared fsync), before returning.
//
// # Layout
//
// The main instance, in the data directory, holds token rows, the
// fingerprint and subject indexes, counters and records. Keys start with a
// one-byte keyspace prefix; see keys.go. Insert-if-absent and
// compare-and-set take striped mutexes over the keys they read, in stripe
// order, so concurrent calls cannot deadlock; each call is one batch and
// one durable commit. Counters are Pebble merge operands written in the same
// batch as the rows they count, so they are exact.
//
// # Key management
//
// Subject key material lives in a separate Pebble instance in
// dir/subject-keys. Crypto-shredding works only if no copy of a subject's
// key material outlives its erasure, backups included, while the token
// ciphertext it protects may be backed up and kept for years. The two
// therefore need different backup policies: back up dir/subject-keys on its
// own, to a target whose copies expire well within the 90-day erasure
// deadline, and dir without it on the longer schedule. A Pebble checkpoint
// or a copy of a closed store taken per directory is a consistent backup of
// that directory.
//
// The subject-keys instance also scrubs what it deletes: DeleteSubjectKeys
// compacts the deleted range away, and the instance's files are
// overwritten with zeros before Pebble removes them, and never recycled, so
// the material does not linger in obsolete tables or WAL segments. This is
// best effort below the file system (copy-on-write file systems, SSD
// remapping); put the data directory on an encrypted volume.
//
// The data directories are created with mode 0700.
package pebble

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log"
	"os"
	"path/filepath"
	"sync/atomic"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/fieldvault/fieldvault/vault/store"
)

// SubjectKeysDir is the subdirectory of the data directory holding the
// subject key material instance.
const SubjectKeysDir = "subject-keys"

// Options configures a Store. The zero value gives the defaults.
type Options struct {
	// CacheSize is the block cache, in bytes, shared by both instances.
	// Default 64 MiB. Pebble charges memtables to its block cache; Open
	// adds their size on top, so CacheSize is left for blocks.
	CacheSize int64
	// MemTableSize is the main instance's memtable size in bytes; up to
	// two memtables exist at once. Larger memtables mean fewer flushes and
	// more memory. A batch above half of it is committed as its own
	// flushable table. Default 32 MiB. The subject-keys instance uses 4 MiB.
	MemTableSize uint64
	// BloomBitsPerKey sizes the Bloom filters that let point lookups of
	// absent keys (new tokens, unbound fingerprints) skip tables. Default
	// 10, about 1% false positives.
	BloomBitsPerKey int
	// Logger receives Pebble's log output. Default: errors and fatal
	// errors go to the standard library's log package, and informational
	// messages (WAL replay, compactions) are dropped.
	Logger pebbledb.Logger
}

// quietLogger is the default Logger.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)              {}
func (quietLogger) Errorf(format string, args ...any) { log.Printf("pebble: "+format, args...) }
func (quietLogger) Fatalf(format string, args ...any) { log.Fatalf("pebble: "+format, args...) }

const (
	defaultCacheSize    = 64 << 20
	defaultMemTableSize = 32 << 20
	subjectKeysMemTable = 4 << 20
	defaultBloomBits    = 10
)

func (o *Options) setDefaults() {
	if o.CacheSize <= 0 {
		o.CacheSize = defaultCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = defaultMemTableSize
	}
	if o.BloomBitsPerKey <= 0 {
		o.BloomBitsPerKey = defaultBloomBits
	}
	if o.Logger == nil {
		o.Logger = quietLogger{}
	}
}

// Store is a store.Store on local Pebble instances. It is safe for
// concurrent use.
type Store struct {
	gate store.Gate // operations in flight finish before Close

	main *instance
	keys *instance

	// stopFilter cancels the key filter's background build; filterDone is
	// closed when it has finished.
	stopFilter context.CancelFunc
	filterDone chan struct{}
}

var _ store.Store = (*Store)(nil)

// instance is one Pebble database and the locks and counters around it.
type instance struct {
	db    *pebbledb.DB
	locks stripes
	// dir and scrub are set for the subject-keys instance: its obsolete
	// WAL files are zeroed after a deletion (scrubObsoleteLogs).
	dir   string
	scrub *scrubFS
	// unsynced counts batches applied (visible) but not yet fsynced.
	unsynced atomic.Int64
	// filter is set for the main instance: a Bloom filter over every
	// token and fingerprint key (see keyFilter).
	filter *keyFilter
}

// Open opens or creates a store in dir.
func Open(dir string, opt Options) (*Store, error) {
	return open(dir, opt, nil)
}

// open opens a store on fs, or on the local disk when fs is nil (tests pass
// in-memory and instrumented file systems).
func open(dir string, opt Options, fs vfs.FS) (*Store, error) {
	opt.setDefaults()
	keysDir := filepath.Join(dir, SubjectKeysDir)
	mainFS := fs
	if fs == nil {
		for _, d := range []string{dir, keysDir} {
			if err := privateDir(d); err != nil {
				return nil, err
			}
		}
		fs = vfs.Default
	} else if err := fs.MkdirAll(keysDir, 0o700); err != nil {
		return nil, fmt.Errorf("pebble store: %w", err)
	}
	// Up to MemTableStopWritesThreshold (2) queued memtables and the
	// mutable one per instance, each reserved in the cache.
	cache := pebbledb.NewCache(opt.CacheSize + 3*int64(opt.MemTableSize) + 3*subjectKeysMemTable)
	defer cache.Unref()

	main, err := openInstance(dir, pebbleOptions(opt, cache, opt.MemTableSize, mainFS))
	if err != nil {
		return nil, err
	}
	sfs := &scrubFS{fs}
	keys, err := openInstance(keysDir, pebbleOptions(opt, cache, subjectKeysMemTable, *sfs))
	if err != nil {
		_ = main.db.Close()
		return nil, err
	}
	keys.dir, keys.scrub = keysDir, sfs
	main.filter = newKeyFilter(0)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{main: main, keys: keys, stopFilter: cancel, filterDone: make(chan struct{})}
	go func() {
		defer close(s.filterDone)
		// On failure the filter stays not ready: every insert then reads
		// the store, as without a filter.
		_ = main.filter.build(ctx, main.db)
	}()
	return s, nil
}

// privateDir creates dir with mode 0700, or tightens an existing one to it.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pebble store: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("pebble store: %w", err)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("pebble store: %w", err)
		}
	}
	return nil
}

func pebbleOptions(opt Options, cache *pebbledb.Cache, memTable uint64, fs vfs.FS) *pebbledb.Options {
	o := &pebbledb.Options{
		Cache:        cache,
		MemTableSize: memTable,
		Merger:       counterMerger,
		Logger:       opt.Logger,
		FS:           fs,
		// The newest format this Pebble version writes by default.
		FormatMajorVersion: pebbledb.FormatNewest,
	}
	o.Levels[0].FilterPolicy = bloom.FilterPolicy(opt.BloomBitsPerKey)
	// Later levels inherit the filter policy. A non-nil FS is used as
	// is, so scrubFS's Remove and ReuseForWrite are the ones Pebble calls.
	o.EnsureDefaults()
	return o
}

func openInstance(dir string, o *pebbledb.Options) (*instance, error) {
	db, err := pebbledb.Open(dir, o)
	if err != nil {
		return nil, fmt.Errorf("pebble store: opening %s: %w: %w", dir, store.ErrUnavailable, err)
	}
	in := &instance{db: db}
	in.locks.seed = maphash.MakeSeed()
	if err := in.checkFormat(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return in, nil
}

// checkFormat records the key layout version in a new database and refuses
// a database written with another.
func (in *instance) checkFormat() error {
	v, closer, err := in.db.Get(formatKey)
	switch {
	case errors.Is(err, pebbledb.ErrNotFound):
		if err := in.db.Set(formatKey, []byte{layoutVersion}, pebbledb.Sync); err != nil {
			return unavailable(err)
		}
		return nil
	case err != nil:
		return unavailable(err)
	}
	defer closer.Close()
	if len(v) != 1 || v[0] != layoutVersion {
		return fmt.Errorf("pebble store: key layout version %x, want %d: %w", v, layoutVersion, store.ErrCorrupt)
	}
	return nil
}

// Close closes both instances. Operations in flight finish first; later
// ones, and a second Close, return store.ErrClosed.
func (s *Store) Close() error {
	return s.gate.Close(func() error {
		s.stopFilter()
		<-s.filterDone
		return errors.Join(s.main.close(), s.keys.close())
	})
}

func (in *instance) close() error {
	if err := in.db.Close(); err != nil {
		return unavailable(err)
	}
	return nil
}

// Ping checks that both instances are open and writable: it commits an
// empty, synced WAL record to each.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	for _, in := range []*instance{s.main, s.keys} {
		if err := in.db.LogData(nil, pebbledb.Sync); err != nil {
			return unavailable(err)
		}
	}
	return nil
}

// enter starts an operation; leave ends it.
func (s *Store) enter(ctx context.Context) error { return s.gate.Enter(ctx) }

func (s *Store) leave() { s.gate.Leave() }

func unavailable(err error) error {
	return fmt.Errorf("pebble store: %w: %w", store.ErrUnavailable, err)
}

func corrupt(what string, err error) error {
	return fmt.Errorf("pebble store: %s: %w", what, err)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("pebble store: %w: "+format, append([]any{store.ErrInvalid}, args...)...)
}

// commit makes b durable. The caller holds the locks guarding what b was
// built from; commit releases them (unlock) once b is visible, so other
// writers proceed while this one waits for the shared fsync.
func (in *instance) commit(b *pebbledb.Batch, unlock func()) error {
	if b.Empty() {
		unlock()
		_ = b.Close()
		return in.settle()
	}
	in.unsynced.Add(1)
	err := in.db.ApplyNoSyncWait(b, pebbledb.Sync)
	unlock()
	if err == nil {
		err = b.SyncWait()
	}
	in.unsynced.Add(-1)
	_ = b.Close()
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// settle returns once everything a read just made could have seen is
// durable. A batch becomes visible before its fsync; if any batch is in
// that window, a synced empty record (sharing the next group fsync) orders
// after it in the WAL.
func (in *instance) settle() error {
	if in.unsynced.Load() == 0 {
		return nil
	}
	if err := in.db.LogData(nil, pebbledb.Sync); err != nil {
		return unavailable(err)
	}
	return nil
}
