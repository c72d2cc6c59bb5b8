package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/client"
	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// putAdult registers an adult data subject.
func putAdult(t testing.TB, c *client.Client, id string) {
	t.Helper()
	if _, err := c.PutSubject(context.Background(), id, &vault.PutSubjectRequest{
		Type: subject.DataSubject, BirthDate: "1990-04-01"}); err != nil {
		t.Fatalf("put subject: %v", err)
	}
}

// grantMarketing records the subject's in-app consent to marketing by the
// CRM team (crm, TH) for the categories.
func grantMarketing(t testing.TB, c *client.Client, subj string, explicit bool, categories ...string) string {
	t.Helper()
	cv, err := c.GrantConsent(context.Background(), &vault.GrantConsentRequest{
		Subject:          subj,
		GrantedBy:        []consent.Grantor{{Party: consent.PartySubject, ID: subj, Verified: true}},
		Explicit:         explicit,
		Categories:       categories,
		Purposes:         []string{"marketing"},
		Recipients:       []consent.Recipient{{ID: "crm", Country: "TH"}},
		NoticeVersion:    "2020-09-15",
		CollectionMethod: consent.MethodInApp,
		Channel:          "app",
	})
	if err != nil {
		t.Fatalf("grant consent: %v", err)
	}
	return cv.ID
}

// marketingRequest asks for the full values for marketing on the consent.
func marketingRequest(consentID string, tokens ...string) *vault.DetokenizeRequest {
	return &vault.DetokenizeRequest{
		Purpose:   "marketing",
		Ground:    &policy.Ground{Type: policy.GroundConsent, Ref: consentID},
		Recipient: &policy.Recipient{ID: "crm", Country: "TH"},
		Reveal:    policy.RevealFull,
		Tokens:    tokens,
	}
}

// detokenizeAll detokenises tokens in batches and returns token -> value for
// those released, failing on any denial.
func detokenizeAll(t testing.TB, c *client.Client, consentID string, tokens []string) map[string]string {
	t.Helper()
	out := make(map[string]string, len(tokens))
	for start := 0; start < len(tokens); start += 1000 {
		end := min(start+1000, len(tokens))
		res, err := c.Detokenize(context.Background(), marketingRequest(consentID, tokens[start:end]...))
		if err != nil && res == nil {
			t.Fatalf("detokenize: %v", err)
		}
		if len(res.Items) != end-start {
			t.Fatalf("detokenize: %d items for %d tokens", len(res.Items), end-start)
		}
		for i, it := range res.Items {
			if it.Token != tokens[start+i] {
				t.Fatalf("detokenize: item %d is token %q, want %q", i, it.Token, tokens[start+i])
			}
			if it.Denied != nil {
				t.Errorf("token %d denied after restart: %s: %s", start+i, it.Denied.Code, it.Denied.Message)
				continue
			}
			out[it.Token] = it.Value
		}
	}
	return out
}

func boolp(b bool) *bool { return &b }

// TestRestartPersists stops a server with SIGTERM and starts another on the
// same data directory: tokens, subjects and consents survive, and
// deterministic tokens are stable.
func TestRestartPersists(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s1 := startServer(t, dir, devLaunch(t, dir), nil)
	c := s1.root()

	const subj = "restart-subject-1"
	putAdult(t, c, subj)
	items := []vault.TokenizeItem{
		{Category: "contact.phone", Value: "+66812349876", Subject: subj},                              // deterministic by default
		{Category: "contact.email", Value: "restart.user@example.com", Subject: subj},                  // deterministic by default
		{Category: "identity.name", Value: "Somsak Restart", Subject: subj},                            // random
		{Category: "contact.phone", Value: "+66898765432", Subject: subj, Deterministic: boolp(false)}, // random phone
		{Category: "govid.th_national_id", Value: validThaiID("310050012345"), Subject: subj},          // deterministic by default
	}
	res, err := c.Tokenize(ctx, &vault.TokenizeRequest{Items: items})
	if err != nil {
		t.Fatalf("tokenize: %v", err)
	}
	tokens := make([]string, len(items))
	for i, it := range res.Items {
		if it.Error != nil || it.Token == "" {
			t.Fatalf("item %d: %+v", i, it)
		}
		tokens[i] = it.Token
	}
	consentID := grantMarketing(t, c, subj, false, "contact.phone", "contact.email", "identity.name", "govid.th_national_id")
	before := detokenizeAll(t, c, consentID, tokens)
	for i, it := range items {
		if before[tokens[i]] != it.Value {
			t.Fatalf("before restart: token %d gives %q, want %q", i, before[tokens[i]], it.Value)
		}
	}

	if code := s1.stop(syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("SIGTERM: exit code %d, want 0\nstderr:\n%s", code, s1.stderr)
	}

	s2 := startServer(t, dir, devLaunch(t, dir), nil)
	c = s2.root()
	after := detokenizeAll(t, c, consentID, tokens)
	for i, it := range items {
		if after[tokens[i]] != it.Value {
			t.Errorf("after restart: token %d gives %q, want %q", i, after[tokens[i]], it.Value)
		}
	}
	s, err := c.GetSubject(ctx, subj)
	if err != nil || s.BirthDate != "1990-04-01" {
		t.Errorf("subject after restart: %+v, %v", s, err)
	}
	cv, err := c.GetConsent(ctx, consentID)
	if err != nil || cv.Status != consent.StatusGiven {
		t.Errorf("consent after restart: %+v, %v", cv, err)
	}

	// Deterministic tokens are stable across the restart; random ones are new.
	res2, err := c.Tokenize(ctx, &vault.TokenizeRequest{Items: items})
	if err != nil {
		t.Fatalf("tokenize after restart: %v", err)
	}
	for i, want := range []bool{true, true, false, false, true} {
		got := res2.Items[i].Token
		if want && got != tokens[i] {
			t.Errorf("deterministic item %d: token %q after restart, %q before", i, got, tokens[i])
		}
		if !want && got == tokens[i] {
			t.Errorf("random item %d: the same token %q again", i, got)
		}
	}
	// The root token printed its banner only on the first run.
	if s2.stdout.String() == "" || listeningRE.FindString(s2.stdout.String()) == "" {
		t.Errorf("second run printed no address: %q", s2.stdout)
	}
}

