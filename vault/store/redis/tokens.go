package redis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/fieldvault/fieldvault/vault/store"
)

// arena hands out strings backed by one preallocated buffer. Strings it
// returns stay valid as long as the arena is reachable; the buffer is
// never reallocated (take panics if the estimate was short, a bug).
type arena struct{ b []byte }

func newArena(n int) arena { return arena{b: make([]byte, 0, n)} }

// str returns the bytes appended by fn as a string.
func (a *arena) str(fn func([]byte) []byte) string {
	start := len(a.b)
	b := fn(a.b)
	if cap(b) != cap(a.b) {
		panic("redis store: arena estimate too small")
	}
	a.b = b
	return unsafeString(a.b[start:len(a.b):len(a.b)])
}

func (s *Store) tokenKey(a *arena, token string) string {
	return a.str(func(b []byte) []byte {
		return s.ks.appendBucketKey(b, 't', s.ks.bucket(domainToken, token))
	})
}

// fpBucketString is category (2, BE) + fingerprint as hashed for the
// fingerprint bucket.
func (s *Store) fpKeyField(a *arena, cat uint16, fp []byte) (key, field string) {
	field = a.str(func(b []byte) []byte { return appendFingerprintField(b, cat, fp) })
	key = a.str(func(b []byte) []byte {
		return s.ks.appendBucketKey(b, 'f', s.ks.bucket(domainFingerprint, field))
	})
	return key, field
}

func (s *Store) subjectKeyField(a *arena, subject, token string) (key, field string) {
	key = a.str(func(b []byte) []byte {
		return s.ks.appendBucketKey(b, 's', s.ks.bucket(domainSubject, subject))
	})
	field = a.str(func(b []byte) []byte { return appendSubjectField(b, subject, token) })
	return key, field
}

// counters accumulates counter deltas for one call.
type counters map[uint64]int64

func (c counters) add(cat uint16, ver uint32, n int64) {
	c[uint64(cat)<<32|uint64(ver)] += n
}

// queue adds the non-zero deltas to p, on one random counter shard.
func (s *Store) queueCounters(p *pipe, c counters) {
	if len(c) == 0 {
		return
	}
	key := s.ks.counterKey(rand.IntN(counterShards))
	var field [6]byte
	for k, n := range c {
		if n == 0 {
			continue
		}
		f := appendCounterField(field[:0], uint16(k>>32), uint32(k))
		p.hincrby(key, string(f), n)
	}
	p.group()
}

// insertState is the progress of one row through InsertTokens.
type insertState struct {
	key, val         string // token bucket key and encoded row
	idxKey, idxField string
	fpKey, fpField   string
	rowCmd           *goredis.BoolCmd
	idx              *indexGroup
	stored           bool // this call stored the row
	idxCreated       bool // this call created the subject-index entry
	fpFirst          int  // the first stored row of the call with this fingerprint, or -1
	result           store.InsertResult
}

// indexGroup is the subject-index entries of one call in one bucket,
// written with one HSET (rows of one subject share a bucket).
type indexGroup struct {
	key    string
	fields []string
	cmd    *goredis.IntCmd
}

