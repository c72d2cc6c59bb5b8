package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/fieldvault/fieldvault/vault/store"
)

// A record value is
//
//	version  byte, 1
//	rev      uvarint
//	index    uvarint length, bytes
//	value    the rest
const recordFormatVersion = 1

func appendRecordValue(dst []byte, r *store.Record) []byte {
	dst = append(dst, recordFormatVersion)
	dst = binary.AppendUvarint(dst, r.Rev)
	dst = appendLenString(dst, r.Index)
	return append(dst, r.Value...)
}

// decodeRecordValue decodes v into r's Rev, Index and Value (copied).
func decodeRecordValue(v []byte, r *store.Record) error {
	if len(v) == 0 || v[0] != recordFormatVersion {
		return corrupt("record", fmt.Errorf("%w: unknown record format", store.ErrCorrupt))
	}
	v = v[1:]
	rev, n := binary.Uvarint(v)
	if n <= 0 {
		return corrupt("record", fmt.Errorf("%w: bad revision", store.ErrCorrupt))
	}
	v = v[n:]
	l, n := binary.Uvarint(v)
	if n <= 0 || l > uint64(len(v)-n) {
		return corrupt("record", fmt.Errorf("%w: bad index length", store.ErrCorrupt))
	}
	v = v[n:]
	r.Rev = rev
	r.Index = string(v[:l])
	r.Value = nil
	if rest := v[l:]; len(rest) > 0 {
		r.Value = bytes.Clone(rest)
	}
	return nil
}

