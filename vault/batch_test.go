package vault_test

// Batched reads: a detokenise call reads the store a fixed number of times,
// however many tokens and subjects it holds. The store is the real Pebble
// store, wrapped to count the calls made to it (instrumentation, not a
// mock).

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/internal/vaulttest"
	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/store"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// countingStore counts the calls made to the store it embeds, per method.
type countingStore struct {
	store.Store
	mu    sync.Mutex
	calls map[string]int
}

func newCountingStore(s store.Store) *countingStore {
	return &countingStore{Store: s, calls: map[string]int{}}
}

func (c *countingStore) count(method string) {
	c.mu.Lock()
	c.calls[method]++
	c.mu.Unlock()
}

// take returns the counts since the last take and starts again.
func (c *countingStore) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = map[string]int{}
	return out
}

func (c *countingStore) InsertTokens(ctx context.Context, rows []store.Token) ([]store.InsertResult, error) {
	c.count("InsertTokens")
	return c.Store.InsertTokens(ctx, rows)
}

func (c *countingStore) GetTokens(ctx context.Context, tokens []string) ([]*store.Token, error) {
	c.count("GetTokens")
	return c.Store.GetTokens(ctx, tokens)
}

func (c *countingStore) LookupFingerprints(ctx context.Context, category uint16, fps [][]byte) ([]string, error) {
	c.count("LookupFingerprints")
	return c.Store.LookupFingerprints(ctx, category, fps)
}

func (c *countingStore) UpdateTokenKeys(ctx context.Context, updates []store.KeyUpdate) ([]error, error) {
	c.count("UpdateTokenKeys")
	return c.Store.UpdateTokenKeys(ctx, updates)
}

func (c *countingStore) DeleteTokens(ctx context.Context, tokens []string) (int, error) {
	c.count("DeleteTokens")
	return c.Store.DeleteTokens(ctx, tokens)
}

func (c *countingStore) SubjectTokens(ctx context.Context, subject string) ([]string, error) {
	c.count("SubjectTokens")
	return c.Store.SubjectTokens(ctx, subject)
}

func (c *countingStore) ScanTokens(ctx context.Context, cursor string, limit int) ([]store.Token, string, error) {
	c.count("ScanTokens")
	return c.Store.ScanTokens(ctx, cursor, limit)
}

func (c *countingStore) TokenCounts(ctx context.Context) ([]store.TokenCount, error) {
	c.count("TokenCounts")
	return c.Store.TokenCounts(ctx)
}

func (c *countingStore) GetSubjectKeys(ctx context.Context, refs []store.SubjectKeyRef) ([][]byte, error) {
	c.count("GetSubjectKeys")
	return c.Store.GetSubjectKeys(ctx, refs)
}

func (c *countingStore) InsertSubjectKeys(ctx context.Context, refs []store.SubjectKeyRef, wrapped [][]byte) ([][]byte, error) {
	c.count("InsertSubjectKeys")
	return c.Store.InsertSubjectKeys(ctx, refs, wrapped)
}

func (c *countingStore) DeleteSubjectKeys(ctx context.Context, subject string, categories []uint16) (int, error) {
	c.count("DeleteSubjectKeys")
	return c.Store.DeleteSubjectKeys(ctx, subject, categories)
}

func (c *countingStore) ScanSubjectKeys(ctx context.Context, cursor string, limit int) ([]store.SubjectKeyRef, string, error) {
	c.count("ScanSubjectKeys")
	return c.Store.ScanSubjectKeys(ctx, cursor, limit)
}

func (c *countingStore) GetRecord(ctx context.Context, kind, id string) (*store.Record, error) {
	c.count("GetRecord")
	return c.Store.GetRecord(ctx, kind, id)
}

func (c *countingStore) GetRecords(ctx context.Context, kind string, ids []string) ([]*store.Record, error) {
	c.count("GetRecords")
	return c.Store.GetRecords(ctx, kind, ids)
}

func (c *countingStore) PutRecord(ctx context.Context, rec store.Record, expectRev uint64) (uint64, error) {
	c.count("PutRecord")
	return c.Store.PutRecord(ctx, rec, expectRev)
}

func (c *countingStore) DeleteRecord(ctx context.Context, kind, id string) error {
	c.count("DeleteRecord")
	return c.Store.DeleteRecord(ctx, kind, id)
}

func (c *countingStore) ListRecords(ctx context.Context, kind string) ([]*store.Record, error) {
	c.count("ListRecords")
	return c.Store.ListRecords(ctx, kind)
}

func (c *countingStore) ListByIndex(ctx context.Context, kind, index string) ([]*store.Record, error) {
	c.count("ListByIndex")
	return c.Store.ListByIndex(ctx, kind, index)
}

func (c *countingStore) Ping(ctx context.Context) error {
	c.count("Ping")
	return c.Store.Ping(ctx)
}

