package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/client"
	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// Scenarios.
const (
	ScenarioTokenize        = "tokenize"
	ScenarioTokenizeBatch   = "tokenize-batch"
	ScenarioDetokenize      = "detokenize"
	ScenarioDetokenizeBatch = "detokenize-batch"
	ScenarioMixed           = "mixed"
	ScenarioDeterministic   = "deterministic"
	ScenarioRewrap          = "rewrap"
)

// Scenarios lists every scenario with what it does.
var Scenarios = []struct{ Name, What string }{
	{ScenarioTokenize, "tokenise one field per request (random tokens)"},
	{ScenarioTokenizeBatch, "tokenise --batch fields per request (default 1000)"},
	{ScenarioDetokenize, "detokenise one token per request on a consent ground (full reveal, audited)"},
	{ScenarioDetokenizeBatch, "detokenise --batch tokens of one subject per request on its consent (default 1000)"},
	{ScenarioMixed, "detokenise (--read-ratio of requests) and tokenise, --batch fields each"},
	{ScenarioDeterministic, "deterministic tokenise of values drawn from --distinct repeated values"},
	{ScenarioRewrap, "rotate --category and time `keys rewrap` over the stored tokens (use with --prefill)"},
}

// DefaultBatch is a scenario's batch size unless --batch says otherwise.
func DefaultBatch(scenario string) int {
	if strings.HasSuffix(scenario, "-batch") {
		return 1000
	}
	return 1
}

// Consent vocabulary of the harness's detokenise ground.
const (
	benchPurpose   = "marketing"
	benchRecipient = "crm"
	benchCountry   = "TH"
)

// fieldvault drives one fieldvault server.
type fieldvault struct {
	ep  *endpoint
	sdk *client.Client
	run string // unique per invocation: subject ids and values
}

func newFieldvault(addr, token string, hc *http.Client) (*fieldvault, error) {
	sdk, err := client.New(addr, token, client.WithHTTPClient(hc))
	if err != nil {
		return nil, err
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	return &fieldvault{
		ep:  &endpoint{http: hc, base: strings.TrimRight(addr, "/"), authHeader: "Authorization", authValue: "Bearer " + token},
		sdk: sdk,
		run: hex.EncodeToString(id[:]),
	}, nil
}

// detPool is one subject's tokens and the consent that unlocks them.
type detPool struct {
	subject string
	consent string
	tokens  []string
	values  []string
}

// workload is the shape of the requests of a scenario.
type workload struct {
	category      string
	randomFlag    bool // send "deterministic":false (the category defaults to deterministic)
	deterministic bool
	batch         int
	subjects      []string // tokenise subjects
	distinct      int
	readRatio     float64
	pools         []detPool
}

func (f *fieldvault) subjectIDs(kind string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("b%s-%s%d", f.run, kind, i)
	}
	return ids
}

func newWorkload(scenario, category string, batch, subjects, distinct int, readRatio float64, f *fieldvault) (*workload, error) {
	if scenario == ScenarioDeterministic && category == "" {
		category = "contact.email"
	}
	if category == "" {
		category = "identity.name"
	}
	cat, ok := tokenizer.Lookup(category)
	if !ok {
		return nil, fmt.Errorf("unknown category %q", category)
	}
	w := &workload{category: category, batch: batch, distinct: distinct, readRatio: readRatio,
		subjects: f.subjectIDs("t", subjects)}
	if scenario == ScenarioDeterministic {
		if cat.Deterministic == tokenizer.Never {
			return nil, fmt.Errorf("%s does not allow deterministic tokens", category)
		}
		w.deterministic = true
	} else {
		w.randomFlag = cat.Deterministic == tokenizer.Default
	}
	return w, nil
}