// InsertTokens implements store.Tokens.
//
// A call takes one pipelined round trip per Redis node for rows without
// fingerprints: each row's subject-index entry and the row itself (HSETNX),
// and the counters. Rows with fingerprints take a second one, binding each
// fingerprint (HSETNX) only once its row is stored, so a binding never
// points to a row that is not yet visible. Collisions (an existing token, a
// bound fingerprint) take more, to verify and to undo what this call wrote
// for rows it then rejects. See the package documentation for what a
// crash between round trips leaves.
func (s *Store) InsertTokens(ctx context.Context, rows []store.Token) ([]store.InsertResult, error) {
	size := 0
	for i := range rows {
		r := &rows[i]
		if err := store.CheckRow(r); err != nil {
			return nil, err
		}
		size += 3*s.ks.bucketKeyLen() + 1 + len(r.Token) + store.EncodedTokenSize(r)
		if len(r.Fingerprint) > 0 {
			size += 2 + len(r.Fingerprint)
		}
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	results := make([]store.InsertResult, len(rows))
	if len(rows) == 0 {
		return results, nil
	}
	if len(rows) == 1 {
		return s.insertRound(ctx, rows, size)
	}
	// Rows are decided as if one after the other. A round holds rows with
	// distinct tokens, so a repeated token waits for a later round; so does
	// every later row that shares a token or a fingerprint with a waiting
	// row, so that no row overtakes an earlier one it competes with.
	// Within a round, insertRound keeps the call's order.
	stored := make(map[string]bool)
	pending := make([]int, len(rows))
	for i := range pending {
		pending[i] = i
	}
	for len(pending) > 0 {
		var round, next []int
		inRound := make(map[string]bool)
		blockedTok := make(map[string]bool)
		blockedFP := make(map[string]bool)
		for _, i := range pending {
			r := &rows[i]
			fp := ""
			if len(r.Fingerprint) > 0 {
				fp = strconv.Itoa(int(r.Category)) + ":" + string(r.Fingerprint)
			}
			if stored[r.Token] {
				results[i].Err = store.ErrTokenExists
				continue
			}
			if inRound[r.Token] || blockedTok[r.Token] || (fp != "" && blockedFP[fp]) {
				next = append(next, i)
				blockedTok[r.Token] = true
				if fp != "" {
					blockedFP[fp] = true
				}
				continue
			}
			inRound[r.Token] = true
			round = append(round, i)
		}
		if len(round) > 0 {
			res, err := s.insertRound(ctx, pick(rows, round), size)
			if err != nil {
				return nil, err
			}
			for j, i := range round {
				results[i] = res[j]
				if res[j].Err == nil {
					stored[rows[i].Token] = true
				}
			}
		}
		pending = next
	}
	return results, nil
}

func pick(rows []store.Token, idx []int) []store.Token {
	out := make([]store.Token, len(idx))
	for j, i := range idx {
		out[j] = rows[i]
	}
	return out
}

// insertRound inserts rows with distinct tokens; size bounds the arena
// they need.
func (s *Store) insertRound(ctx context.Context, rows []store.Token, size int) ([]store.InsertResult, error) {
	results := make([]store.InsertResult, len(rows))
	a := newArena(size)
	st := make([]insertState, len(rows))
	p := newPipe(ctx, 2*len(rows)+4)
	deltas := counters{}
	groups := make(map[string]*indexGroup, len(rows))
	var order []*indexGroup
	for i := range rows {
		r, x := &rows[i], &st[i]
		x.key = s.tokenKey(&a, r.Token)
		x.val = a.str(func(b []byte) []byte { return store.AppendToken(b, r) })
		x.idxKey, x.idxField = s.subjectKeyField(&a, r.Subject, r.Token)
		if len(r.Fingerprint) > 0 {
			x.fpKey, x.fpField = s.fpKeyField(&a, r.Category, r.Fingerprint)
		}
		g := groups[x.idxKey]
		if g == nil {
			g = &indexGroup{key: x.idxKey}
			groups[x.idxKey] = g
			order = append(order, g)
		}
		g.fields = append(g.fields, x.idxField)
		x.idx = g
		x.rowCmd = p.hsetnx(x.key, r.Token, x.val)
		p.group()
		deltas.add(r.Category, r.KeyVersion, 1)
	}
	for _, g := range order {
		g.cmd = p.hsetEmpty(g.key, g.fields)
		p.group()
	}
	s.queueCounters(p, deltas)
	if err := p.exec(s, s.c); err != nil {
		return nil, err
	}
	for i := range st {
		x := &st[i]
		if err := x.idx.cmd.Err(); err != nil {
			return nil, replyErr(err)
		}
		if err := x.rowCmd.Err(); err != nil {
			return nil, replyErr(err)
		}
		// Created by this call: only known when the HSET created every
		// field it set; otherwise an undo leaves the entry (a superset
		// entry, filtered by SubjectTokens).
		x.idxCreated = x.idx.cmd.Val() == int64(len(x.idx.fields))
		x.stored = x.rowCmd.Val()
		if !x.stored {
			// Present already. A retried HSETNX whose first reply was
			// lost lands here too; see "Crashes and retries" in the
			// package documentation.
			x.result.Err = store.ErrTokenExists
		}
	}

	if err := s.bindFingerprints(ctx, rows, st); err != nil {
		return nil, err
	}

	// Undo what this call wrote for the rows it rejects.
	undo := newPipe(ctx, 8)
	fix := counters{}
	for i := range st {
		x, r := &st[i], &rows[i]
		if x.stored && x.result.Err != nil {
			// Lost the fingerprint: remove the row this call stored.
			undo.hdel(x.key, r.Token)
		}
		if x.result.Err != nil {
			if x.idxCreated {
				undo.hdel(x.idxKey, x.idxField)
			}
			fix.add(r.Category, r.KeyVersion, -1)
		}
		undo.group()
		results[i] = x.result
	}
	s.queueCounters(undo, fix)
	if err := undo.exec(s, s.c); err != nil {
		return nil, err
	}
	return results, nil
}

// maxBindRounds bounds the rounds spent binding contested fingerprints.
const maxBindRounds = 16

// bindFingerprints binds the fingerprint of every stored row that has one,
// setting result.Err to ErrFingerprintBound (and Existing) for the rows
// that lose. Within a call the first stored row with a fingerprint binds
// it; later ones lose to it, or to whichever token it lost to.
//
// A binding whose token has no row is stale (a crash, or a Redis that lost
// the row's write but not the binding's): it is treated as unbound and
// replaced with a compare-and-set, so two writers repairing it at once
// cannot both win.
func (s *Store) bindFingerprints(ctx context.Context, rows []store.Token, st []insertState) error {
	type bind struct {
		i     int
		stale string // "" to bind if absent; else the stale token to replace
		step  int    // 0 HSETNX, 1 read the binding, 2 check its row, 3 CAS
		cur   string // binding read at step 1
	}
	var todo []bind
	var firsts map[string]int
	// Tokens whose rows this call created: before the call they had no
	// row, so a binding found pointing at one of them is stale even though
	// the row exists now (the row is a later row of this very call, which
	// must lose to the earlier one).
	createdHere := make(map[string]bool, len(st))
	for i := range st {
		if st[i].stored {
			createdHere[rows[i].Token] = true
		}
	}
	for i := range st {
		x := &st[i]
		x.fpFirst = -1
		if !x.stored || x.fpField == "" {
			continue
		}
		if len(rows) > 1 {
			if firsts == nil {
				firsts = make(map[string]int)
			}
			if f, ok := firsts[x.fpField]; ok {
				x.fpFirst = f
				continue
			}
			firsts[x.fpField] = i
		}
		todo = append(todo, bind{i: i})
	}
	for round := 0; len(todo) > 0; round++ {
		if round == maxBindRounds {
			return unavailable(errors.New("fingerprint bindings kept changing; giving up"))
		}
		p := newPipe(ctx, len(todo))
		var a arena
		if round > 0 {
			n := 0
			for _, b := range todo {
				if b.step == 2 {
					n += s.ks.bucketKeyLen()
				}
			}
			a = newArena(n)
		}
		cmds := make([]goredis.Cmder, len(todo))
		for j, b := range todo {
			x, tok := &st[b.i], rows[b.i].Token
			switch b.step {
			case 0:
				cmds[j] = p.hsetnx(x.fpKey, x.fpField, tok)
			case 1:
				cmds[j] = p.hget(x.fpKey, x.fpField)
			case 2:
				cmds[j] = p.hexists(s.tokenKey(&a, b.cur), b.cur)
			case 3:
				cmds[j] = p.eval(hcasScript, x.fpKey, x.fpField, b.stale, tok)
			}
			p.group()
		}
		if err := p.exec(s, s.c); err != nil {
			return err
		}
		next := todo[:0]
		for j, b := range todo {
			x, tok := &st[b.i], rows[b.i].Token
			switch c := cmds[j].(type) {
			case *goredis.BoolCmd: // step 0 or 2
				if err := c.Err(); err != nil {
					return replyErr(err)
				}
				switch {
				case b.step == 0 && c.Val():
					continue // bound
				case b.step == 0:
					b.step = 1
				case c.Val(): // step 2: the bound token's row exists
					x.result = store.InsertResult{Err: store.ErrFingerprintBound, Existing: b.cur}
					continue
				default: // step 2: stale binding
					b.step, b.stale = 3, b.cur
				}
			case *goredis.StringCmd: // step 1
				v, err := c.Result()
				switch {
				case err == goredis.Nil:
					b.step = 0 // unbound meanwhile
				case err != nil:
					return replyErr(err)
				case v == tok:
					continue // ours: a retried HSETNX whose reply was lost
				case createdHere[v]:
					b.step, b.stale = 3, v // stale before this call
				default:
					b.step, b.cur = 2, v
				}
			case *goredis.Cmd: // step 3
				ok, cur, err := scriptResult(c)
				if err != nil {
					return replyErr(err)
				}
				switch {
				case ok == 1 || cur == tok:
					continue // replaced the stale binding
				case cur == "":
					b.step = 0
				case createdHere[cur]:
					b.step, b.stale = 3, cur
				default:
					b.step, b.cur = 2, cur
				}
			}
			next = append(next, b)
		}
		todo = next
	}
	// Later rows of the call with a fingerprint an earlier row bound.
	for i := range st {
		x := &st[i]
		if x.fpFirst < 0 {
			continue
		}
		f := &st[x.fpFirst]
		existing := rows[x.fpFirst].Token
		if f.result.Err != nil {
			existing = f.result.Existing
		}
		x.result = store.InsertResult{Err: store.ErrFingerprintBound, Existing: existing}
	}
	return nil
}

// GetTokens implements store.Tokens: one pipelined round trip per node.
func (s *Store) GetTokens(ctx context.Context, tokens []string) ([]*store.Token, error) {
	if err := store.CheckTokens(tokens); err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	return s.getTokens(ctx, tokens)
}

func (s *Store) getTokens(ctx context.Context, tokens []string) ([]*store.Token, error) {
	out := make([]*store.Token, len(tokens))
	if len(tokens) == 0 {
		return out, nil
	}
	a := newArena(len(tokens) * s.ks.bucketKeyLen())
	p := newPipe(ctx, len(tokens))
	cmds := make([]*goredis.StringCmd, len(tokens))
	for i, tok := range tokens {
		cmds[i] = p.hget(s.tokenKey(&a, tok), tok)
	}
	if err := p.exec(s, s.c); err != nil {
		return nil, err
	}
	rows := make([]store.Token, len(tokens))
	for i, c := range cmds {
		v, err := c.Result()
		if err == goredis.Nil {
			continue
		}
		if err != nil {
			return nil, replyErr(err)
		}
		if err := store.DecodeToken(stringBytes(v), &rows[i]); err != nil {
			return nil, corrupt("token row", err)
		}
		rows[i].Token = tokens[i]
		out[i] = &rows[i]
	}
	return out, nil
}

// stringBytes returns s's bytes without copying; they must not be
// modified. DecodeToken copies what it keeps.
func stringBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafeSlice(s)
}

