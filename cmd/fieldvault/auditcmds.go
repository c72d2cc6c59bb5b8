package main

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
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
	allNodes := fs.Bool("all-nodes", false, "with --redis: verify the chain of every replica registered in that Redis")
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
	if *redisURL == "" {
		if *node != "" || *allNodes {
			return usagef("--node and --all-nodes go with --redis")
		}
		fsink, err := audit.OpenFileSink(audit.FileConfig{Dir: *dir, ReadOnly: true})
		if err != nil {
			return err
		}
		defer fsink.Close()
		return verifyChain(ctx, fsink, pub, stdout)
	}
	if (*node == "") == !*allNodes {
		return usagef("--redis needs --node NODE or --all-nodes")
	}
	s, client, prefix, err := openRedisAuditSink(ctx, &serveConfig{Store: *redisURL, Node: cmp.Or(*node, "verify"), Audit: "redis-stream"})
	if err != nil {
		return err
	}
	defer client.Close()
	if !*allNodes {
		return verifyChain(ctx, s, pub, stdout)
	}
	chains, err := redisAuditChains(client, prefix)(ctx)
	if err != nil {
		return err
	}
	if len(chains) == 0 {
		return fmt.Errorf("no replica has registered an audit chain in %s", audit.NodesKey(prefix))
	}
	var failed []string
	for _, n := range slices.Sorted(maps.Keys(chains)) {
		if err := verifyChain(ctx, chains[n], pub, stdout); err != nil {
			fmt.Fprintf(stdout, "chain %q: %v\n", n, err)
			failed = append(failed, n)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d chains do not verify: %s", len(failed), len(chains), strings.Join(failed, ", "))
	}
	fmt.Fprintf(stdout, "all %d chains verify\n", len(chains))
	return nil
}

// verifyChain verifies one chain and prints what it found.
func verifyChain(ctx context.Context, src audit.Source, pub ed25519.PublicKey, stdout io.Writer) error {
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