var (
	pSvc   = &vault.Principal{Name: "svc", Roles: []string{"service"}}
	pDPO   = &vault.Principal{Name: "dpo-1", Roles: []string{"dpo"}}
	pLegal = []*vault.Principal{
		{Name: "legal-1", Roles: []string{"legal"}},
		{Name: "legal-2", Roles: []string{"legal"}},
		{Name: "legal-3", Roles: []string{"legal"}},
	}
)

// crowd is n subjects with one precise-location token each, made through
// the Vault API.
type crowd struct {
	st       *vaulttest.Stack
	counter  *countingStore
	subjects []string
	tokens   []string
	values   []string
}

func newCrowd(tb testing.TB, n int) *crowd {
	tb.Helper()
	ctx := context.Background()
	c := &crowd{}
	c.st = vaulttest.New(tb, vaulttest.Options{Clock: vaulttest.NewClock(modelClock),
		WrapStore: func(s store.Store) store.Store { c.counter = newCountingStore(s); return c.counter }})
	v := c.st.Vault
	c.subjects = make([]string, n)
	for i := range c.subjects {
		c.subjects[i] = fmt.Sprintf("crowd-%04d", i)
	}
	// Registered concurrently: the writes share fsyncs.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if _, _, err := v.PutSubject(ctx, pSvc, c.subjects[i],
					&vault.PutSubjectRequest{Type: subject.DataSubject, BirthDate: "1990-01-01"}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatalf("PutSubject: %v", err)
	}
	c.values = make([]string, n)
	c.tokens = c.tokenize(tb, "a")
	return c
}

// tokenize tokenises one new precise location per subject, in one call.
func (c *crowd) tokenize(tb testing.TB, tag string) []string {
	tb.Helper()
	req := &vault.TokenizeRequest{Items: make([]vault.TokenizeItem, len(c.subjects))}
	for i, s := range c.subjects {
		c.values[i] = fmt.Sprintf("13.%06d,100.%06d %s", i, 2*i, tag)
		req.Items[i] = vault.TokenizeItem{Category: "location.precise", Value: c.values[i], Subject: s}
	}
	res, err := c.st.Vault.Tokenize(context.Background(), pSvc, req)
	if err != nil {
		tb.Fatalf("Tokenize: %v", err)
	}
	out := make([]string, len(res.Items))
	for i, it := range res.Items {
		if it.Error != nil {
			tb.Fatalf("tokenize item %d: %+v", i, it.Error)
		}
		out[i] = it.Token
	}
	return out
}

// lia registers an approved LIA for fraud detection on precise locations:
// an LIA is not about particular subjects, so it covers all of them.
func (c *crowd) lia(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	e, err := c.st.Vault.CreateEvidence(ctx, pDPO, &vault.CreateEvidenceRequest{Kind: policy.KindLIA,
		Categories: []string{"location.precise"}, Purposes: []string{policy.PurposeFraudAML}})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := c.st.Vault.ApproveEvidence(ctx, pDPO, e.ID); err != nil {
		tb.Fatal(err)
	}
	return e.ID
}

// instrument registers a court order listing every subject of the crowd.
func (c *crowd) instrument(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	e, err := c.st.Vault.CreateEvidence(ctx, pLegal[0], &vault.CreateEvidenceRequest{Kind: policy.KindAuthorityInstrument,
		Subjects: c.subjects, Categories: []string{"location.precise"}, ValidUntil: tp(at(2026, 1, 1, 0, 0, 0)),
		Attributes: map[string]string{"authority": "Thai court", "jurisdiction": "TH"}})
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range pLegal[:2] {
		if _, err := c.st.Vault.ApproveEvidence(ctx, p, e.ID); err != nil {
			tb.Fatal(err)
		}
	}
	return e.ID
}

func (c *crowd) detokenize(tb testing.TB, p *vault.Principal, purpose string, g policy.Ground, n int) {
	tb.Helper()
	res, err := c.st.Vault.Detokenize(context.Background(), p, &vault.DetokenizeRequest{Purpose: purpose,
		Ground: &g, Reveal: policy.RevealFull, Tokens: c.tokens[:n]})
	if err != nil {
		tb.Fatalf("Detokenize %d: %v", n, err)
	}
	for i, it := range res.Items {
		if it.Denied != nil || it.Value != normalisedLocation(tb, c.values[i]) {
			tb.Fatalf("token %d: %+v", i, it)
		}
	}
}

func normalisedLocation(tb testing.TB, v string) string { return normalised(tb, "location.precise", v) }

// forgetKeys drops every cached data key, so the next decision reads them.
func (c *crowd) forgetKeys() {
	for _, s := range c.subjects {
		c.st.Keys.Forget(s, nil)
	}
}

