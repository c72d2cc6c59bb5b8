package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/vault/store"
)

// model is the contract in plain maps: what a correct store holds after a
// sequence of operations. It is not a Store.
type model struct {
	tokens  map[string]store.Token
	fps     map[fpKey]string
	keys    map[store.SubjectKeyRef][]byte
	records map[recKey]store.Record
}

type fpKey struct {
	cat uint16
	fp  string
}

type recKey struct{ kind, id string }

// Small pools make collisions (existing tokens, bound fingerprints, CAS
// conflicts) frequent. The subjects, kinds and ids include pairs where one
// is a prefix of the other, with and without a NUL between.
var (
	poolTokens   = []string{"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9", "t", "t\x00", "t0\x00"}
	poolSubjects = []string{"a", "a\x00", "a\x00b", "ab", "b"}
	poolFPs      = []string{"", "", "f0", "f1", "f2", "f3", "f\x00"}
	poolKinds    = []string{"consent", "consent\x00", "job"}
	poolIDs      = []string{"a", "a\x00", "b", "ab"}
	poolIndexes  = []string{"", "x", "x\x00", "y"}
)

func pick[T any](r *rand.Rand, pool []T) T { return pool[r.IntN(len(pool))] }

func testModel(t *testing.T, s store.Store) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("FIELDVAULT_STORETEST_SEED"); v != "" {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			seed = n
		}
	}
	r := rand.New(rand.NewPCG(seed, seed>>7))
	t.Logf("seed %d", seed)
	m := &model{
		tokens:  make(map[string]store.Token),
		fps:     make(map[fpKey]string),
		keys:    make(map[store.SubjectKeyRef][]byte),
		records: make(map[recKey]store.Record),
	}
	steps := 600
	if testing.Short() {
		steps = 150
	}
	ops := []func(t *testing.T, s store.Store, r *rand.Rand){
		m.insertTokens, m.insertTokens, m.insertTokens,
		m.getTokens, m.lookup, m.updateKeys, m.updateKeys, m.deleteTokens,
		m.subjectTokens, m.scanTokens, m.counts,
		m.insertKeys, m.insertKeys, m.getKeys, m.deleteKeys, m.scanKeys,
		m.putRecord, m.putRecord, m.putRecord, m.deleteRecord, m.getRecords, m.listRecords,
	}
	for i := range steps {
		op := pick(r, ops)
		op(t, s, r)
		if t.Failed() {
			t.Fatalf("failed at step %d (seed %d)", i, seed)
		}
	}
	m.scanTokens(t, s, r)
	m.counts(t, s, r)
	m.scanKeys(t, s, r)
	for _, sub := range poolSubjects {
		m.checkSubject(t, s, sub)
	}
	for _, kind := range poolKinds {
		m.checkList(t, s, kind, "")
		for _, idx := range poolIndexes[1:] {
			m.checkList(t, s, kind, idx)
		}
	}
	if t.Failed() {
		t.Fatalf("final state differs (seed %d)", seed)
	}
}

func (m *model) randomRow(r *rand.Rand) store.Token {
	tok := row(pick(r, poolTokens), pick(r, poolSubjects), uint16(1+r.IntN(2)), uint32(1+r.IntN(3)), pick(r, poolFPs))
	tok.Ciphertext = fmt.Appendf(nil, "ct-%d", r.Uint32())
	tok.CreatedAt = r.Int64N(1 << 40)
	if r.IntN(2) == 0 {
		tok.ExpiresAt = 0
	}
	return tok
}

