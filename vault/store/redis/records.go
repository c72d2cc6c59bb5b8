package redis

import (
	"context"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fieldvault/fieldvault/vault/store"
)

// A record is a hash (r: revision, i: index, v: value) under its own key,
// written by a script on that key only (compare-and-set on r). Per kind, a
// sorted set lists the ids, and per (kind, index) another lists the ids
// with that index; both are ordered by id (equal scores sort by member
// bytes).
//
// The sets live on other slots than the records, so they cannot change in
// the same atomic step. They are kept a superset: PutRecord adds the id to
// the kind's set and to its new index's set before the compare-and-set,
// and removes it from the old index's set only after it. Readers fetch the
// records and drop ids whose record is absent or has another index, so an
// extra entry (a failed compare-and-set, a crash between steps) is never
// listed. Removing an id from an index set races with a writer moving the
// record back to that index; so the remover reads the record afterwards
// and adds the id back if it is there again, and a writer that changed the
// index adds the id once more after its compare-and-set. Then any removal
// that lands after the last writer's first add is either followed by that
// writer's second add or sees the final index and repairs it.

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

// GetRecords implements store.Records: one pipelined round trip per node.
func (s *Store) GetRecords(ctx context.Context, kind string, ids []string) ([]*store.Record, error) {
	if err := store.CheckRecordIDs(kind, ids); err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	return s.getRecords(ctx, kind, ids)
}

func (s *Store) getRecords(ctx context.Context, kind string, ids []string) ([]*store.Record, error) {
	out := make([]*store.Record, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	p := newPipe(ctx, len(ids))
	cmds := make([]*goredis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = p.hmget(s.ks.recordKey(kind, id), "r", "i", "v")
	}
	if err := p.exec(s, s.c); err != nil {
		return nil, err
	}
	for i, c := range cmds {
		v, err := c.Result()
		if err != nil {
			return nil, replyErr(err)
		}
		rec, err := decodeRecord(kind, ids[i], v)
		if err != nil {
			return nil, err
		}
		out[i] = rec
	}
	return out, nil
}

// decodeRecord turns an HMGET r i v reply into a record; nil when absent.
func decodeRecord(kind, id string, v []any) (*store.Record, error) {
	if len(v) != 3 {
		return nil, corrupt("record", errBadReply)
	}
	if v[0] == nil {
		return nil, nil
	}
	revs, ok1 := v[0].(string)
	index, ok2 := v[1].(string)
	value, ok3 := v[2].(string)
	rev, err := strconv.ParseUint(revs, 10, 64)
	if !ok1 || !ok2 || !ok3 || err != nil || rev == 0 {
		return nil, corrupt("record", errBadReply)
	}
	rec := &store.Record{Kind: kind, ID: id, Index: index, Rev: rev}
	if value != "" {
		rec.Value = []byte(value)
	}
	return rec, nil
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
	kindSet := s.ks.kindSetKey(rec.Kind)

	// 1. The sets first: a superset.
	p := newPipe(ctx, 2)
	p.zadd(kindSet, rec.ID)
	if rec.Index != "" {
		p.zadd(s.ks.indexSetKey(rec.Kind, rec.Index), rec.ID)
	}
	if err := s.execChecked(p); err != nil {
		return 0, err
	}

	// 2. Compare-and-set the record.
	expect := "any"
	if expectRev != store.AnyRev {
		expect = strconv.FormatUint(expectRev, 10)
	}
	p = newPipe(ctx, 1)
	put := p.eval(recordPutScript, s.ks.recordKey(rec.Kind, rec.ID), expect, rec.Index, string(rec.Value))
	if err := s.execChecked(p); err != nil {
		return 0, err
	}
	rev, oldIndex, err := scriptResult(put)
	if err != nil {
		return 0, replyErr(err)
	}
	if rev < 0 {
		return 0, store.ErrConflict
	}

	// 3. Add again what this write needs (a concurrent remover may have
	// raced step 1), then drop the old index.
	p = newPipe(ctx, 3)
	if rev == 1 {
		p.zadd(kindSet, rec.ID)
	}
	if oldIndex != rec.Index {
		if rec.Index != "" {
			p.zadd(s.ks.indexSetKey(rec.Kind, rec.Index), rec.ID)
		}
		if oldIndex != "" {
			p.zrem(s.ks.indexSetKey(rec.Kind, oldIndex), rec.ID)
		}
	}
	if len(p.cmds) > 0 {
		if err := s.execChecked(p); err != nil {
			return 0, err
		}
	}
	if oldIndex != "" && oldIndex != rec.Index {
		if err := s.repairSets(ctx, rec.Kind, rec.ID, oldIndex); err != nil {
			return 0, err
		}
	}
	return uint64(rev), nil
}

// repairSets runs after id was removed from the sets of removedIndex (""
// for the kind set too): it reads the record and adds id back to what its
// current state needs, in case a concurrent writer put it back there.
func (s *Store) repairSets(ctx context.Context, kind, id, removedIndex string) error {
	recs, err := s.getRecords(ctx, kind, []string{id})
	if err != nil {
		return err
	}
	r := recs[0]
	if r == nil {
		return nil
	}
	p := newPipe(ctx, 2)
	if removedIndex == "" {
		p.zadd(s.ks.kindSetKey(kind), id)
	}
	if r.Index != "" && (removedIndex == "" || r.Index == removedIndex) {
		p.zadd(s.ks.indexSetKey(kind, r.Index), id)
	}
	return s.execChecked(p)
}

// execChecked runs p and fails on any error reply.
func (s *Store) execChecked(p *pipe) error {
	if err := p.exec(s, s.c); err != nil {
		return err
	}
	for _, c := range p.cmds {
		if err := c.Err(); err != nil {
			return replyErr(err)
		}
	}
	return nil
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
	p := newPipe(ctx, 1)
	del := p.eval(recordDeleteScript, s.ks.recordKey(kind, id))
	if err := s.execChecked(p); err != nil {
		return err
	}
	existed, index, err := scriptResult(del)
	if err != nil {
		return replyErr(err)
	}
	if existed == 0 {
		return nil
	}
	p = newPipe(ctx, 2)
	p.zrem(s.ks.kindSetKey(kind), id)
	if index != "" {
		p.zrem(s.ks.indexSetKey(kind, index), id)
	}
	if err := s.execChecked(p); err != nil {
		return err
	}
	return s.repairSets(ctx, kind, id, "")
}

// ListRecords implements store.Records: it reads the kind's id set and
// every listed record (O(records of the kind); admin paths only).
func (s *Store) ListRecords(ctx context.Context, kind string) ([]*store.Record, error) {
	if err := store.CheckID("kind", kind); err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	return s.listSet(ctx, kind, s.ks.kindSetKey(kind), nil)
}

// ListByIndex implements store.Records, like ListRecords on the index's
// id set.
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
	return s.listSet(ctx, kind, s.ks.indexSetKey(kind, index), &index)
}

// listSet returns the records of kind whose ids the sorted set key lists,
// in id order, dropping absent records and, when index is set, records
// with another index.
func (s *Store) listSet(ctx context.Context, kind, key string, index *string) ([]*store.Record, error) {
	p := newPipe(ctx, 1)
	ids := p.zrangeAll(key)
	if err := s.execChecked(p); err != nil {
		return nil, err
	}
	recs, err := s.getRecords(ctx, kind, ids.Val())
	if err != nil {
		return nil, err
	}
	out := make([]*store.Record, 0, len(recs))
	for _, r := range recs {
		if r != nil && (index == nil || r.Index == *index) {
			out = append(out, r)
		}
	}
	return out, nil
}