// LookupFingerprints implements store.Tokens: one pipelined round trip per
// node. A binding is returned as stored; the vault treats a bound token
// without a row as unbound, and InsertTokens then replaces the binding.
func (s *Store) LookupFingerprints(ctx context.Context, category uint16, fps [][]byte) ([]string, error) {
	if err := store.CheckCategory(category); err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	out := make([]string, len(fps))
	size := 0
	for _, fp := range fps {
		size += s.ks.bucketKeyLen() + 2 + len(fp)
	}
	a := newArena(size)
	p := newPipe(ctx, len(fps))
	cmds := make([]*goredis.StringCmd, len(fps))
	for i, fp := range fps {
		if len(fp) == 0 {
			continue
		}
		key, field := s.fpKeyField(&a, category, fp)
		cmds[i] = p.hget(key, field)
	}
	if err := p.exec(s, s.c); err != nil {
		return nil, err
	}
	for i, c := range cmds {
		if c == nil {
			continue
		}
		v, err := c.Result()
		if err == goredis.Nil {
			continue
		}
		if err != nil {
			return nil, replyErr(err)
		}
		out[i] = v
	}
	return out, nil
}

// maxCASRounds bounds the rounds UpdateTokenKeys and DeleteTokens spend on
// rows that change under them.
const maxCASRounds = 16

