package redis

import (
	"bytes"
	"context"
	"slices"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fieldvault/fieldvault/vault/store"
)

// Subject keys live in buckets of the keys client, keyed by a hash of the
// subject, so that one subject's keys share a bucket: the field is
// store.AppendSubjectKeyRef(ref) and the value the wrapped key.

func (s *Store) subjectKeysBucket(subject string) string {
	return s.ks.bucketKey('k', s.ks.bucket(domainSubjectKey, subject))
}

// GetSubjectKeys implements store.SubjectKeys: one pipelined round trip
// per node.
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
	out := make([][]byte, len(refs))
	if len(refs) == 0 {
		return out, nil
	}
	p := newPipe(ctx, len(refs))
	cmds := make([]*goredis.StringCmd, len(refs))
	for i, r := range refs {
		cmds[i] = p.hget(s.subjectKeysBucket(r.Subject), string(store.AppendSubjectKeyRef(nil, r)))
	}
	if err := p.exec(s, s.kc); err != nil {
		return nil, err
	}
	for i, c := range cmds {
		v, err := c.Result()
		if err == goredis.Nil {
			continue
		}
		if err != nil {
			return nil, replyErr(err)
		}
		out[i] = []byte(v)
	}
	return out, nil
}

// InsertSubjectKeys implements store.SubjectKeys: one pipelined round trip
// per node, an HSETNX and an HGET of each ref, in order on one connection,
// so the HGET answers what is stored after this call or a concurrent one
// won. Wrapped keys must be non-empty.
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
	first := make(map[store.SubjectKeyRef]int, len(refs))
	p := newPipe(ctx, 2*len(refs))
	gets := make([]*goredis.StringCmd, len(refs))
	for i, r := range refs {
		if _, dup := first[r]; dup {
			continue
		}
		first[r] = i
		key, field := s.subjectKeysBucket(r.Subject), string(store.AppendSubjectKeyRef(nil, r))
		p.hsetnx(key, field, string(wrapped[i]))
		gets[i] = p.hget(key, field)
		p.group()
	}
	if err := p.exec(s, s.kc); err != nil {
		return nil, err
	}
	for _, c := range p.cmds {
		if err := c.Err(); err != nil {
			return nil, replyErr(err)
		}
	}
	for i, r := range refs {
		j := first[r]
		if j != i {
			out[i] = out[j]
			continue
		}
		v := gets[i].Val()
		if v == string(wrapped[i]) {
			out[i] = wrapped[i]
		} else {
			out[i] = []byte(v)
		}
	}
	return out, nil
}

// DeleteSubjectKeys implements store.SubjectKeys. HDEL removes the key
// material from Redis's memory; copies remain in the AOF until its next
// rewrite, in RDB snapshots and on replicas' disks: see "Subject keys" in
// the package documentation.
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
	key := s.subjectKeysBucket(subject)
	p := newPipe(ctx, 1)
	keys := p.hkeys(key)
	if err := p.exec(s, s.kc); err != nil {
		return 0, err
	}
	fields, err := keys.Result()
	if err != nil {
		return 0, replyErr(err)
	}
	prefix := store.AppendSubjectKeyPrefix(nil, subject)
	var del []string
	for _, f := range fields {
		if !bytes.HasPrefix([]byte(f), prefix) {
			continue
		}
		r, err := store.DecodeSubjectKeyRef([]byte(f))
		if err != nil || r.Subject != subject {
			continue
		}
		if categories == nil || slices.Contains(categories, r.Category) {
			del = append(del, f)
		}
	}
	if len(del) == 0 {
		return 0, nil
	}
	p = newPipe(ctx, 1)
	n := p.hdel(key, del...)
	if err := p.exec(s, s.kc); err != nil {
		return 0, err
	}
	if err := n.Err(); err != nil {
		return 0, replyErr(err)
	}
	return int(n.Val()), nil
}

// ScanSubjectKeys implements store.SubjectKeys with the same bucket walk
// and cursor form as ScanTokens.
func (s *Store) ScanSubjectKeys(ctx context.Context, cursor string, limit int) ([]store.SubjectKeyRef, string, error) {
	if err := s.enter(ctx); err != nil {
		return nil, "", err
	}
	defer s.leave()
	if limit <= 0 {
		return nil, "", invalid("scan limit %d", limit)
	}
	var refs []store.SubjectKeyRef
	next, err := s.scanBuckets(ctx, s.kc, 'k', keysCursorTag, cursor, limit, false,
		func(field, _ string) error {
			r, err := store.DecodeSubjectKeyRef([]byte(field))
			if err != nil {
				return corrupt("subject key", err)
			}
			refs = append(refs, r)
			return nil
		})
	if err != nil {
		return nil, "", err
	}
	return refs, next, nil
}