// TestSIGKILLDuringTokenizeLoad kills the server with SIGKILL while several
// clients tokenise, restarts it on the same data directory, and checks that
// every token the server acknowledged (200) detokenises to its value.
func TestSIGKILLDuringTokenizeLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s1 := startServer(t, dir, devLaunch(t, dir), nil)
	c := s1.root()
	const nSubjects = 4
	subjects := make([]string, nSubjects)
	consents := make([]string, nSubjects)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("load-subject-%d", i)
		putAdult(t, c, subjects[i])
		consents[i] = grantMarketing(t, c, subjects[i], false, "contact.phone", "contact.email", "identity.name")
	}

	type acked struct{ token, value string }
	var (
		mu     sync.Mutex
		ack    = make([][]acked, nSubjects)
		nreq   atomic.Int64
		nfail  atomic.Int64
		cut    atomic.Int64 // requests sent before the kill that failed
		wg     sync.WaitGroup
		seq    atomic.Int64
		killed atomic.Bool
	)
	const workers, batch = 4, 16
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			hc := s1.client(e2eRootToken)
			si := w % nSubjects
			// Each worker runs until a request fails after the kill, so the
			// kill always lands while the workers are sending.
			for {
				req := &vault.TokenizeRequest{}
				for k := 0; k < batch; k++ {
					n := seq.Add(1)
					var it vault.TokenizeItem
					switch n % 3 {
					case 0:
						it = vault.TokenizeItem{Category: "contact.phone", Value: fmt.Sprintf("+668%08d", n)}
					case 1:
						it = vault.TokenizeItem{Category: "contact.email", Value: fmt.Sprintf("load%d@example.com", n)}
					default:
						it = vault.TokenizeItem{Category: "identity.name", Value: fmt.Sprintf("Load Name %d", n)}
					}
					it.Subject = subjects[si]
					req.Items = append(req.Items, it)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				sentBeforeKill := !killed.Load()
				res, err := hc.Tokenize(ctx, req)
				cancel()
				nreq.Add(1)
				if err != nil {
					var ae *client.APIError
					if errors.As(err, &ae) && !killed.Load() {
						t.Errorf("tokenize before the kill: %v", err)
					}
					nfail.Add(1)
					if killed.Load() {
						if sentBeforeKill {
							cut.Add(1)
						}
						return
					}
					continue
				}
				mu.Lock()
				for k, it := range res.Items {
					if it.Error != nil || it.Token == "" {
						t.Errorf("acknowledged batch with a failed item: %+v", it)
						continue
					}
					ack[si] = append(ack[si], acked{it.Token, req.Items[k].Value})
				}
				mu.Unlock()
			}
		}(w)
	}

	// Let the load run until a good number of batches were acknowledged
	// (bounded in time), then kill the server mid-load.
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := 0
		for _, a := range ack {
			n += len(a)
		}
		mu.Unlock()
		if n >= 3000 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	killed.Store(true)
	if err := s1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	s1.stop(syscall.SIGKILL, 10*time.Second)
	wg.Wait()

	total := 0
	for _, a := range ack {
		total += len(a)
	}
	t.Logf("%d tokenize requests, %d failed (%d of them in flight at the kill), %d tokens acknowledged before SIGKILL",
		nreq.Load(), nfail.Load(), cut.Load(), total)
	if total == 0 {
		t.Fatal("no token was acknowledged before the kill")
	}

	s2 := startServer(t, dir, devLaunch(t, dir), nil)
	c = s2.root()
	lost := 0
	for si, a := range ack {
		toks := make([]string, len(a))
		for i := range a {
			toks[i] = a[i].token
		}
		got := detokenizeAll(t, c, consents[si], toks)
		for _, x := range a {
			if got[x.token] != x.value {
				lost++
				if lost <= 5 {
					t.Errorf("acknowledged token %q: got %q after the crash, want %q", x.token, got[x.token], x.value)
				}
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged tokens lost or wrong after SIGKILL", lost, total)
	}
}
