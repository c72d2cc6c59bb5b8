package main

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/client"
)

// tokenizeNames stores n identity.name values of subject and returns
// token -> value.
func tokenizeNames(t *testing.T, c *client.Client, subj string, n int) map[string]string {
	t.Helper()
	out := make(map[string]string, n)
	for start := 0; start < n; start += 1000 {
		req := &vault.TokenizeRequest{}
		for i := start; i < min(start+1000, n); i++ {
			req.Items = append(req.Items, vault.TokenizeItem{Category: "identity.name", Subject: subj,
				Value: fmt.Sprintf("Name %06d", i)})
		}
		res, err := c.Tokenize(context.Background(), req)
		if err != nil {
			t.Fatalf("tokenize: %v", err)
		}
		for i, it := range res.Items {
			out[it.Token] = req.Items[i].Value
		}
	}
	return out
}

func versionTokens(t *testing.T, c *client.Client, category string) map[uint32]int64 {
	t.Helper()
	kv, err := c.ListKeys(context.Background())
	if err != nil {
		t.Fatalf("list keys: %v", err)
	}
	out := map[uint32]int64{}
	for _, cat := range kv.Categories {
		if cat.Category == category {
			for _, v := range cat.Versions {
				out[v.Version] = v.Tokens
			}
		}
	}
	return out
}

// TestRewrapSurvivesSIGKILL rotates a category, starts a rate-limited rewrap,
// kills the server with SIGKILL midway, restarts it on the same data
// directory, and checks that the job resumes by itself and that every token
// ends on the new version and still reads, none lost. Then the old version
// can be disabled and destroyed, which was refused while it was in use.
func TestRewrapSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir, devLaunch(t, dir), nil)
	ctx := context.Background()
	root := s.root()
	putAdult(t, root, "rw1")
	const n = 6000
	values := tokenizeNames(t, root, "rw1", n)

	if _, err := root.RotateKeys(ctx, "identity.name"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.KeyVersionAction(ctx, "identity.name", 1, "destroy"); !client.IsCode(err, vault.CodeKeyVersionInUse) {
		t.Fatalf("destroying a version in use: %v, want %s", err, vault.CodeKeyVersionInUse)
	}
	job, err := root.Rewrap(ctx, &vault.RewrapRequest{Category: "identity.name", Rate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the job has moved some tokens but not all, then kill.
	deadline := time.Now().Add(60 * time.Second)
	for {
		j, err := root.GetJob(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.Moved > 0 && j.State == vault.JobRunning {
			break
		}
		if j.State != vault.JobRunning || time.Now().After(deadline) {
			t.Fatalf("job did not make progress before the kill: %+v", j)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop(syscall.SIGKILL, 10*time.Second)
	s2 := startServer(t, dir, devLaunch(t, dir), nil)
	root = s2.root()
	mid, err := root.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if mid.Moved >= n {
		t.Fatalf("the job finished before the kill (moved %d); the test did not test a resume", mid.Moved)
	}
	t.Logf("killed with %d of %d tokens moved", mid.Moved, n)
	deadline = time.Now().Add(120 * time.Second)
	for {
		j, err := root.GetJob(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == vault.JobDone {
			break
		}
		if j.State != vault.JobRunning || time.Now().After(deadline) {
			t.Fatalf("job did not resume and finish: %+v", j)
		}
		time.Sleep(100 * time.Millisecond)
	}
	counts := versionTokens(t, root, "identity.name")
	if counts[1] != 0 || counts[2] != n {
		t.Fatalf("tokens per version after the rewrap = %v, want 1:0 2:%d", counts, n)
	}
	consentID := grantMarketing(t, root, "rw1", false, "identity.name")
	toks := make([]string, 0, n)
	for tok := range values {
		toks = append(toks, tok)
	}
	got := detokenizeAll(t, root, consentID, toks)
	for tok, want := range values {
		if got[tok] != want {
			t.Fatalf("token lost or changed by the rewrap: got %q", got[tok])
		}
	}
	if _, err := root.KeyVersionAction(ctx, "identity.name", 1, "disable"); err != nil {
		t.Fatalf("disable the unused version: %v", err)
	}
	if _, err := root.KeyVersionAction(ctx, "identity.name", 1, "destroy"); err != nil {
		t.Fatalf("destroy the unused version: %v", err)
	}
	// Still everything reads after destroying the old version.
	got = detokenizeAll(t, root, consentID, toks[:100])
	if len(got) != 100 {
		t.Fatalf("after destroy: %d of 100 read", len(got))
	}
}

// TestRotateKEKThenRestart rotates the KEK, restarts, and reads everything.
func TestRotateKEKThenRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir, devLaunch(t, dir), nil)
	ctx := context.Background()
	root := s.root()
	putAdult(t, root, "kk1")
	values := tokenizeNames(t, root, "kk1", 50)
	n, err := root.RotateKEK(ctx)
	if err != nil || n < 1 {
		t.Fatalf("rotate-kek = %d, %v", n, err)
	}
	s.stop(syscall.SIGTERM, 20*time.Second)
	s2 := startServer(t, dir, devLaunch(t, dir), nil)
	root = s2.root()
	consentID := grantMarketing(t, root, "kk1", false, "identity.name")
	toks := make([]string, 0, len(values))
	for tok := range values {
		toks = append(toks, tok)
	}
	got := detokenizeAll(t, root, consentID, toks)
	for tok, want := range values {
		if got[tok] != want {
			t.Fatalf("after rotate-kek and restart: got %q, want %q", got[tok], want)
		}
	}
	// The audit log still appends (its keys were re-wrapped too): a denied
	// call is answered, not AUDIT_UNAVAILABLE.
	if _, err := root.Detokenize(ctx, marketingRequest("c_missing", toks[0])); err == nil || client.IsCode(err, vault.CodeAuditUnavailable) {
		t.Fatalf("denied detokenise after rotate-kek: %v", err)
	}
}