func (m *model) insertTokens(t *testing.T, s store.Store, r *rand.Rand) {
	rows := make([]store.Token, 1+r.IntN(6))
	for i := range rows {
		rows[i] = m.randomRow(r)
	}
	res, err := s.InsertTokens(t.Context(), rows)
	if err != nil {
		t.Fatalf("InsertTokens: %v", err)
	}
	defer func() {
		if t.Failed() {
			for i := range rows {
				t.Logf("call row %d: %s -> %+v", i, fmtToken(&rows[i]), res[i])
			}
		}
	}()
	for i, row := range rows {
		_, exists := m.tokens[row.Token]
		bound, isBound := "", false
		if len(row.Fingerprint) > 0 {
			bound, isBound = m.fps[fpKey{row.Category, string(row.Fingerprint)}]
		}
		got := res[i]
		switch {
		case exists && isBound:
			// Both apply; the contract does not rank them.
			if !errors.Is(got.Err, store.ErrTokenExists) &&
				!(errors.Is(got.Err, store.ErrFingerprintBound) && got.Existing == bound) {
				t.Errorf("InsertTokens(%s) = %+v, want ErrTokenExists or ErrFingerprintBound(%q)", fmtToken(&row), got, bound)
			}
		case exists:
			if !errors.Is(got.Err, store.ErrTokenExists) {
				t.Errorf("InsertTokens(%s) = %+v, want ErrTokenExists", fmtToken(&row), got)
			}
		case isBound:
			if !errors.Is(got.Err, store.ErrFingerprintBound) || got.Existing != bound {
				t.Errorf("InsertTokens(%s) = %+v, want ErrFingerprintBound(%q)", fmtToken(&row), got, bound)
			}
		default:
			if got.Err != nil {
				t.Errorf("InsertTokens(%s) = %+v, want stored", fmtToken(&row), got)
			}
			m.tokens[row.Token] = row
			if len(row.Fingerprint) > 0 {
				m.fps[fpKey{row.Category, string(row.Fingerprint)}] = row.Token
			}
		}
	}
}

func (m *model) getTokens(t *testing.T, s store.Store, r *rand.Rand) {
	tokens := make([]string, 1+r.IntN(6))
	want := make([]*store.Token, len(tokens))
	for i := range tokens {
		tokens[i] = pick(r, poolTokens)
		if row, ok := m.tokens[tokens[i]]; ok {
			want[i] = &row
		}
	}
	checkTokens(t, s, tokens, want)
}

func (m *model) lookup(t *testing.T, s store.Store, r *rand.Rand) {
	cat := uint16(1 + r.IntN(2))
	fps := make([]string, 1+r.IntN(4))
	want := make([]string, len(fps))
	for i := range fps {
		fps[i] = pick(r, poolFPs[2:])
		want[i] = m.fps[fpKey{cat, fps[i]}]
	}
	if got := lookup(t, s, cat, fps...); !slices.Equal(got, want) {
		t.Errorf("LookupFingerprints(%d, %q) = %q, want %q", cat, fps, got, want)
	}
}

func (m *model) updateKeys(t *testing.T, s store.Store, r *rand.Rand) {
	// Distinct tokens: the contract says nothing about one token updated
	// twice in a call.
	perm := r.Perm(len(poolTokens))[:1+r.IntN(4)]
	updates := make([]store.KeyUpdate, len(perm))
	for i, p := range perm {
		u := store.KeyUpdate{Token: poolTokens[p], OldVersion: uint32(1 + r.IntN(3)), NewVersion: uint32(1 + r.IntN(3))}
		if row, ok := m.tokens[u.Token]; ok && r.IntN(3) > 0 {
			u.OldVersion = row.KeyVersion
		}
		u.Ciphertext = fmt.Appendf(nil, "rewrapped-%d", r.Uint32())
		updates[i] = u
	}
	errs, err := s.UpdateTokenKeys(t.Context(), updates)
	if err != nil {
		t.Fatalf("UpdateTokenKeys: %v", err)
	}
	for i, u := range updates {
		row, ok := m.tokens[u.Token]
		switch {
		case !ok:
			wantErr(t, fmt.Sprintf("UpdateTokenKeys(%+v)", u), errs[i], store.ErrNotFound)
		case row.KeyVersion != u.OldVersion:
			wantErr(t, fmt.Sprintf("UpdateTokenKeys(%+v) at version %d", u, row.KeyVersion), errs[i], store.ErrConflict)
		default:
			if errs[i] != nil {
				t.Errorf("UpdateTokenKeys(%+v) = %v, want nil", u, errs[i])
			}
			row.KeyVersion, row.Ciphertext = u.NewVersion, u.Ciphertext
			m.tokens[u.Token] = row
		}
	}
}