// UpdateTokenKeys implements store.Tokens: one round trip reads the rows,
// one compare-and-sets them (a script on each row's bucket, comparing the
// whole row) with the counter changes. Updates of one token apply in order.
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
	// Rounds of distinct tokens, so repeats see the earlier update.
	rest := make([]int, len(updates))
	for i := range rest {
		rest[i] = i
	}
	for len(rest) > 0 {
		var round, later []int
		seen := make(map[string]bool, len(rest))
		for _, i := range rest {
			if seen[updates[i].Token] {
				later = append(later, i)
				continue
			}
			seen[updates[i].Token] = true
			round = append(round, i)
		}
		if err := s.updateRound(ctx, updates, round, errs); err != nil {
			return nil, err
		}
		rest = later
	}
	return errs, nil
}

// perCall bounds the fields of one HMGET or hmcas call, so that one call
// keeps Redis busy for a bounded time.
const perCall = 256

// byKey groups the indexes 0..n-1 by key(i), in first-seen order, in runs
// of at most perCall.
func byKey(idx []int, key func(j int) string) [][]int {
	var out [][]int
	open := map[string]int{} // key -> index in out of its open run
	for _, j := range idx {
		k := key(j)
		g, ok := open[k]
		if !ok || len(out[g]) == perCall {
			g = len(out)
			out = append(out, nil)
			open[k] = g
		}
		out[g] = append(out[g], j)
	}
	return out
}

