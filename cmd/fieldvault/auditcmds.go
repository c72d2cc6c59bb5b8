package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fieldvault/fieldvault/vault/audit"
)

// auditPublicKeyFile is where the server writes the audit checkpoint public
// key, hex-encoded, for `fieldvault audit verify`. Pin it elsewhere too:
// whoever can rewrite the log directory could also replace this file.
const auditPublicKeyFile = "public.key"

func writeAuditPublicKey(dir string, pub ed25519.PublicKey) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, auditPublicKeyFile), []byte(hex.EncodeToString(pub)+"\n"), 0o644)
}

func parsePublicKey(s string) (ed25519.PublicKey, error) {
	if strings.HasPrefix(s, "@") {
		b, err := os.ReadFile(s[1:])
		if err != nil {
			return nil, err
		}
		s = string(b)
	}
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("the public key must be 64 hex characters (an Ed25519 public key)")
	}
	return ed25519.PublicKey(b), nil
}

func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return usagef("audit needs verify")
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", defaultDataDir(), "the server's data directory (file sink in DATA-DIR/audit)")
	dir := fs.String("dir", "", "the audit directory itself (default DATA-DIR/audit)")
	redisURL := fs.String("redis", "", "verify the Redis stream of --node on this store URL instead of a file")
	node := fs.String("node", "", "with --redis: the replica whose chain to verify")
	pubFlag := fs.String("public-key", "", "the checkpoint public key (hex, or @file); default DIR/public.key, which is not a pinned key")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if *dir == "" {
		*dir = filepath.Join(*dataDir, "audit")
	}
	pubSrc := *pubFlag
	if pubSrc == "" {
		pubSrc = "@" + filepath.Join(*dir, auditPublicKeyFile)
		fmt.Fprintln(stderr, "fieldvault: warning: using the public key stored beside the log; pin it with --public-key for a verification an intruder cannot fool")
	}
	pub, err := parsePublicKey(pubSrc)
	if err != nil {
		return fmt.Errorf("public key: %w", err)
	}
	var src audit.Source
	if *redisURL != "" {
		if *node == "" {
			return usagef("--redis needs --node")
		}
		s, closeFn, err := openRedisAuditSink(ctx, &serveConfig{Store: *redisURL, Node: *node, Audit: "redis-stream"})
		if err != nil {
			return err
		}
		defer closeFn()
		src = s
	} else {
		fsink, err := audit.OpenFileSink(audit.FileConfig{Dir: *dir, ReadOnly: true})
		if err != nil {
			return err
		}
		defer fsink.Close()
		src = fsink
	}
	rep, err := audit.Verify(ctx, src, pub)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "chain %q: %d records, %d checkpoints, last seq %d, anchored to %d, checkpoint store at %d\n",
		rep.Node, rep.Records, rep.Checkpoints, rep.Last, rep.Anchored, rep.Stored)
	if rep.OK() {
		fmt.Fprintln(stdout, "OK: no edit, deletion, reordering, insertion or truncation found")
		return nil
	}
	for _, f := range rep.Findings {
		fmt.Fprintln(stdout, "TAMPERED:", f.String())
	}
	if rep.Dropped > 0 {
		fmt.Fprintf(stdout, "... and %d more findings\n", rep.Dropped)
	}
	return fmt.Errorf("the audit log does not verify: %d finding(s)", len(rep.Findings)+rep.Dropped)
}