func (m *model) deleteTokens(t *testing.T, s store.Store, r *rand.Rand) {
	tokens := make([]string, 1+r.IntN(4))
	want := 0
	for i := range tokens {
		tokens[i] = pick(r, poolTokens)
		if row, ok := m.tokens[tokens[i]]; ok {
			want++
			delete(m.tokens, row.Token)
			if len(row.Fingerprint) > 0 {
				delete(m.fps, fpKey{row.Category, string(row.Fingerprint)})
			}
		}
	}
	n, err := s.DeleteTokens(t.Context(), tokens)
	if err != nil || n != want {
		t.Errorf("DeleteTokens(%q) = %d, %v; want %d", tokens, n, err, want)
	}
}

func (m *model) checkSubject(t *testing.T, s store.Store, subject string) {
	var want []string
	for tok, row := range m.tokens {
		if row.Subject == subject {
			want = append(want, tok)
		}
	}
	checkSubjectTokens(t, s, subject, want...)
}

func (m *model) subjectTokens(t *testing.T, s store.Store, r *rand.Rand) {
	m.checkSubject(t, s, pick(r, poolSubjects))
}

func (m *model) scanTokens(t *testing.T, s store.Store, r *rand.Rand) {
	want := make([]store.Token, 0, len(m.tokens))
	for _, row := range m.tokens {
		want = append(want, row)
	}
	checkScan(t, s, 1+r.IntN(8), want...)
}

func (m *model) counts(t *testing.T, s store.Store, _ *rand.Rand) {
	want := make(map[countKey]int64)
	for _, row := range m.tokens {
		want[countKey{row.Category, row.KeyVersion}]++
	}
	checkCounts(t, s, want)
}

func (m *model) randomRef(r *rand.Rand) store.SubjectKeyRef {
	return ref(pick(r, poolSubjects), uint16(1+r.IntN(3)), uint32(1+r.IntN(2)))
}

func (m *model) insertKeys(t *testing.T, s store.Store, r *rand.Rand) {
	refs := make([]store.SubjectKeyRef, 1+r.IntN(4))
	wrapped := make([][]byte, len(refs))
	for i := range refs {
		refs[i] = m.randomRef(r)
		wrapped[i] = fmt.Appendf(nil, "wrapped-%d", r.Uint32())
	}
	got := insertKeys(t, s, refs, wrapped)
	for i, ref := range refs {
		if _, ok := m.keys[ref]; !ok {
			m.keys[ref] = wrapped[i]
		}
		if !bytes.Equal(got[i], m.keys[ref]) {
			t.Errorf("InsertSubjectKeys[%d] (%+v) = %q, want %q", i, ref, got[i], m.keys[ref])
		}
	}
}

func (m *model) getKeys(t *testing.T, s store.Store, r *rand.Rand) {
	refs := make([]store.SubjectKeyRef, 1+r.IntN(5))
	want := make([][]byte, len(refs))
	for i := range refs {
		refs[i] = m.randomRef(r)
		want[i] = m.keys[refs[i]]
	}
	checkKeys(t, s, refs, want)
}

func (m *model) deleteKeys(t *testing.T, s store.Store, r *rand.Rand) {
	subject := pick(r, poolSubjects)
	var cats []uint16
	if r.IntN(3) > 0 {
		cats = []uint16{}
		for c := uint16(1); c <= 3; c++ {
			if r.IntN(2) == 0 {
				cats = append(cats, c)
			}
		}
	}
	want := 0
	for ref := range m.keys {
		if ref.Subject == subject && (cats == nil || slices.Contains(cats, ref.Category)) {
			delete(m.keys, ref)
			want++
		}
	}
	n, err := s.DeleteSubjectKeys(t.Context(), subject, cats)
	if err != nil || n != want {
		t.Errorf("DeleteSubjectKeys(%q, %v) = %d, %v; want %d", subject, cats, n, err, want)
	}
}

