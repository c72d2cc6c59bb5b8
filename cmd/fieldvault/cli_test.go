package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/fieldvault/fieldvault/vault"
)

// TestCLI drives the client subcommands against a live server, as the README
// shows them, and checks their output and exit codes.
func TestCLI(t *testing.T) {
	t.Parallel()
	s := startDev(t)
	env := []string{"FIELDVAULT_ADDR=" + s.addr, "FIELDVAULT_TOKEN=" + e2eRootToken}
	run := func(wantCode int, stdin []byte, args ...string) (string, string) {
		t.Helper()
		out, errOut, code := runCLI(t, env, stdin, args...)
		if code != wantCode {
			t.Fatalf("fieldvault %s: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s",
				strings.Join(args, " "), code, wantCode, out, errOut)
		}
		return out, errOut
	}

	// subject put / get
	out, _ := run(0, nil, "subject", "put", "cli-u1", "--type", "data_subject", "--birth-date", "1990-04-01")
	var subj map[string]any
	if err := json.Unmarshal([]byte(out), &subj); err != nil || subj["id"] != "cli-u1" || subj["birth_date"] != "1990-04-01" {
		t.Fatalf("subject put printed %q", out)
	}
	out, _ = run(0, nil, "subject", "get", "cli-u1")
	subj = nil
	if err := json.Unmarshal([]byte(out), &subj); err != nil || subj["id"] != "cli-u1" || subj["type"] != "data_subject" {
		t.Fatalf("subject get printed %q", out)
	}
	_, errOut := run(1, nil, "subject", "get", "cli-nobody")
	if !strings.Contains(errOut, "SUBJECT_NOT_FOUND") {
		t.Errorf("subject get of an unknown subject: stderr %q", errOut)
	}

	// tokenize: one token per value, one per line
	out, _ = run(0, nil, "tokenize", "--category", "contact.phone", "--subject", "cli-u1", "081-234-5678")
	token := strings.TrimSpace(out)
	if !regexp.MustCompile(`^\+660[0-9]{4}5678$`).MatchString(token) {
		t.Fatalf("tokenize printed %q, want one phone token", out)
	}
	out, _ = run(0, nil, "tokenize", "--category", "identity.name", "--subject", "cli-u1", "Ann One", "Bob Two")
	if lines := strings.Fields(out); len(lines) != 2 || lines[0] == lines[1] {
		t.Errorf("tokenize of two values printed %q", out)
	}
	_, errOut = run(1, nil, "tokenize", "--category", "govid.th_national_id", "--subject", "cli-u1", "1103702071839")
	if !strings.Contains(errOut, "INVALID_ITEMS") || !strings.Contains(errOut, "INVALID_VALUE") || strings.Contains(errOut, "1103702071839") {
		t.Errorf("tokenize of an invalid value: stderr %q (want the codes, not the value)", errOut)
	}

	// consent grant
	out, _ = run(0, nil, "consent", "grant", "--subject", "cli-u1", "--category", "contact.phone", "--purpose", "marketing",
		"--recipient", "crm:TH", "--notice-version", "2020-09-15")
	consentID := strings.TrimSpace(out)
	if !strings.HasPrefix(consentID, "c_") || strings.ContainsAny(consentID, " \n") {
		t.Fatalf("consent grant printed %q, want the consent id", out)
	}
	out, _ = run(0, nil, "consent", "get", consentID)
	if !strings.Contains(out, `"status": "ConsentGiven"`) {
		t.Errorf("consent get printed %q", out)
	}

	// detokenize: allowed
	out, _ = run(0, nil, "detokenize", "--purpose", "marketing", "--ground", "consent:"+consentID, "--recipient", "crm:TH", token)
	if out != token+"\t+66812345678\n" {
		t.Errorf("detokenize printed %q, want %q", out, token+"\t+66812345678\n")
	}

	// consent withdraw, then detokenize is denied: non-zero exit, DENIED line
	out, _ = run(0, nil, "consent", "withdraw", consentID)
	if strings.TrimSpace(out) != consentID+" ConsentWithdrawn" {
		t.Errorf("consent withdraw printed %q", out)
	}
	out, errOut = run(1, nil, "detokenize", "--purpose", "marketing", "--ground", "consent:"+consentID, "--recipient", "crm:TH", token)
	if !strings.HasPrefix(out, token+"\tDENIED CONSENT_WITHDRAWN: ") || strings.Contains(out, "+66812345678") {
		t.Errorf("detokenize after withdrawal printed %q, want the DENIED line", out)
	}
	if !strings.Contains(errOut, "CONSENT_WITHDRAWN") {
		t.Errorf("detokenize after withdrawal: stderr %q", errOut)
	}
	_, errOut = run(1, nil, "consent", "withdraw", consentID)
	if !strings.Contains(errOut, "ALREADY_WITHDRAWN") {
		t.Errorf("second withdraw: stderr %q", errOut)
	}

	// apikey create / revoke
	out, _ = run(0, nil, "apikey", "create", "--principal", "cli-svc", "--role", "service")
	key := strings.TrimSpace(out)
	if !regexp.MustCompile(`^fvk_[0-9A-Za-z]{32}$`).MatchString(key) {
		t.Fatalf("apikey create printed %q", out)
	}
	if _, err := s.client(key).Tokenize(context.Background(), &vault.TokenizeRequest{Items: []vault.TokenizeItem{
		{Category: "identity.name", Value: "Key Check", Subject: "cli-u1"}}}); err != nil {
		t.Errorf("the new key does not work: %v", err)
	}
	svcEnv := []string{"FIELDVAULT_ADDR=" + s.addr, "FIELDVAULT_TOKEN=" + key}
	if _, errOut, code := runCLI(t, svcEnv, nil, "apikey", "create", "--principal", "x", "--role", "admin"); code != 1 || !strings.Contains(errOut, "FORBIDDEN") {
		t.Errorf("apikey create by a service key: exit %d, stderr %q", code, errOut)
	}
	out, _ = run(0, nil, "apikey", "revoke", "cli-svc")
	if strings.TrimSpace(out) != "revoked 1 key(s)" {
		t.Errorf("apikey revoke printed %q", out)
	}
	if _, errOut, code := runCLI(t, svcEnv, nil, "subject", "get", "cli-u1"); code != 1 || !strings.Contains(errOut, "UNAUTHORIZED") {
		t.Errorf("revoked key: exit %d, stderr %q", code, errOut)
	}

	// policy default | policy check
	pol, _ := run(0, nil, "policy", "default")
	if len(pol) < 100 {
		t.Fatalf("policy default printed %q", pol)
	}
	out, _ = run(0, []byte(pol), "policy", "check", "/dev/stdin")
	if !regexp.MustCompile(`^/dev/stdin: valid \(version \S+, sha256 [0-9a-f]{64}\)\n$`).MatchString(out) {
		t.Errorf("policy check printed %q", out)
	}
	// A policy file is read over the defaults, so a partial one is valid; an
	// unknown field is not.
	_, errOut = run(1, []byte(`{"version":"x","no_such_field":true}`), "policy", "check", "/dev/stdin")
	if !strings.Contains(errOut, "no_such_field") {
		t.Errorf("policy check of an invalid policy: stderr %q", errOut)
	}

	// usage errors exit 2; a missing token exits 1
	if _, errOut, code := runCLI(t, env, nil, "tokenize", "--subject", "cli-u1", "x"); code != 2 || !strings.Contains(errOut, "--category") {
		t.Errorf("tokenize without --category: exit %d, stderr %q", code, errOut)
	}
	if _, _, code := runCLI(t, env, nil, "no-such-command"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if _, errOut, code := runCLI(t, []string{"FIELDVAULT_ADDR=" + s.addr}, nil, "subject", "get", "cli-u1"); code != 1 || !strings.Contains(errOut, "FIELDVAULT_TOKEN") {
		t.Errorf("without FIELDVAULT_TOKEN: exit %d, stderr %q", code, errOut)
	}
}