// getRecord reads (kind, id) under key; nil when absent.
func getRecord(r reader, key []byte, kind, id string) (*store.Record, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebbledb.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	defer closer.Close()
	rec := &store.Record{Kind: kind, ID: id}
	if err := decodeRecordValue(v, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// reader is what *pebbledb.DB and *pebbledb.Snapshot share.
type reader interface {
	Get(key []byte) ([]byte, io.Closer, error)
}

// GetRecord implements store.Records.
func (s *Store) GetRecord(ctx context.Context, kind, id string) (*store.Record, error) {
	recs, err := s.GetRecords(ctx, kind, []string{id})
	if err != nil {
		return nil, err
	}
	if recs[0] == nil {
		return nil, store.ErrNotFound
	}
	return recs[0], nil
}

// GetRecords implements store.Records.
func (s *Store) GetRecords(ctx context.Context, kind string, ids []string) ([]*store.Record, error) {
	if err := store.CheckRecordIDs(kind, ids); err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	in := s.main
	out := make([]*store.Record, len(ids))
	if len(ids) == 1 {
		rec, err := getRecord(in.db, appendRecordKey(nil, kind, ids[0]), kind, ids[0])
		if err != nil {
			return nil, err
		}
		out[0] = rec
	} else {
		// Many records: one sorted pass through one iterator.
		keys := make([][]byte, len(ids))
		for i, id := range ids {
			keys[i] = appendRecordKey(nil, kind, id)
		}
		err := in.multiGet(keys, func(i int, v []byte) error {
			rec := &store.Record{Kind: kind, ID: ids[i]}
			if err := decodeRecordValue(v, rec); err != nil {
				return err
			}
			out[i] = rec
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if err := in.settle(); err != nil {
		return nil, err
	}
	return out, nil
}

// PutRecord implements store.Records.
func (s *Store) PutRecord(ctx context.Context, rec store.Record, expectRev uint64) (uint64, error) {
	if err := store.CheckID("kind", rec.Kind); err != nil {
		return 0, err
	}
	if err := store.CheckID("id", rec.ID); err != nil {
		return 0, err
	}
	if len(rec.Index) > store.MaxIDLen {
		return 0, invalid("index of %d bytes", len(rec.Index))
	}
	if len(rec.Value) > store.MaxValueLen {
		return 0, invalid("value of %d bytes", len(rec.Value))
	}
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.leave()
	in := s.main
	key := appendRecordKey(nil, rec.Kind, rec.ID)
	var ls lockSet
	ls.add(&in.locks, key)
	in.locks.lock(&ls)
	unlock := func() { in.locks.unlock(&ls) }
	cur, err := getRecord(in.db, key, rec.Kind, rec.ID)
	if err != nil {
		unlock()
		return 0, err
	}
	var curRev uint64
	if cur != nil {
		curRev = cur.Rev
	}
	if expectRev != store.AnyRev && expectRev != curRev {
		unlock()
		if err := in.settle(); err != nil {
			return 0, err
		}
		return 0, store.ErrConflict
	}
	rec.Rev = curRev + 1
	b := in.db.NewBatchWithSize(64 + 2*len(key) + len(rec.Index) + len(rec.Value))
	_ = b.Set(key, appendRecordValue(nil, &rec), nil)
	if cur != nil && cur.Index != "" && cur.Index != rec.Index {
		_ = b.Delete(appendIndexKey(nil, rec.Kind, cur.Index, rec.ID), nil)
	}
	if rec.Index != "" {
		_ = b.Set(appendIndexKey(nil, rec.Kind, rec.Index, rec.ID), nil, nil)
	}
	if err := in.commit(b, unlock); err != nil {
		return 0, err
	}
	return rec.Rev, nil
}

// DeleteRecord implements store.Records.
func (s *Store) DeleteRecord(ctx context.Context, kind, id string) error {
	if err := store.CheckID("kind", kind); err != nil {
		return err
	}
	if err := store.CheckID("id", id); err != nil {
		return err
	}
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.leave()
	in := s.main
	key := appendRecordKey(nil, kind, id)
	var ls lockSet
	ls.add(&in.locks, key)
	in.locks.lock(&ls)
	unlock := func() { in.locks.unlock(&ls) }
	cur, err := getRecord(in.db, key, kind, id)
	if err != nil {
		unlock()
		return err
	}
	b := in.db.NewBatch()
	if cur != nil {
		_ = b.Delete(key, nil)
		if cur.Index != "" {
			_ = b.Delete(appendIndexKey(nil, kind, cur.Index, id), nil)
		}
	}
	return in.commit(b, unlock)
}

// ListRecords implements store.Records.
func (s *Store) ListRecords(ctx context.Context, kind string) ([]*store.Record, error) {
	if err := store.CheckID("kind", kind); err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	in := s.main
	prefix := appendRecordPrefix(nil, kind)
	var out []*store.Record
	err := in.scanPrefix(ctx, prefix, func(key, value []byte) error {
		rec := &store.Record{Kind: kind, ID: string(key[len(prefix):])}
		if err := decodeRecordValue(value, rec); err != nil {
			return err
		}
		out = append(out, rec)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := in.settle(); err != nil {
		return nil, err
	}
	return out, nil
}

// ListByIndex implements store.Records. The index entries and the records
// are read from one snapshot, so a record moving between indexes
// concurrently is listed consistently.
func (s *Store) ListByIndex(ctx context.Context, kind, index string) ([]*store.Record, error) {
	if err := store.CheckID("kind", kind); err != nil {
		return nil, err
	}
	if err := store.CheckID("index", index); err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	in := s.main
	snap := in.db.NewSnapshot()
	defer snap.Close()
	prefix := appendIndexPrefix(nil, kind, index)
	it, err := snap.NewIter(&pebbledb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, unavailable(err)
	}
	var ids []string
	for ok := it.First(); ok; ok = it.Next() {
		ids = append(ids, string(it.Key()[len(prefix):]))
	}
	if err := it.Close(); err != nil {
		return nil, unavailable(err)
	}
	out := make([]*store.Record, 0, len(ids))
	var key []byte
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		key = appendRecordKey(key[:0], kind, id)
		rec, err := getRecord(snap, key, kind, id)
		if err != nil {
			return nil, err
		}
		if rec == nil || rec.Index != index {
			return nil, corrupt("record index", fmt.Errorf("%w: index entry without its record", store.ErrCorrupt))
		}
		out = append(out, rec)
	}
	if err := in.settle(); err != nil {
		return nil, err
	}
	return out, nil
}