// updateRound moves the rows of distinct tokens: it reads those without an
// Expect with one HMGET per bucket, then compares and sets them all with
// one hmcas call per bucket. A row that changed in between is decided again
// on its new value, unless the update carries an Expect: that one only
// applies to the very row it names.
func (s *Store) updateRound(ctx context.Context, updates []store.KeyUpdate, idx []int, errs []error) error {
	type upd struct {
		i        int
		key, cur string // bucket key; current row ("" absent)
		row      store.Token
		val      string
	}
	us := make([]upd, len(idx))
	a := newArena(len(idx) * s.ks.bucketKeyLen())
	all := make([]int, len(idx))
	var read []int // rows to read: those without an Expect
	for j, i := range idx {
		us[j] = upd{i: i, key: s.tokenKey(&a, updates[i].Token)}
		all[j] = j
		if e := updates[i].Expect; e != nil {
			// The compare-and-set below checks it against the stored row.
			us[j].cur = string(store.AppendToken(nil, e))
		} else {
			read = append(read, j)
		}
	}
	keyOf := func(j int) string { return us[j].key }
	// Read the rows.
	groups := byKey(read, keyOf)
	p := newPipe(ctx, len(groups))
	gets := make([]*goredis.SliceCmd, len(groups))
	fields := make([]string, 0, perCall)
	for g, js := range groups {
		fields = fields[:0]
		for _, j := range js {
			fields = append(fields, updates[us[j].i].Token)
		}
		gets[g] = p.hmget(us[js[0]].key, fields...)
		p.group()
	}
	if err := p.exec(s, s.c); err != nil {
		return err
	}
	for g, js := range groups {
		vals, err := gets[g].Result()
		if err != nil {
			return replyErr(err)
		}
		if len(vals) != len(js) {
			return replyErr(errBadReply)
		}
		for k, j := range js {
			switch v := vals[k].(type) {
			case nil:
				us[j].cur = ""
			case string:
				us[j].cur = v
			default:
				return replyErr(errBadReply)
			}
		}
	}
	pending := all
	for round := 0; len(pending) > 0; round++ {
		if round == maxCASRounds {
			return unavailable(errors.New("token rows kept changing during UpdateTokenKeys; giving up"))
		}
		var sent []int
		for _, j := range pending {
			u, up := &us[j], &updates[us[j].i]
			if u.cur == "" {
				errs[u.i] = store.ErrNotFound
				continue
			}
			if err := store.DecodeToken(stringBytes(u.cur), &u.row); err != nil {
				return corrupt("token row", err)
			}
			if u.row.KeyVersion != up.OldVersion {
				errs[u.i] = store.ErrConflict
				continue
			}
			moved := u.row
			moved.KeyVersion, moved.Ciphertext = up.NewVersion, up.Ciphertext
			u.val = string(store.AppendToken(nil, &moved))
			sent = append(sent, j)
		}
		groups := byKey(sent, keyOf)
		p := newPipe(ctx, len(groups))
		cas := make([]*goredis.Cmd, len(groups))
		args := make([]string, 0, 3*perCall)
		for g, js := range groups {
			args = args[:0]
			for _, j := range js {
				args = append(args, updates[us[j].i].Token, us[j].cur, us[j].val)
			}
			cas[g] = p.eval(hmcasScript, us[js[0]].key, args...)
			p.group()
		}
		// Counts change only for rows whose compare-and-set is known to
		// have succeeded, after it: if this call fails midway, a count can
		// only be too high for the old version (destroying it stays
		// refused), never too low.
		if err := p.exec(s, s.c); err != nil {
			return err
		}
		pending = pending[:0:0]
		deltas := counters{}
		var firstErr error
		for g, js := range groups {
			ok, cur, err := multiCASResult(cas[g], len(js))
			if err != nil {
				if firstErr == nil {
					firstErr = replyErr(err)
				}
				continue
			}
			for k, j := range js {
				u, up := &us[j], &updates[us[j].i]
				switch {
				case ok[k]:
					errs[u.i] = nil
					if u.row.KeyVersion != up.NewVersion {
						deltas.add(u.row.Category, u.row.KeyVersion, -1)
						deltas.add(u.row.Category, up.NewVersion, 1)
					}
				case up.Expect != nil && cur[k] == "":
					errs[u.i] = store.ErrNotFound
				case up.Expect != nil:
					// The row is no longer the one the caller read (and
					// re-encrypted): it changed, or the token was deleted
					// and issued again.
					errs[u.i] = store.ErrConflict
				default:
					// The row changed between the read and the
					// compare-and-set: decide again on its new value.
					u.cur = cur[k]
					pending = append(pending, j)
				}
			}
		}
		if len(deltas) > 0 {
			cp := newPipe(ctx, len(deltas))
			s.queueCounters(cp, deltas)
			if err := cp.exec(s, s.c); err != nil {
				return err
			}
		}
		if firstErr != nil {
			return firstErr
		}
	}
	return nil
}

