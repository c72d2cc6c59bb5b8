package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"slices"
	"strings"

	"github.com/fieldvault/fieldvault/vault/store"
)

// GetSubjectKeys implements store.SubjectKeys.
func (s *Store) GetSubjectKeys(ctx context.Context, refs []store.SubjectKeyRef) ([][]byte, error) {
	for _, r := range refs {
		if err := store.CheckRef(r); err != nil {
			return nil, err
		}
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	in := s.keys
	out := make([][]byte, len(refs))
	var key []byte
	for i, r := range refs {
		key = appendSubjectKeyKey(key[:0], r)
		v, closer, err := in.get(key)
		if err != nil {
			return nil, err
		}
		if v != nil {
			out[i] = bytes.Clone(v)
		}
		_ = closer.Close()
	}
	if err := in.settle(); err != nil {
		return nil, err
	}
	return out, nil
}

// InsertSubjectKeys implements store.SubjectKeys. Wrapped keys must be
// non-empty.
func (s *Store) InsertSubjectKeys(ctx context.Context, refs []store.SubjectKeyRef, wrapped [][]byte) ([][]byte, error) {
	if err := store.CheckSubjectKeys(refs, wrapped); err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	out := make([][]byte, len(refs))
	if len(refs) == 0 {
		return out, nil
	}
	in := s.keys
	keys := make([][]byte, len(refs))
	var ls lockSet
	for i, r := range refs {
		keys[i] = appendSubjectKeyKey(nil, r)
		ls.add(&in.locks, keys[i])
	}
	first := make(map[store.SubjectKeyRef]int, len(refs))
	b := in.db.NewBatch()
	in.locks.lock(&ls)
	unlock := func() { in.locks.unlock(&ls) }
	for i, r := range refs {
		if j, dup := first[r]; dup {
			out[i] = out[j]
			continue
		}
		first[r] = i
		v, closer, err := in.get(keys[i])
		if err != nil {
			unlock()
			_ = b.Close()
			return nil, err
		}
		if v != nil {
			out[i] = bytes.Clone(v)
		} else {
			_ = b.Set(keys[i], wrapped[i], nil)
			out[i] = wrapped[i]
		}
		_ = closer.Close()
	}
	if err := in.commit(b, unlock); err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteSubjectKeys implements store.SubjectKeys. After the deletion is
// durable, the subject's key range is compacted, so no live table or
// memtable holds the material any more and the files that did are
// scrubbed as Pebble removes them (see scrubFS). The compaction runs even
// when nothing was deleted, so retrying a call that failed in it finishes
// the job.
func (s *Store) DeleteSubjectKeys(ctx context.Context, subject string, categories []uint16) (int, error) {
	if err := store.CheckSubject(subject); err != nil {
		return 0, err
	}
	for _, c := range categories {
		if err := store.CheckCategory(c); err != nil {
			return 0, err
		}
	}
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.leave()
	in := s.keys
	subjectPrefix := store.AppendSubjectKeyPrefix([]byte{prefixSubjectKey}, subject)
	var prefixes [][]byte
	if categories == nil {
		prefixes = [][]byte{subjectPrefix}
	} else {
		cats := slices.Clone(categories)
		slices.Sort(cats)
		for _, c := range slices.Compact(cats) {
			prefixes = append(prefixes, binary.BigEndian.AppendUint16(slices.Clip(subjectPrefix), c))
		}
	}
	var keys [][]byte
	for _, p := range prefixes {
		err := in.scanPrefix(ctx, p, func(key, _ []byte) error {
			keys = append(keys, bytes.Clone(key))
			return nil
		})
		if err != nil {
			return 0, err
		}
	}

	n := 0
	if len(keys) > 0 {
		var ls lockSet
		for _, k := range keys {
			ls.add(&in.locks, k)
		}
		b := in.db.NewBatch()
		in.locks.lock(&ls)
		unlock := func() { in.locks.unlock(&ls) }
		for _, k := range keys {
			// Count only what this call deletes, not what a concurrent
			// call removed since the scan.
			ok, err := in.has(k)
			if err != nil {
				unlock()
				_ = b.Close()
				return 0, err
			}
			if ok {
				_ = b.Delete(k, nil)
				n++
			}
		}
		if err := in.commit(b, unlock); err != nil {
			return 0, err
		}
	}
	// The deleted keys' puts may still sit in a write-ahead log: list the
	// logs, flush every memtable (which rotates the log), then zero the
	// listed logs, all of whose contents are now in sstables. Pebble keeps
	// obsolete logs for recycling instead of deleting them; scrubFS makes
	// sure they are never reused. Then compact the range so no sstable keeps
	// the keys either (obsolete tables are zeroed before removal).
	if err := in.scrubLogs(func() error { return in.db.Flush() }); err != nil {
		return 0, unavailable(err)
	}
	if err := in.db.Compact(ctx, subjectPrefix, prefixEnd(subjectPrefix), false); err != nil {
		return 0, unavailable(err)
	}
	return n, nil
}

// ScanSubjectKeys implements store.SubjectKeys. Refs come in (subject
// length, subject, category, version) order.
func (s *Store) ScanSubjectKeys(ctx context.Context, cursor string, limit int) ([]store.SubjectKeyRef, string, error) {
	if err := s.enter(ctx); err != nil {
		return nil, "", err
	}
	defer s.leave()
	in := s.keys
	var refs []store.SubjectKeyRef
	next, err := in.scanPage(ctx, prefixSubjectKey, keysCursorTag, cursor, limit,
		func(last []byte) bool {
			r, err := store.DecodeSubjectKeyRef(last)
			return err == nil && store.CheckRef(r) == nil
		},
		func(key, _ []byte) error {
			r, err := store.DecodeSubjectKeyRef(key[1:])
			if err != nil {
				return corrupt("subject key", err)
			}
			refs = append(refs, r)
			return nil
		})
	if err != nil {
		return nil, "", err
	}
	if err := in.settle(); err != nil {
		return nil, "", err
	}
	return refs, next, nil
}

// scrubLogs zeroes the write-ahead logs that exist before flush runs, once
// flush has moved their contents into sstables. Logs created by or after
// flush are left alone. Only the subject-keys instance does this.
func (in *instance) scrubLogs(flush func() error) error {
	if in.scrub == nil {
		return flush()
	}
	names, err := in.scrub.List(in.dir)
	if err != nil {
		return err
	}
	var logs []string
	for _, n := range names {
		if strings.HasSuffix(n, ".log") {
			logs = append(logs, in.scrub.PathJoin(in.dir, n))
		}
	}
	if err := flush(); err != nil {
		return err
	}
	for _, l := range logs {
		if err := in.scrub.zero(l); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