func (m *model) scanKeys(t *testing.T, s store.Store, r *rand.Rand) {
	want := make([]store.SubjectKeyRef, 0, len(m.keys))
	for ref := range m.keys {
		want = append(want, ref)
	}
	sortRefs(want)
	limit := 1 + r.IntN(6)
	if got := scanKeys(t, s, limit); !slices.Equal(got, want) {
		t.Errorf("ScanSubjectKeys(limit %d) = %+v, want %+v", limit, got, want)
	}
}

func (m *model) putRecord(t *testing.T, s store.Store, r *rand.Rand) {
	rc := rec(pick(r, poolKinds), pick(r, poolIDs), pick(r, poolIndexes), fmt.Sprint(r.Uint32()))
	k := recKey{rc.Kind, rc.ID}
	cur, exists := m.records[k]
	var expect uint64
	switch r.IntN(4) {
	case 0:
		expect = 0
	case 1:
		expect = store.AnyRev
	case 2:
		expect = cur.Rev + 1
	default:
		expect = cur.Rev
	}
	rev, err := s.PutRecord(t.Context(), rc, expect)
	ok := expect == store.AnyRev || (exists && expect == cur.Rev) || (!exists && expect == 0)
	if !ok {
		wantErr(t, fmt.Sprintf("PutRecord(%s, expect %d) at rev %d", fmtRecord(&rc), expect, cur.Rev), err, store.ErrConflict)
		return
	}
	if err != nil || rev != cur.Rev+1 {
		t.Errorf("PutRecord(%s, expect %d) = %d, %v; want rev %d", fmtRecord(&rc), expect, rev, err, cur.Rev+1)
	}
	rc.Rev = cur.Rev + 1
	m.records[k] = rc
}

func (m *model) deleteRecord(t *testing.T, s store.Store, r *rand.Rand) {
	k := recKey{pick(r, poolKinds), pick(r, poolIDs)}
	if err := s.DeleteRecord(t.Context(), k.kind, k.id); err != nil {
		t.Errorf("DeleteRecord(%q, %q): %v", k.kind, k.id, err)
	}
	delete(m.records, k)
}

func (m *model) getRecords(t *testing.T, s store.Store, r *rand.Rand) {
	kind := pick(r, poolKinds)
	ids := make([]string, 1+r.IntN(4))
	want := make([]*store.Record, len(ids))
	for i := range ids {
		ids[i] = pick(r, poolIDs)
		if rc, ok := m.records[recKey{kind, ids[i]}]; ok {
			want[i] = &rc
		}
	}
	got, err := s.GetRecords(t.Context(), kind, ids)
	checkList(t, fmt.Sprintf("GetRecords(%q, %q)", kind, ids), got, err, want...)
	checkRecord(t, s, kind, ids[0], want[0])
}

// checkList compares ListRecords (index "") or ListByIndex with the model.
func (m *model) checkList(t *testing.T, s store.Store, kind, index string) {
	var want []*store.Record
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for k := range m.records {
			if k.kind == kind && !yield(k.id) {
				return
			}
		}
	}) {
		rc := m.records[recKey{kind, id}]
		if index == "" || rc.Index == index {
			want = append(want, &rc)
		}
	}
	if index == "" {
		got, err := s.ListRecords(t.Context(), kind)
		checkList(t, fmt.Sprintf("ListRecords(%q)", kind), got, err, want...)
		return
	}
	got, err := s.ListByIndex(t.Context(), kind, index)
	checkList(t, fmt.Sprintf("ListByIndex(%q, %q)", kind, index), got, err, want...)
}

func (m *model) listRecords(t *testing.T, s store.Store, r *rand.Rand) {
	m.checkList(t, s, pick(r, poolKinds), pick(r, poolIndexes))
}