// DeleteTokens implements store.Tokens. It reads the rows, deletes each
// row if it is still the row read (a compare-and-set), then removes the
// deleted rows' fingerprint bindings (only where they still name the
// token), subject-index entries and counts.
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
	uniq := make([]string, 0, len(tokens))
	seen := make(map[string]bool, len(tokens))
	for _, t := range tokens {
		if !seen[t] {
			seen[t] = true
			uniq = append(uniq, t)
		}
	}
	type del struct {
		tok, key, cur string
		cas           *goredis.Cmd
		done          bool
	}
	ds := make([]del, len(uniq))
	a := newArena(len(uniq) * s.ks.bucketKeyLen())
	p := newPipe(ctx, len(uniq))
	gets := make([]*goredis.StringCmd, len(uniq))
	for i, t := range uniq {
		ds[i] = del{tok: t, key: s.tokenKey(&a, t)}
		gets[i] = p.hget(ds[i].key, t)
	}
	if err := p.exec(s, s.c); err != nil {
		return 0, err
	}
	pending := make([]int, 0, len(ds))
	for i := range ds {
		v, err := gets[i].Result()
		if err != nil && err != goredis.Nil {
			return 0, replyErr(err)
		}
		ds[i].cur = v
		if v != "" {
			pending = append(pending, i)
		}
	}
	for round := 0; len(pending) > 0; round++ {
		if round == maxCASRounds {
			return 0, unavailable(errors.New("token rows kept changing during DeleteTokens; giving up"))
		}
		p := newPipe(ctx, len(pending))
		for _, i := range pending {
			ds[i].cas = p.eval(hcasScript, ds[i].key, ds[i].tok, ds[i].cur, "")
			p.group()
		}
		if err := p.exec(s, s.c); err != nil {
			return 0, err
		}
		next := pending[:0]
		for _, i := range pending {
			ok, cur, err := scriptResult(ds[i].cas)
			if err != nil {
				return 0, replyErr(err)
			}
			switch {
			case ok == 1:
				ds[i].done = true
			case cur != "":
				ds[i].cur = cur
				next = append(next, i)
			}
		}
		pending = next
	}

	n := 0
	size := 0
	for i := range ds {
		if ds[i].done {
			n++
			size += 2*s.ks.bucketKeyLen() + 1 + len(ds[i].tok) + 2 + len(ds[i].cur)
		}
	}
	if n == 0 {
		return 0, nil
	}
	a2 := newArena(size)
	p2 := newPipe(ctx, 2*n+4)
	deltas := counters{}
	idx := make(map[string][]string) // subject-index bucket -> fields
	var idxKeys []string
	for i := range ds {
		if !ds[i].done {
			continue
		}
		var row store.Token
		if err := store.DecodeToken(stringBytes(ds[i].cur), &row); err != nil {
			return 0, corrupt("token row", err)
		}
		if len(row.Fingerprint) > 0 {
			key, field := s.fpKeyField(&a2, row.Category, row.Fingerprint)
			p2.eval(hcasScript, key, field, ds[i].tok, "")
			p2.group()
		}
		key, field := s.subjectKeyField(&a2, row.Subject, ds[i].tok)
		if _, ok := idx[key]; !ok {
			idxKeys = append(idxKeys, key)
		}
		idx[key] = append(idx[key], field)
		deltas.add(row.Category, row.KeyVersion, -1)
	}
	for _, key := range idxKeys {
		p2.hdel(key, idx[key]...)
		p2.group()
	}
	s.queueCounters(p2, deltas)
	if err := p2.exec(s, s.c); err != nil {
		return 0, err
	}
	for _, c := range p2.cmds {
		if err := c.Err(); err != nil {
			return 0, replyErr(err)
		}
	}
	return n, nil
}

