package pebble

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/fieldvault/fieldvault/vault/store"
)

// get returns the value of key, or nil if absent, and a closer to call when
// done with it.
func (in *instance) get(key []byte) ([]byte, io.Closer, error) {
	v, closer, err := in.db.Get(key)
	if errors.Is(err, pebbledb.ErrNotFound) {
		return nil, nopCloser{}, nil
	}
	if err != nil {
		return nil, nil, unavailable(err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, closer, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// has reports whether key is present.
func (in *instance) has(key []byte) (bool, error) {
	v, closer, err := in.get(key)
	if err != nil {
		return false, err
	}
	_ = closer.Close()
	return v != nil, nil
}

// getToken reads and decodes the row of tokenKey into t; ok is false when
// the row is absent.
func (in *instance) getToken(tokenKey []byte, t *store.Token) (ok bool, err error) {
	v, closer, err := in.get(tokenKey)
	if err != nil || v == nil {
		return false, err
	}
	defer closer.Close()
	if err := store.DecodeToken(v, t); err != nil {
		return false, corrupt("token row", err)
	}
	return true, nil
}

// InsertTokens implements store.Tokens. The whole call is one batch and one
// durable commit. A token already present is reported before a bound
// fingerprint.
func (s *Store) InsertTokens(ctx context.Context, rows []store.Token) ([]store.InsertResult, error) {
	size := 0
	for i := range rows {
		if err := store.CheckRow(&rows[i]); err != nil {
			return nil, err
		}
		size += 1 + len(rows[i].Token) + 3 + len(rows[i].Fingerprint)
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	results := make([]store.InsertResult, len(rows))
	if len(rows) == 0 {
		return results, nil
	}
	in := s.main

	// Every key the call reads, in one allocation: the token key of row i
	// is keys[2i], its fingerprint key keys[2i+1] (nil without one).
	arena := make([]byte, 0, size)
	keys := make([][]byte, 2*len(rows))
	var ls lockSet
	for i := range rows {
		r := &rows[i]
		start := len(arena)
		arena = appendTokenKey(arena, r.Token)
		keys[2*i] = arena[start:len(arena):len(arena)]
		ls.add(&in.locks, keys[2*i])
		if len(r.Fingerprint) > 0 {
			start = len(arena)
			arena = appendFingerprintKey(arena, r.Category, r.Fingerprint)
			keys[2*i+1] = arena[start:len(arena):len(arena)]
			ls.add(&in.locks, keys[2*i+1])
		}
	}

	// Rows written earlier in this call, for the rows after them.
	var tokensInCall map[string]struct{}
	var fpsInCall map[string]string
	if len(rows) > 1 {
		tokensInCall = make(map[string]struct{}, len(rows))
		fpsInCall = make(map[string]string)
	}

	b := in.db.NewBatchWithSize(batchSize(rows))
	var deltas counterDeltas
	var val, subjectKey []byte
	in.locks.lock(&ls)
	unlock := func() { in.locks.unlock(&ls) }

	// Read, once and in key order, under the locks, every key the filter
	// cannot rule out: exists[i] for row i's token, bound[i] for its
	// fingerprint. Keys the filter rules out are certainly absent.
	exists := make([]bool, len(rows))
	bound := make([]string, len(rows))
	toRead := keys
	if in.filter != nil {
		toRead = make([][]byte, len(keys))
		for k, key := range keys {
			if key != nil && in.filter.mayContain(key) {
				toRead[k] = key
			}
		}
	}
	err := in.multiGet(toRead, func(k int, v []byte) error {
		if k%2 == 0 {
			exists[k/2] = true
		} else {
			bound[k/2] = string(v)
		}
		return nil
	})
	if err != nil {
		unlock()
		_ = b.Close()
		return nil, err
	}
	for i := range rows {
		r := &rows[i]
		tokenKey, fpKey := keys[2*i], keys[2*i+1]
		if _, dup := tokensInCall[r.Token]; dup || exists[i] {
			results[i].Err = store.ErrTokenExists
			continue
		}
		if fpKey != nil {
			existing, ok := fpsInCall[string(fpKey)]
			if !ok && bound[i] != "" {
				existing, ok = bound[i], true
			}
			if ok {
				results[i] = store.InsertResult{Err: store.ErrFingerprintBound, Existing: existing}
				continue
			}
			_ = b.Set(fpKey, tokenKey[1:], nil)
			if in.filter != nil {
				in.filter.add(fpKey)
			}
			if fpsInCall != nil {
				fpsInCall[string(fpKey)] = r.Token
			}
		}
		val = store.AppendToken(val[:0], r)
		_ = b.Set(tokenKey, val, nil)
		if in.filter != nil {
			in.filter.add(tokenKey)
		}
		subjectKey = appendSubjectIndexKey(subjectKey[:0], r.Subject, r.Token)
		_ = b.Set(subjectKey, nil, nil)
		deltas.add(r.Category, r.KeyVersion, 1)
		if tokensInCall != nil {
			tokensInCall[r.Token] = struct{}{}
		}
	}
	deltas.write(b, subjectKey)
	if err := in.commit(b, unlock); err != nil {
		return nil, err
	}
	return results, nil
}

// batchSize estimates the bytes a batch inserting rows takes, so it is
// allocated once.
func batchSize(rows []store.Token) int {
	n := 64
	for i := range rows {
		r := &rows[i]
		n += 3*8 + 2*(1+len(r.Token)) + 2 + len(r.Subject) + store.EncodedTokenSize(r)
		if len(r.Fingerprint) > 0 {
			n += 8 + 3 + len(r.Fingerprint) + len(r.Token)
		}
	}
	return n
}

// GetTokens implements store.Tokens.
func (s *Store) GetTokens(ctx context.Context, tokens []string) ([]*store.Token, error) {
	if err := store.CheckTokens(tokens); err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	in := s.main
	out := make([]*store.Token, len(tokens))
	rows := make([]store.Token, len(tokens))
	keys := tokenKeys(tokens, func(t *string) string { return *t })
	err := in.multiGet(keys, func(i int, v []byte) error {
		if err := store.DecodeToken(v, &rows[i]); err != nil {
			return corrupt("token row", err)
		}
		rows[i].Token = tokens[i]
		out[i] = &rows[i]
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

// LookupFingerprints implements store.Tokens.
func (s *Store) LookupFingerprints(ctx context.Context, category uint16, fps [][]byte) ([]string, error) {
	if err := store.CheckCategory(category); err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	in := s.main
	out := make([]string, len(fps))
	size := 0
	for _, fp := range fps {
		size += 3 + len(fp)
	}
	arena := make([]byte, 0, size)
	keys := make([][]byte, len(fps))
	for i, fp := range fps {
		if len(fp) == 0 {
			continue // nil key: skipped, answered ""
		}
		start := len(arena)
		arena = appendFingerprintKey(arena, category, fp)
		keys[i] = arena[start:len(arena):len(arena)]
	}
	err := in.multiGet(keys, func(i int, v []byte) error {
		out[i] = string(v)
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

// UpdateTokenKeys implements store.Tokens. Updates apply in order, so a
// token updated twice in one call sees its first update.
func (s *Store) UpdateTokenKeys(ctx context.Context, updates []store.KeyUpdate) ([]error, error) {
	for i := range updates {
		if err := store.CheckToken(updates[i].Token); err != nil {
			return nil, err
		}
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	errs := make([]error, len(updates))
	if len(updates) == 0 {
		return errs, nil
	}
	in := s.main
	keys := tokenKeys(updates, func(u *store.KeyUpdate) string { return u.Token })
	var ls lockSet
	for _, k := range keys {
		ls.add(&in.locks, k)
	}
	var updated map[string]*store.Token
	if len(updates) > 1 {
		updated = make(map[string]*store.Token)
	}
	b := in.db.NewBatch()
	var deltas counterDeltas
	var val []byte
	in.locks.lock(&ls)
	unlock := func() { in.locks.unlock(&ls) }
	// Read every row once, in key order, under the locks.
	current := make([]*store.Token, len(updates))
	err := in.multiGet(keys, func(i int, v []byte) error {
		row := new(store.Token)
		if err := store.DecodeToken(v, row); err != nil {
			return corrupt("token row", err)
		}
		current[i] = row
		return nil
	})
	if err != nil {
		unlock()
		_ = b.Close()
		return nil, err
	}
	for i := range updates {
		u := &updates[i]
		row := updated[u.Token]
		if row == nil {
			row = current[i]
			if row == nil {
				errs[i] = store.ErrNotFound
				continue
			}
		}
		if row.KeyVersion != u.OldVersion || u.Expect != nil && !store.SameRow(row, u.Expect) {
			errs[i] = store.ErrConflict
			continue
		}
		deltas.add(row.Category, row.KeyVersion, -1)
		deltas.add(row.Category, u.NewVersion, 1)
		row.KeyVersion, row.Ciphertext = u.NewVersion, u.Ciphertext
		val = store.AppendToken(val[:0], row)
		_ = b.Set(keys[i], val, nil)
		if updated != nil {
			updated[u.Token] = row
		}
	}
	deltas.write(b, val)
	if err := in.commit(b, unlock); err != nil {
		return nil, err
	}
	return errs, nil
}

// tokenKeys returns the token key of each element, in one allocation.
func tokenKeys[T any](xs []T, token func(*T) string) [][]byte {
	size := 0
	for i := range xs {
		size += 1 + len(token(&xs[i]))
	}
	arena := make([]byte, 0, size)
	keys := make([][]byte, len(xs))
	for i := range xs {
		start := len(arena)
		arena = appendTokenKey(arena, token(&xs[i]))
		keys[i] = arena[start:len(arena):len(arena)]
	}
	return keys
}

// DeleteTokens implements store.Tokens.
func (s *Store) DeleteTokens(ctx context.Context, tokens []string) (int, error) {
	if err := store.CheckTokens(tokens); err != nil {
		return 0, err
	}
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.leave()
	if len(tokens) == 0 {
		return 0, nil
	}
	in := s.main
	// Only the token keys are locked: a fingerprint entry exists exactly
	// while its row does, so no one else writes it while the row is held.
	keys := tokenKeys(tokens, func(t *string) string { return *t })
	var ls lockSet
	for _, k := range keys {
		ls.add(&in.locks, k)
	}
	deleted := make(map[string]struct{}, len(tokens))
	b := in.db.NewBatch()
	var deltas counterDeltas
	var key []byte
	in.locks.lock(&ls)
	unlock := func() { in.locks.unlock(&ls) }
	for i, tok := range tokens {
		if _, dup := deleted[tok]; dup {
			continue
		}
		var row store.Token
		ok, err := in.getToken(keys[i], &row)
		if err != nil {
			unlock()
			_ = b.Close()
			return 0, err
		}
		if !ok {
			continue
		}
		deleted[tok] = struct{}{}
		_ = b.Delete(keys[i], nil)
		key = appendSubjectIndexKey(key[:0], row.Subject, tok)
		_ = b.Delete(key, nil)
		if len(row.Fingerprint) > 0 {
			key = appendFingerprintKey(key[:0], row.Category, row.Fingerprint)
			_ = b.Delete(key, nil)
		}
		deltas.add(row.Category, row.KeyVersion, -1)
	}
	deltas.write(b, key)
	if err := in.commit(b, unlock); err != nil {
		return 0, err
	}
	return len(deleted), nil
}

// SubjectTokens implements store.Tokens.
func (s *Store) SubjectTokens(ctx context.Context, subject string) ([]string, error) {
	if err := store.CheckSubject(subject); err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	in := s.main
	prefix := appendSubjectPrefix(nil, subject)
	var out []string
	err := in.scanPrefix(ctx, prefix, func(key, _ []byte) error {
		out = append(out, string(key[len(prefix):]))
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

// scanPrefix calls fn for every key with the given prefix, in order. key
// and value are valid only during the call.
func (in *instance) scanPrefix(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error {
	return in.scanRange(ctx, prefix, prefixEnd(prefix), -1, fn)
}

// errStop ends a scan early without error.
var errStop = errors.New("stop")

// scanRange calls fn for the keys in [lower, upper), at most limit of them
// if limit >= 0. It reports whether keys remained.
func (in *instance) scanRange(ctx context.Context, lower, upper []byte, limit int, fn func(key, value []byte) error) error {
	it, err := in.db.NewIter(&pebbledb.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return unavailable(err)
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if n%256 == 255 {
			if err := ctx.Err(); err != nil {
				_ = it.Close()
				return err
			}
		}
		if limit >= 0 && n == limit {
			_ = it.Close()
			return errStop
		}
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return unavailable(err)
		}
		if err := fn(it.Key(), v); err != nil {
			_ = it.Close()
			return err
		}
		n++
	}
	if err := it.Close(); err != nil {
		return unavailable(err)
	}
	return nil
}

// scanPage returns up to limit entries of the keyspace starting at prefix
// byte p, resuming after cursor, and the cursor for the next page ("" at
// the end).
func (in *instance) scanPage(ctx context.Context, p byte, tag, cursor string, limit int,
	check func(last []byte) bool, fn func(key, value []byte) error) (string, error) {
	if limit <= 0 {
		return "", invalid("scan limit %d", limit)
	}
	lower := []byte{p}
	if cursor != "" {
		var ok bool
		lower, ok = decodeCursor(tag, p, cursor)
		if !ok || !check(lower[1:len(lower)-1]) {
			return "", invalid("malformed cursor")
		}
	}
	var last []byte
	err := in.scanRange(ctx, lower, []byte{p + 1}, limit, func(key, value []byte) error {
		last = append(last[:0], key...)
		return fn(key, value)
	})
	switch {
	case errors.Is(err, errStop):
		return encodeCursor(tag, last), nil
	case err != nil:
		return "", err
	}
	return "", nil
}

// ScanTokens implements store.Tokens. Rows come in token order; the cursor
// is the last token returned, so rows inserted behind it during a walk are
// not seen and rows ahead of it are.
func (s *Store) ScanTokens(ctx context.Context, cursor string, limit int) ([]store.Token, string, error) {
	if err := s.enter(ctx); err != nil {
		return nil, "", err
	}
	defer s.leave()
	in := s.main
	var rows []store.Token
	if limit > 0 {
		rows = make([]store.Token, 0, min(limit, 1024))
	}
	next, err := in.scanPage(ctx, prefixToken, tokenCursorTag, cursor, limit,
		func(last []byte) bool { return len(last) > 0 && len(last) <= store.MaxTokenLen },
		func(key, value []byte) error {
			var t store.Token
			if err := store.DecodeToken(value, &t); err != nil {
				return corrupt("token row", err)
			}
			t.Token = string(key[1:])
			rows = append(rows, t)
			return nil
		})
	if err != nil {
		return nil, "", err
	}
	if err := in.settle(); err != nil {
		return nil, "", err
	}
	return rows, next, nil
}

// TokenCounts implements store.Tokens.
func (s *Store) TokenCounts(ctx context.Context) ([]store.TokenCount, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	in := s.main
	var out []store.TokenCount
	err := in.scanPrefix(ctx, []byte{prefixCounter}, func(key, value []byte) error {
		if len(key) != 7 {
			return corrupt("counter key", store.ErrCorrupt)
		}
		n, err := decodeCounter(value)
		if err != nil {
			return corrupt("counter", err)
		}
		if n != 0 {
			out = append(out, store.TokenCount{
				Category: uint16(key[1])<<8 | uint16(key[2]),
				Version:  uint32(key[3])<<24 | uint32(key[4])<<16 | uint32(key[5])<<8 | uint32(key[6]),
				Count:    n,
			})
		}
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

// multiGet calls fn(i, value) for each keys[i] that is present; nil keys
// are skipped. It looks
// the keys up in ascending order through one iterator, which lets Pebble
// reuse its position (and loaded blocks) from one key to the next; bloom
// filters skip tables without the key. value is valid only during fn.
func (in *instance) multiGet(keys [][]byte, fn func(i int, value []byte) error) error {
	order := make([]int32, 0, len(keys))
	for i, k := range keys {
		if k != nil {
			order = append(order, int32(i))
		}
	}
	if len(order) == 0 {
		return nil
	}
	slices.SortFunc(order, func(a, b int32) int { return bytes.Compare(keys[a], keys[b]) })
	it, err := in.db.NewIter(nil)
	if err != nil {
		return unavailable(err)
	}
	for _, i := range order {
		if !it.SeekGE(keys[i]) || !bytes.Equal(it.Key(), keys[i]) {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return unavailable(err)
		}
		if err := fn(int(i), v); err != nil {
			_ = it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return unavailable(err)
	}
	return nil
}
