package bench

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/fieldvault/fieldvault/keys/kek/transittest"
	"github.com/fieldvault/fieldvault/vault"
)

func newTestTransit(t *testing.T) (*transittest.Server, *Transit) {
	t.Helper()
	srv := transittest.New(t, transittest.Options{})
	return srv, NewTransit(srv.URL, srv.RootToken, "transit", "bench-key", NewHTTPClient(4, nil))
}

// The Transit driver speaks the Transit API: the key is created, encrypt
// and decrypt work single and batch_input, and the payload round-trips.
func TestTransitDriver(t *testing.T) {
	ctx := context.Background()
	srv, tr := newTestTransit(t)
	if err := tr.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tr.Setup(ctx); err != nil { // idempotent on an existing key
		t.Fatal(err)
	}
	values := []string{nameValue(1), nameValue(9), emailValue("r1", 3), valueFor("contact.phone", "", 42)}
	cts, err := tr.Encrypt(ctx, values)
	if err != nil {
		t.Fatal(err)
	}
	for i, ct := range cts {
		if !strings.HasPrefix(ct, "vault:v1:") {
			t.Fatalf("ciphertext %q", ct)
		}
		pt, err := tr.Decrypt(ctx, ct)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.StdEncoding.DecodeString(pt)
		if string(raw) != values[i] {
			t.Errorf("round trip %d: %q, want %q", i, raw, values[i])
		}
	}
	for _, batch := range []int{1, 7} {
		value := func(w *Worker) string { return nameValue(w.Rand.Uint64N(1000)) }
		before := srv.Calls("/v1/transit/encrypt/bench-key")
		res, err := Run(ctx, RunConfig{Concurrency: 3, Requests: 20}, tr.EncryptOp(batch, value))
		if err != nil {
			t.Fatal(err)
		}
		if res.OK != 20 || res.Fields != int64(20*batch) || len(res.Errors) != 0 {
			t.Errorf("encrypt x%d: ok %d fields %d errors %v", batch, res.OK, res.Fields, res.Errors)
		}
		if got := srv.Calls("/v1/transit/encrypt/bench-key") - before; got != 20 {
			t.Errorf("encrypt x%d: server saw %d calls, want 20", batch, got)
		}
		res, err = Run(ctx, RunConfig{Concurrency: 3, Requests: 20}, tr.DecryptOp(batch, cts))
		if err != nil {
			t.Fatal(err)
		}
		if res.OK != 20 || res.Fields != int64(20*batch) || len(res.Errors) != 0 {
			t.Errorf("decrypt x%d: ok %d fields %d errors %v", batch, res.OK, res.Fields, res.Errors)
		}
	}
	// A ciphertext the server cannot decrypt is an error, by status.
	res, err := Run(ctx, RunConfig{Concurrency: 1, Requests: 3}, tr.DecryptOp(2, []string{"vault:v1:AAAA"}))
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 0 || res.Errors["HTTP_400"] != 3 {
		t.Errorf("bad ciphertext: ok %d errors %v", res.OK, res.Errors)
	}

	// A wrong token is refused at setup.
	bad := NewTransit(srv.URL, "hvs.wrong", "transit", "bench-key", NewHTTPClient(1, nil))
	if err := bad.Setup(ctx); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("setup with a wrong token: %v", err)
	}
}

func TestErrorCodes(t *testing.T) {
	cases := []struct {
		r    response
		want string
	}{
		{response{403, []byte(`{"error":{"code":"CONSENT_WITHDRAWN","message":"x"},"items":[]}`)}, "CONSENT_WITHDRAWN"},
		{response{400, []byte(`{"errors":["permission denied"]}`)}, "HTTP_400"},
		{response{502, []byte(`<html>bad gateway</html>`)}, "HTTP_502"},
	}
	for _, c := range cases {
		if got := apiErrorCode(c.r); got != c.want {
			t.Errorf("apiErrorCode(%s) = %s, want %s", c.r.body, got, c.want)
		}
	}
	if got := transportCode(context.DeadlineExceeded); got != "TIMEOUT" {
		t.Errorf("deadline: %s", got)
	}
	if got := transportCode(http.ErrHandlerTimeout); got != "TRANSPORT" {
		t.Errorf("other: %s", got)
	}
	if got := string(appendJSONString(nil, "a\"b\\c\n\x01ไทย")); got != `"a\"b\\c\u000a\u0001ไทย"` {
		t.Errorf("appendJSONString: %s", got)
	}
}