// SubjectTokens implements store.Tokens. The subject index is a superset
// (it may hold entries of rows that were never stored, or of another
// subject whose hash collides), so each listed row is read and kept only
// if it exists and is this subject's.
func (s *Store) SubjectTokens(ctx context.Context, subject string) ([]string, error) {
	if err := store.CheckSubject(subject); err != nil {
		return nil, err
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	key := s.ks.bucketKey('s', s.ks.bucket(domainSubject, subject))
	p := newPipe(ctx, 1)
	keys := p.hkeys(key)
	if err := p.exec(s, s.c); err != nil {
		return nil, err
	}
	fields, err := keys.Result()
	if err != nil {
		return nil, replyErr(err)
	}
	h := string([]byte{subjectHash(subject)})
	var cands []string
	for _, f := range fields {
		if tok, ok := strings.CutPrefix(f, h); ok && tok != "" {
			cands = append(cands, tok)
		}
	}
	rows, err := s.getTokens(ctx, cands)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(cands))
	for i, r := range rows {
		if r != nil && r.Subject == subject {
			out = append(out, cands[i])
		}
	}
	return out, nil
}

// ScanTokens implements store.Tokens. It walks the token buckets in
// order, and each bucket's rows in token byte order; the cursor is the
// bucket and the last token returned, valid across restarts of fieldvault
// and of Redis.
func (s *Store) ScanTokens(ctx context.Context, cursor string, limit int) ([]store.Token, string, error) {
	if err := s.enter(ctx); err != nil {
		return nil, "", err
	}
	defer s.leave()
	if limit <= 0 {
		return nil, "", invalid("scan limit %d", limit)
	}
	var rows []store.Token
	next, err := s.scanBuckets(ctx, s.c, 't', tokenCursorTag, cursor, limit, true,
		func(field, value string) error {
			var t store.Token
			if err := store.DecodeToken(stringBytes(value), &t); err != nil {
				return corrupt("token row", err)
			}
			t.Token = field
			rows = append(rows, t)
			return nil
		})
	if err != nil {
		return nil, "", err
	}
	return rows, next, nil
}