// appendTokenizeBody writes a tokenise request of n items.
func (wl *workload) appendTokenizeBody(b []byte, w *Worker, n int, run string) []byte {
	b = append(b, `{"items":[`...)
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		var value, subj string
		if wl.deterministic {
			k := w.Rand.Uint64N(uint64(wl.distinct))
			value = valueFor(wl.category, run, k)
			subj = wl.subjects[k%uint64(len(wl.subjects))]
		} else {
			value = valueFor(wl.category, run, w.Rand.Uint64N(1<<32))
			subj = wl.subjects[w.Rand.IntN(len(wl.subjects))]
		}
		b = append(b, `{"category":`...)
		b = appendJSONString(b, wl.category)
		b = append(b, `,"value":`...)
		b = appendJSONString(b, value)
		b = append(b, `,"subject":`...)
		b = appendJSONString(b, subj)
		switch {
		case wl.deterministic:
			b = append(b, `,"deterministic":true`...)
		case wl.randomFlag:
			b = append(b, `,"deterministic":false`...)
		}
		b = append(b, '}')
	}
	return append(b, `]}`...)
}

// appendDetokenizeBody writes a detokenise request of n tokens of one
// subject, on that subject's consent.
func (wl *workload) appendDetokenizeBody(b []byte, w *Worker, n int) []byte {
	p := &wl.pools[w.Rand.IntN(len(wl.pools))]
	start := w.Rand.IntN(len(p.tokens))
	b = append(b, `{"purpose":"`+benchPurpose+`","ground":{"type":"consent","ref":`...)
	b = appendJSONString(b, p.consent)
	b = append(b, `},"recipient":{"id":"`+benchRecipient+`","country":"`+benchCountry+`"},"reveal":"full","tokens":[`...)
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, p.tokens[(start+i)%len(p.tokens)])
	}
	return append(b, `]}`...)
}

// tokenizeOp sends one tokenise request of wl.batch items.
func (f *fieldvault) tokenizeOp(wl *workload, n int) Op {
	return func(ctx context.Context, w *Worker) Outcome {
		w.Buf = wl.appendTokenizeBody(w.Buf[:0], w, n, f.run)
		r, err := f.ep.post(ctx, w, "/v1/tokenize", w.Buf)
		if err != nil {
			return Outcome{Code: transportCode(err)}
		}
		if r.status != http.StatusOK {
			return Outcome{Code: apiErrorCode(r)}
		}
		return Outcome{Fields: n}
	}
}

var deniedKey = []byte(`"denied"`)

// detokenizeOp sends one detokenise request of n tokens. A request with any
// token denied counts as an error (code DENIED_<reason>).
func (f *fieldvault) detokenizeOp(wl *workload, n int) Op {
	return func(ctx context.Context, w *Worker) Outcome {
		w.Buf = wl.appendDetokenizeBody(w.Buf[:0], w, n)
		r, err := f.ep.post(ctx, w, "/v1/detokenize", w.Buf)
		if err != nil {
			return Outcome{Code: transportCode(err)}
		}
		if r.status != http.StatusOK {
			return Outcome{Code: apiErrorCode(r)}
		}
		if !bytes.Contains(r.body, deniedKey) {
			return Outcome{Fields: n}
		}
		var res vault.DetokenizeResult
		if err := json.Unmarshal(r.body, &res); err != nil {
			return Outcome{Code: "BAD_RESPONSE"}
		}
		for _, it := range res.Items {
			if it.Denied != nil {
				return Outcome{Code: "DENIED_" + it.Denied.Code}
			}
		}
		return Outcome{Fields: n}
	}
}

// op returns the request of a scenario.
func (f *fieldvault) op(scenario string, wl *workload) Op {
	switch scenario {
	case ScenarioDetokenize, ScenarioDetokenizeBatch:
		return f.detokenizeOp(wl, wl.batch)
	case ScenarioMixed:
		read, write := f.detokenizeOp(wl, wl.batch), f.tokenizeOp(wl, wl.batch)
		return func(ctx context.Context, w *Worker) Outcome {
			if w.Rand.Float64() < wl.readRatio {
				return read(ctx, w)
			}
			return write(ctx, w)
		}
	default:
		return f.tokenizeOp(wl, wl.batch)
	}
}