// Every scenario runs against a real in-process fieldvault without errors,
// and the Transit baseline runs beside it.
func TestExecuteScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a vault")
	}
	st := newStack(t)
	tsrv, _ := newTestTransit(t)
	ctx := context.Background()
	o := &Options{
		Scenarios: []string{ScenarioTokenize, ScenarioTokenizeBatch, ScenarioDetokenize, ScenarioDetokenizeBatch,
			ScenarioMixed, ScenarioDeterministic},
		Concurrency: 4, Requests: 30, Addr: st.url, Token: stackToken, Subjects: 10, DetSubjects: 2,
		PoolPerSubject: 40, Distinct: 20, ReadRatio: 0.5, Label: "t",
		Baseline: "transit", VaultAddr: tsrv.URL, VaultToken: tsrv.RootToken, TransitKey: "k1",
	}
	rep, err := Execute(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 12 {
		t.Fatalf("%d results, want 6 fieldvault + 6 transit", len(rep.Results))
	}
	for i, r := range rep.Results {
		wantTarget := "fieldvault"
		if i%2 == 1 {
			wantTarget = "transit"
		}
		batch := DefaultBatch(o.Scenarios[i/2])
		if r.Target != wantTarget || r.OK != 30 || r.Fields != int64(30*batch) || len(r.Errors) != 0 || r.BatchSize != batch {
			t.Errorf("%s %s (%s): ok %d fields %d batch %d errors %v", r.Label, r.Target, r.Operation, r.OK, r.Fields,
				r.BatchSize, r.Errors)
		}
	}
	if len(rep.Comparison) != 6*7 {
		t.Errorf("%d comparison rows", len(rep.Comparison))
	}
	if got := rep.Results[4].Operation; got != "detokenize" {
		t.Errorf("operation %q", got)
	}
	if got := rep.Results[3].Operation; got != "transit encrypt batch_input" {
		t.Errorf("operation %q", got)
	}
	if got := rep.Results[10].Label; got != "t/deterministic" {
		t.Errorf("label %q", got)
	}
}

// Withdrawn consent shows up as errors by reason code, not as successes.
func TestDetokenizeDenialsCounted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a vault")
	}
	st := newStack(t)
	ctx := context.Background()
	fv, err := newFieldvault(st.url, stackToken, NewHTTPClient(2, nil))
	if err != nil {
		t.Fatal(err)
	}
	wl, err := newWorkload(ScenarioDetokenize, "", 1, 5, 10, 0, fv)
	if err != nil {
		t.Fatal(err)
	}
	if err := fv.setupPools(ctx, wl, 1, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := fv.sdk.WithdrawConsent(ctx, wl.pools[0].consent, &vault.WithdrawConsentRequest{Channel: "app"}); err != nil {
		t.Fatal(err)
	}
	res, err := Run(ctx, RunConfig{Concurrency: 1, Requests: 5}, fv.detokenizeOp(wl, 1))
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 0 || res.Errors["CONSENT_WITHDRAWN"] != 5 {
		t.Errorf("ok %d errors %v", res.OK, res.Errors)
	}
}

// Prefill loads the tokens and rewrap moves all of them to the new
// version.
func TestPrefillAndRewrap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a vault")
	}
	st := newStack(t)
	o := &Options{Scenarios: []string{ScenarioRewrap}, Concurrency: 2, Requests: 1, Addr: st.url, Token: stackToken,
		Prefill: 2500, PrefillBatch: 1000, PrefillConcurrency: 2, Subjects: 20}
	rep, err := Execute(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Prefill == nil || rep.Prefill.Tokens != 3000 || rep.Prefill.Errors != 0 || rep.Prefill.TokensPerSec <= 0 {
		t.Fatalf("prefill %+v", rep.Prefill)
	}
	if rep.Rewrap == nil || rep.Rewrap.Moved != 3000 || rep.Rewrap.State != "done" || rep.Rewrap.TokensPerSec <= 0 {
		t.Fatalf("rewrap %+v", rep.Rewrap)
	}
	if len(rep.Results) != 0 {
		t.Errorf("rewrap alone measured %d load results", len(rep.Results))
	}
}

func TestOptionsValidate(t *testing.T) {
	base := func() *Options {
		return &Options{Scenarios: []string{ScenarioTokenize}, Concurrency: 1, Duration: 1, Start: true}
	}
	bad := map[string]func(o *Options){
		"unknown scenario":     func(o *Options) { o.Scenarios = []string{"nope"} },
		"rewrap needs prefill": func(o *Options) { o.Scenarios = []string{ScenarioRewrap} },
		"no concurrency":       func(o *Options) { o.Concurrency = 0 },
		"no duration":          func(o *Options) { o.Duration = 0 },
		"start and addr":       func(o *Options) { o.Addr = "http://x" },
		"no target":            func(o *Options) { o.Start = false },
		"baseline needs vault": func(o *Options) { o.Baseline = "transit" },
		"unknown baseline":     func(o *Options) { o.Baseline = "kms" },
		"read ratio":           func(o *Options) { o.ReadRatio = 2 },
	}
	for name, f := range bad {
		o := base()
		f(o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	o := base()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.Subjects != 1000 || o.DetSubjects != 16 || o.PrefillBatch != 1000 || o.batch(ScenarioDetokenizeBatch) != 1000 ||
		o.batch(ScenarioTokenize) != 1 {
		t.Errorf("defaults %+v", o)
	}
}