// scanBuckets visits up to limit fields of the buckets of one kind, from
// cursor, in (bucket, field) order, and returns the next cursor ("" at the
// end). With values false it reads fields only (HKEYS).
func (s *Store) scanBuckets(ctx context.Context, c goredis.UniversalClient, kind byte, tag, cursor string,
	limit int, values bool, fn func(field, value string) error) (string, error) {
	bucket, last, ok := s.ks.decodeCursor(tag, cursor)
	if !ok {
		return "", invalid("malformed cursor")
	}
	n := 0
	window := uint32(16)
	start := bucket
	for bucket < s.ks.buckets() {
		w := min(window, s.ks.buckets()-bucket)
		p := newPipe(ctx, int(w))
		all := make([]*goredis.MapStringStringCmd, w)
		keys := make([]*goredis.StringSliceCmd, w)
		for b := range w {
			key := s.ks.bucketKey(kind, bucket+b)
			if values {
				all[b] = p.hgetall(key)
			} else {
				keys[b] = p.hkeys(key)
			}
		}
		if err := p.exec(s, c); err != nil {
			return "", err
		}
		for b := range w {
			var fields []string
			var m map[string]string
			if values {
				var err error
				if m, err = all[b].Result(); err != nil {
					return "", replyErr(err)
				}
				fields = make([]string, 0, len(m))
				for f := range m {
					fields = append(fields, f)
				}
			} else {
				var err error
				if fields, err = keys[b].Result(); err != nil {
					return "", replyErr(err)
				}
			}
			slices.Sort(fields)
			for _, f := range fields {
				if f <= last {
					continue
				}
				if n == limit {
					return encodeCursor(tag, bucket+b, last), nil
				}
				if err := fn(f, m[f]); err != nil {
					return "", err
				}
				last = f
				n++
			}
			last = ""
		}
		bucket += w
		if n == limit {
			break
		}
		// Size the next window to the density seen so far: about the
		// buckets the rest of the page needs, at least 4 times more
		// when they were empty.
		seen := bucket - start
		if n == 0 {
			window = min(4*window, 4096)
		} else {
			need := uint64(limit-n) * uint64(seen) / uint64(n)
			window = uint32(min(max(need+need/4+1, 16), 4096))
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
	}
	if bucket >= s.ks.buckets() {
		return "", nil
	}
	return encodeCursor(tag, bucket, ""), nil
}

// TokenCounts implements store.Tokens. The counts are kept with HINCRBY
// beside the writes they count, across 16 counter keys; see the package
// documentation for how a crash makes them drift.
func (s *Store) TokenCounts(ctx context.Context) ([]store.TokenCount, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.leave()
	p := newPipe(ctx, counterShards)
	cmds := make([]*goredis.MapStringStringCmd, counterShards)
	for i := range cmds {
		cmds[i] = p.hgetall(s.ks.counterKey(i))
	}
	if err := p.exec(s, s.c); err != nil {
		return nil, err
	}
	sum := counters{}
	for _, c := range cmds {
		m, err := c.Result()
		if err != nil {
			return nil, replyErr(err)
		}
		for f, v := range m {
			if len(f) != 6 {
				return nil, corrupt("counter", fmt.Errorf("%w: counter field of %d bytes", store.ErrCorrupt, len(f)))
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, corrupt("counter", fmt.Errorf("%w: counter %q", store.ErrCorrupt, v))
			}
			sum.add(binary.BigEndian.Uint16([]byte(f[:2])), binary.BigEndian.Uint32([]byte(f[2:])), n)
		}
	}
	var out []store.TokenCount
	for k, n := range sum {
		if n != 0 {
			out = append(out, store.TokenCount{Category: uint16(k >> 32), Version: uint32(k), Count: n})
		}
	}
	slices.SortFunc(out, func(a, b store.TokenCount) int {
		if a.Category != b.Category {
			return int(a.Category) - int(b.Category)
		}
		return int(int64(a.Version) - int64(b.Version))
	})
	return out, nil
}
