package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fieldvault/fieldvault/keys"
	"github.com/fieldvault/fieldvault/keys/kek"
	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/audit"
	"github.com/fieldvault/fieldvault/vault/httpapi"
	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/store"
	"github.com/fieldvault/fieldvault/vault/store/pebble"
)

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("log-level: %v", err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// closers runs cleanup functions in reverse order.
type closers []func() error

func (c *closers) add(f func() error) { *c = append(*c, f) }

func (c closers) close(log *slog.Logger) {
	for i := len(c) - 1; i >= 0; i-- {
		if err := c[i](); err != nil {
			log.Warn("shutdown step failed", "error", err)
		}
	}
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadServeConfig(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	logOut := newLogWriter(stderr)
	defer logOut.Close()
	log, err := newLogger(logOut, cfg.LogLevel)
	if err != nil {
		return err
	}
	var cleanup closers
	defer cleanup.close(log)

	if cfg.Dev {
		if cfg.DevRootToken != "" && len(cfg.DevRootToken) < 8 {
			return usagef("--dev-root-token must be at least 8 characters")
		}
		if !cfg.set["data-dir"] {
			dir, err := os.MkdirTemp("", "fieldvault-dev-")
			if err != nil {
				return err
			}
			cfg.DataDir = dir
			cleanup.add(func() error { return os.RemoveAll(dir) })
		}
	} else if cfg.DevRootToken != "" {
		return usagef("--dev-root-token needs --dev")
	}
	if cfg.TLSCert == "" && !isLoopback(cfg.Listen) && !cfg.InsecureHTTP {
		return usagef("refusing plain HTTP on %s: give --tls-cert and --tls-key, listen on a loopback address, or pass --insecure-http", cfg.Listen)
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	if cfg.TLSClientCA != "" && cfg.TLSCert == "" {
		return usagef("--tls-client-ca needs --tls-cert and --tls-key")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if cfg.Node == "" {
		h, _ := os.Hostname()
		cfg.Node = sanitizeNode(h)
	}

	metrics := newMetrics()
	rawStore, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	cleanup.add(rawStore.Close)
	st := store.Store(instrStore{Store: rawStore, m: metrics.store})

	rawKEK, err := openKEK(ctx, cfg, log)
	if err != nil {
		return err
	}
	k := instrKEK{k: rawKEK, m: metrics.kek}
	cleanup.add(k.Close)

	ring, err := keys.New(keys.Config{KEK: k, Storage: vault.KeyStorage(st)})
	if err != nil {
		return err
	}

	auditLog, auditChains, closeAudit, err := openAudit(ctx, cfg, st, k, log)
	if err != nil {
		return err
	}
	cleanup.add(closeAudit)

	pol := policy.Default()
	if cfg.Policy != "" {
		data, err := os.ReadFile(cfg.Policy)
		if err != nil {
			return fmt.Errorf("policy: %w", err)
		}
		if pol, err = policy.Load(data); err != nil {
			return fmt.Errorf("policy %s: %w", cfg.Policy, err)
		}
	}
	roles := vault.DefaultRoles()
	for name, r := range cfg.Roles {
		roles[name] = r
	}
	v, err := vault.New(vault.Config{
		Store: st, Keys: ring, Policy: pol, Audit: instrAudit{Log: auditLog, m: metrics.audit}, AuditChains: auditChains, Roles: roles,
		Limits: vault.Limits{MaxBatch: cfg.MaxBatch}, Node: cfg.Node, Logger: log,
		Observer: metrics, KEK: k, KEKName: kekName(cfg),
		AfterKEKRotate: func(ctx context.Context) error { return rewrapAuditKeys(ctx, st, k) },
	})
	if err != nil {
		return err
	}
	key, created, err := v.EnsureAdminKey(ctx, cfg.DevRootToken)
	if err != nil {
		return fmt.Errorf("bootstrap admin key: %w", err)
	}

	extra := map[string]http.Handler{}
	if cfg.Metrics {
		extra["GET /metrics"] = metrics.Handler()
	}
	handler := httpapi.New(httpapi.Config{Vault: v, Logger: log, MaxBodyBytes: cfg.MaxBodyBytes,
		Metrics: metrics, Extra: extra})

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.TLSCert != "" {
		tc, err := serverTLS(cfg)
		if err != nil {
			return err
		}
		srv.TLSConfig = tc
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	scheme := "http"
	if srv.TLSConfig != nil {
		scheme = "https"
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	addr := fmt.Sprintf("%s://%s", scheme, ln.Addr())
	log.Info("fieldvault serving", "addr", addr, "data_dir", cfg.DataDir, "store", storeKind(cfg.Store),
		"kek", cfg.KEK, "audit", cfg.Audit, "node", cfg.Node, "policy_version", pol.Version, "dev", cfg.Dev)
	if created {
		fmt.Fprintf(stdout, "fieldvault listening on %s\n", addr)
		fmt.Fprintf(stdout, "Admin API key (shown once; keep it safe):\n\n    %s\n\n", key)
		fmt.Fprintf(stdout, "    export FIELDVAULT_ADDR=%s\n    export FIELDVAULT_TOKEN=%s\n\n", addr, key)
	} else {
		fmt.Fprintf(stdout, "fieldvault listening on %s\n", addr)
	}

	if cfg.DebugListen != "" {
		if !isLoopback(cfg.DebugListen) {
			return usagef("--debug-listen must be a loopback address")
		}
		dbg := &http.Server{Addr: cfg.DebugListen, Handler: pprofMux(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = dbg.ListenAndServe() }()
		cleanup.add(dbg.Close)
		log.Info("pprof listening", "addr", cfg.DebugListen)
	}

	refresh, _ := time.ParseDuration(cfg.KeyRefresh)
	go refreshKeys(ctx, ring, refresh, log)
	go runRetention(ctx, v, time.Minute, log)
	go runKeyMaintenance(ctx, v, time.Minute, log)
	defer v.StopJobs()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

func sanitizeNode(h string) string {
	var b strings.Builder
	for _, c := range h {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteRune(c)
		}
		if b.Len() == 64 {
			break
		}
	}
	if b.Len() == 0 {
		return "node-1"
	}
	return b.String()
}

func refreshKeys(ctx context.Context, ring *keys.Keyring, every time.Duration, log *slog.Logger) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := ring.Refresh(ctx); err != nil {
				log.Warn("key refresh failed", "error", err)
			}
		}
	}
}

// runKeyMaintenance resumes rewrap jobs left running by a crash or by a dead
// replica, and applies automatic rotation periods.
func runKeyMaintenance(ctx context.Context, v *vault.Vault, every time.Duration, log *slog.Logger) {
	for {
		if n, err := v.ResumeJobs(ctx); err != nil {
			log.Warn("resuming jobs failed", "error", err)
		} else if n > 0 {
			log.Info("resumed jobs", "count", n)
		}
		if rotated, err := v.RotateDueKeys(ctx); err != nil {
			log.Warn("automatic rotation failed", "error", err)
		} else if len(rotated) > 0 {
			log.Info("automatic rotation", "categories", rotated)
		}
		if !sleepCtx(ctx, every) {
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// runRetention shreds categories whose retention timers ran out.
func runRetention(ctx context.Context, v *vault.Vault, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := v.RunRetention(ctx)
			if err != nil {
				log.Warn("retention sweep failed", "error", err)
			} else if n > 0 {
				log.Info("retention sweep shredded categories", "count", n)
			}
		}
	}
}

func storeKind(s string) string {
	if i := strings.Index(s, "://"); i > 0 {
		return s[:i]
	}
	return s
}

func openStore(ctx context.Context, cfg *serveConfig) (store.Store, error) {
	switch {
	case cfg.Store == "pebble":
		s, err := pebble.Open(filepath.Join(cfg.DataDir, "store"), pebble.Options{CacheSize: int64(cfg.PebbleCacheMB) << 20})
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		return s, nil
	case strings.HasPrefix(cfg.Store, "redis"):
		return openRedisStore(ctx, cfg.Store)
	}
	return nil, usagef("unknown --store %q (pebble | redis://... | redis-cluster://... | redis-sentinel://...)", cfg.Store)
}

func kekName(cfg *serveConfig) string {
	if cfg.KEK == "transit" {
		return "Vault Transit"
	}
	return "the local key file"
}

func openKEK(ctx context.Context, cfg *serveConfig, log *slog.Logger) (kek.KEK, error) {
	switch cfg.KEK {
	case "local":
		path := filepath.Join(cfg.DataDir, "kek.key")
		k, created, err := kek.LoadOrCreateLocal(path)
		if err != nil {
			return nil, err
		}
		if created {
			log.Info("created a local KEK", "path", path)
		}
		return k, nil
	case "transit":
		t, err := kek.NewTransit(ctx, kek.TransitConfig{
			Address: os.Getenv("VAULT_ADDR"),
			Mount:   cfg.TransitMount,
			Key:     cfg.TransitKey,
			Logger:  log,
		})
		if err != nil {
			return nil, err
		}
		return t, nil
	}
	return nil, usagef("unknown --kek %q (local | transit)", cfg.KEK)
}

// auditKeys are the audit log's HMAC key and checkpoint signing key, kept in
// the store wrapped by the KEK so that every replica shares them.
type auditKeys struct {
	RefKey     []byte `json:"ref_key"`
	SigningKey []byte `json:"signing_key"`
}

const auditKeysAAD = "fieldvault/audit-keys/v1"

func loadAuditKeys(ctx context.Context, st store.Store, k kek.KEK) (*auditKeys, error) {
	rec, err := st.GetRecord(ctx, "meta", "audit-keys")
	if err == nil {
		raw, err := k.Unwrap(ctx, rec.Value, []byte(auditKeysAAD))
		if err != nil {
			return nil, fmt.Errorf("audit keys: %w", err)
		}
		defer clear(raw)
		var ak auditKeys
		if err := json.Unmarshal(raw, &ak); err != nil {
			return nil, fmt.Errorf("audit keys: corrupt record")
		}
		return &ak, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("audit keys: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	ak := &auditKeys{RefKey: make([]byte, audit.RefKeySize), SigningKey: priv}
	if _, err := rand.Read(ak.RefKey); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(ak)
	if err != nil {
		return nil, err
	}
	wrapped, err := k.Wrap(ctx, raw, []byte(auditKeysAAD))
	clear(raw)
	if err != nil {
		return nil, fmt.Errorf("audit keys: %w", err)
	}
	if _, err := st.PutRecord(ctx, store.Record{Kind: "meta", ID: "audit-keys", Value: wrapped}, 0); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return loadAuditKeys(ctx, st, k) // another replica created them first
		}
		return nil, fmt.Errorf("audit keys: %w", err)
	}
	return ak, nil
}

// rewrapAuditKeys re-wraps the audit keys with the KEK's new primary version.
func rewrapAuditKeys(ctx context.Context, st store.Store, k kek.KEK) error {
	rec, err := st.GetRecord(ctx, "meta", "audit-keys")
	if err != nil {
		return err
	}
	raw, err := k.Unwrap(ctx, rec.Value, []byte(auditKeysAAD))
	if err != nil {
		return err
	}
	wrapped, err := k.Wrap(ctx, raw, []byte(auditKeysAAD))
	clear(raw)
	if err != nil {
		return err
	}
	_, err = st.PutRecord(ctx, store.Record{Kind: "meta", ID: "audit-keys", Value: wrapped}, rec.Rev)
	return err
}

// openAudit opens this replica's audit log, and says which chains the
// access report reads: this one for a file log, every registered replica's
// for a Redis stream.
func openAudit(ctx context.Context, cfg *serveConfig, st store.Store, k kek.KEK, log *slog.Logger) (*audit.Log, vault.AuditChains, func() error, error) {
	ak, err := loadAuditKeys(ctx, st, k)
	if err != nil {
		return nil, nil, nil, err
	}
	var sink audit.Sink
	var closeSink func() error
	var chains vault.AuditChains
	switch cfg.Audit {
	case "file":
		fs, err := audit.OpenFileSink(audit.FileConfig{Dir: filepath.Join(cfg.DataDir, "audit")})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("audit: %w", err)
		}
		sink, closeSink = fs, fs.Close
		chains = func(context.Context) (map[string]audit.Source, error) {
			return map[string]audit.Source{cfg.Node: fs}, nil
		}
	case "redis-stream":
		rs, client, prefix, err := openRedisAuditSink(ctx, cfg)
		if err != nil {
			return nil, nil, nil, err
		}
		if err := rs.Register(ctx); err != nil {
			_ = client.Close()
			return nil, nil, nil, fmt.Errorf("audit: %w", err)
		}
		sink, closeSink, chains = rs, client.Close, redisAuditChains(client, prefix)
	default:
		return nil, nil, nil, usagef("unknown --audit %q (file | redis-stream)", cfg.Audit)
	}
	l, err := audit.New(audit.Config{Node: cfg.Node, RefKey: ak.RefKey, SigningKey: ed25519.PrivateKey(ak.SigningKey),
		Sink: sink, Logger: log})
	if err == nil {
		if werr := writeAuditPublicKey(filepath.Join(cfg.DataDir, "audit"), l.PublicKey()); werr != nil {
			log.Warn("cannot write the audit public key", "error", werr)
		}
		log.Info("audit log", "node", cfg.Node, "public_key", hex.EncodeToString(l.PublicKey()))
	}
	if err != nil {
		_ = closeSink()
		return nil, nil, nil, fmt.Errorf("audit: %w", err)
	}
	return l, chains, func() error { return errors.Join(l.Close(), closeSink()) }, nil
}

func serverTLS(cfg *serveConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if cfg.TLSClientCA != "" {
		pem, err := os.ReadFile(cfg.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("tls client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls client CA: no certificate in %s", cfg.TLSClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