// TestDetokenizeStoreCallsConstant: 10 and 1000 tokens of as many
// distinct subjects cost the same store calls, per method, with the data
// keys cached and after they were dropped, on a ground that covers every
// subject (an LIA) and on one that lists them (a court order).
func TestDetokenizeStoreCallsConstant(t *testing.T) {
	const n = 1000
	start := time.Now()
	c := newCrowd(t, n)
	t.Logf("%d subjects and tokens in %v", n, time.Since(start).Round(time.Millisecond))
	grounds := []struct {
		name    string
		p       *vault.Principal
		purpose string
		g       policy.Ground
	}{
		{"lia", pSvc, policy.PurposeFraudAML, policy.Ground{Type: policy.GroundLegitimateInterest, Ref: c.lia(t)}},
		{"instrument", pLegal[2], policy.PurposeLegalAuthority, policy.Ground{Type: policy.GroundAuthorityInstrument, Ref: c.instrument(t)}},
	}
	for _, g := range grounds {
		for _, cold := range []bool{false, true} {
			name := g.name + "/warm-keys"
			if cold {
				name = g.name + "/cold-keys"
			}
			t.Run(name, func(t *testing.T) {
				calls := map[int]map[string]int{}
				for _, k := range []int{10, n} {
					if cold {
						c.forgetKeys()
					}
					c.counter.take()
					c.detokenize(t, g.p, g.purpose, g.g, k)
					calls[k] = c.counter.take()
				}
				t.Logf("store calls: 10 tokens %v, %d tokens %v", calls[10], n, calls[n])
				if !maps.Equal(calls[10], calls[n]) {
					t.Errorf("store calls grow with the batch: 10 tokens %v, %d tokens %v", calls[10], n, calls[n])
				}
				total := 0
				for _, v := range calls[n] {
					total += v
				}
				if total == 0 || total > 8 {
					t.Errorf("%d store calls for one decision of %d tokens: %v", total, n, calls[n])
				}
				if cold && calls[n]["GetSubjectKeys"] == 0 {
					t.Errorf("cold keys but no GetSubjectKeys call: %v", calls[n])
				}
			})
		}
	}
}

// perField accumulates the allocations of the timed calls, to report
// them per field with the time.
type perField struct {
	bytes, mallocs uint64
	ms             runtime.MemStats
}

// around runs fn with the timer on and counts its allocations (the
// memory statistics are read with the timer off).
func (p *perField) around(b *testing.B, fn func()) {
	b.StopTimer()
	runtime.ReadMemStats(&p.ms)
	bytes, mallocs := p.ms.TotalAlloc, p.ms.Mallocs
	b.StartTimer()
	fn()
	b.StopTimer()
	runtime.ReadMemStats(&p.ms)
	p.bytes += p.ms.TotalAlloc - bytes
	p.mallocs += p.ms.Mallocs - mallocs
	b.StartTimer()
}

// report reports ns, bytes and allocations per field of batches of size
// fields.
func (p *perField) report(b *testing.B, fields int) {
	n := float64(b.N * fields)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/field")
	b.ReportMetric(float64(p.bytes)/n, "B/field")
	b.ReportMetric(float64(p.mallocs)/n, "allocs/field")
}

// BenchmarkDetokenize1000 is one detokenise decision of 1000 tokens of
// 1000 subjects (an LIA, data keys cached), in process through the Vault
// API: decision, decryption and the audit commit.
func BenchmarkDetokenize1000(b *testing.B) {
	const n = 1000
	c := newCrowd(b, n)
	g := policy.Ground{Type: policy.GroundLegitimateInterest, Ref: c.lia(b)}
	ctx := context.Background()
	c.detokenize(b, pSvc, policy.PurposeFraudAML, g, n)
	var pf perField
	b.ReportAllocs()
	for b.Loop() {
		req := &vault.DetokenizeRequest{Purpose: policy.PurposeFraudAML, Ground: &g, Reveal: policy.RevealFull, Tokens: c.tokens}
		pf.around(b, func() {
			res, err := c.st.Vault.Detokenize(ctx, pSvc, req)
			if err != nil || len(res.Items) != n || res.Items[n-1].Value == "" {
				b.Fatalf("detokenize: %v", err)
			}
		})
	}
	pf.report(b, n)
}

// BenchmarkTokenize1000 is one tokenise call of 1000 new values of 1000
// subjects (random tokens, data keys cached), in process through the Vault
// API, durable on return.
func BenchmarkTokenize1000(b *testing.B) {
	const n = 1000
	c := newCrowd(b, n)
	ctx := context.Background()
	var pf perField
	b.ReportAllocs()
	k := 0
	for b.Loop() {
		k++
		b.StopTimer()
		req := &vault.TokenizeRequest{Items: make([]vault.TokenizeItem, n)}
		for i, s := range c.subjects {
			req.Items[i] = vault.TokenizeItem{Category: "location.precise", Value: fmt.Sprintf("13.%06d,100.%06d #%d", i, k, k), Subject: s}
		}
		b.StartTimer()
		pf.around(b, func() {
			res, err := c.st.Vault.Tokenize(ctx, pSvc, req)
			if err != nil || len(res.Items) != n || res.Items[n-1].Token == "" {
				b.Fatalf("tokenize: %v", err)
			}
		})
	}
	pf.report(b, n)
}