// needsPools reports whether a scenario detokenises.
func needsPools(scenario string) bool {
	switch scenario {
	case ScenarioDetokenize, ScenarioDetokenizeBatch, ScenarioMixed:
		return true
	}
	return false
}

// setupPools registers n subjects, tokenises perSubject values for each
// and grants each a consent covering the category, the bench purpose and
// recipient. This happens before, and outside, the measurement.
func (f *fieldvault) setupPools(ctx context.Context, wl *workload, n, perSubject int) error {
	ids := f.subjectIDs("d", n)
	wl.pools = make([]detPool, n)
	k := uint64(0)
	for i, id := range ids {
		if _, err := f.sdk.PutSubject(ctx, id, &vault.PutSubjectRequest{Type: subject.DataSubject, BirthDate: "1990-04-01"}); err != nil {
			return fmt.Errorf("register subject: %w", err)
		}
		p := &wl.pools[i]
		p.subject = id
		for len(p.tokens) < perSubject {
			m := min(perSubject-len(p.tokens), 1000)
			req := &vault.TokenizeRequest{}
			for j := 0; j < m; j++ {
				v := valueFor(wl.category, f.run+"p", k)
				k++
				it := vault.TokenizeItem{Category: wl.category, Subject: id, Value: v}
				if wl.randomFlag {
					it.Deterministic = new(bool)
				}
				req.Items = append(req.Items, it)
				p.values = append(p.values, v)
			}
			res, err := f.sdk.Tokenize(ctx, req)
			if err != nil {
				return fmt.Errorf("tokenise the detokenise pool: %w", err)
			}
			for _, it := range res.Items {
				p.tokens = append(p.tokens, it.Token)
			}
		}
		c, err := f.sdk.GrantConsent(ctx, &vault.GrantConsentRequest{
			Subject:          id,
			GrantedBy:        []consent.Grantor{{Party: consent.PartySubject, ID: id, Verified: true}},
			Categories:       []string{wl.category},
			Purposes:         []string{benchPurpose},
			Recipients:       []consent.Recipient{{ID: benchRecipient, Country: benchCountry}},
			NoticeVersion:    "2020-09-15",
			CollectionMethod: consent.MethodInApp,
		})
		if err != nil {
			return fmt.Errorf("grant consent: %w", err)
		}
		p.consent = c.ID
	}
	return nil
}

// rewrap rotates the category and times a rewrap job to the end.
func (f *fieldvault) rewrap(ctx context.Context, category string, poll time.Duration) (*RewrapResult, error) {
	if _, err := f.sdk.RotateKeys(ctx, category); err != nil {
		return nil, fmt.Errorf("rotate: %w", err)
	}
	start := time.Now()
	job, err := f.sdk.Rewrap(ctx, &vault.RewrapRequest{Category: category})
	if err != nil {
		return nil, fmt.Errorf("rewrap: %w", err)
	}
	for job.State == vault.JobRunning {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
		if job, err = f.sdk.GetJob(ctx, job.ID); err != nil {
			return nil, fmt.Errorf("rewrap job: %w", err)
		}
	}
	secs := time.Since(start).Seconds()
	if !job.FinishedAt.IsZero() && job.FinishedAt.After(job.StartedAt) {
		secs = job.FinishedAt.Sub(job.StartedAt).Seconds()
	}
	r := &RewrapResult{Category: category, Scanned: job.Scanned, Moved: job.Moved, Seconds: secs, State: job.State}
	if secs > 0 {
		r.TokensPerSec = float64(job.Moved) / secs
	}
	if job.State != vault.JobDone {
		return r, fmt.Errorf("rewrap job %s ended %s: %s", job.ID, job.State, job.Error)
	}
	return r, nil
}
