package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fieldvault/fieldvault/vault"
)

// serveConfig is everything `fieldvault serve` can be told. Each field has a
// flag, an environment variable (FIELDVAULT_ + upper-snake name) and a key in
// the config file (the flag name). Flags win over the environment, the
// environment over the file.
type serveConfig struct {
	Listen        string `json:"listen"`
	DataDir       string `json:"data-dir"`
	Store         string `json:"store"`
	KEK           string `json:"kek"`
	TransitMount  string `json:"transit-mount"`
	TransitKey    string `json:"transit-key"`
	Audit         string `json:"audit"`
	Policy        string `json:"policy"`
	TLSCert       string `json:"tls-cert"`
	TLSKey        string `json:"tls-key"`
	TLSClientCA   string `json:"tls-client-ca"`
	InsecureHTTP  bool   `json:"insecure-http"`
	Node          string `json:"node"`
	LogLevel      string `json:"log-level"`
	MaxBatch      int    `json:"max-batch"`
	MaxBodyBytes  int64  `json:"max-body-bytes"`
	KeyRefresh    string `json:"key-refresh"`
	Dev           bool   `json:"dev"`
	DevRootToken  string `json:"dev-root-token"`
	Metrics       bool   `json:"metrics"`
	PebbleCacheMB int    `json:"pebble-cache-mb"`
	DebugListen   string `json:"debug-listen"`

	// Roles adds or replaces roles (config file only).
	Roles vault.Roles `json:"roles,omitempty"`

	// set records which settings were given by a flag, the environment or
	// the config file (rather than left at their defaults).
	set map[string]bool
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "fieldvault")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "fieldvault")
	}
	return "fieldvault-data"
}

func defaultServeConfig() serveConfig {
	return serveConfig{
		Listen:        "127.0.0.1:8280",
		DataDir:       defaultDataDir(),
		Store:         "pebble",
		KEK:           "local",
		TransitMount:  "transit",
		TransitKey:    "fieldvault",
		Audit:         "file",
		LogLevel:      "info",
		MaxBatch:      10000,
		MaxBodyBytes:  64 << 20,
		KeyRefresh:    "10s",
		Metrics:       true,
		PebbleCacheMB: 256,
	}
}

// serveFlags registers the flags on fs, bound to c.
func serveFlags(fs *flag.FlagSet, c *serveConfig) *string {
	fs.StringVar(&c.Listen, "listen", c.Listen, "address to listen on (FIELDVAULT_LISTEN)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "data directory: store, local KEK, audit log (FIELDVAULT_DATA_DIR)")
	fs.StringVar(&c.Store, "store", c.Store, "pebble | redis://host:port/db | redis-cluster://h1:p1,h2:p2 | redis-sentinel://master@h1:p1,h2:p2 (FIELDVAULT_STORE)")
	fs.StringVar(&c.KEK, "kek", c.KEK, "local | transit (FIELDVAULT_KEK; transit uses VAULT_ADDR and VAULT_TOKEN)")
	fs.StringVar(&c.TransitMount, "transit-mount", c.TransitMount, "Vault Transit mount path (FIELDVAULT_TRANSIT_MOUNT)")
	fs.StringVar(&c.TransitKey, "transit-key", c.TransitKey, "Vault Transit key name (FIELDVAULT_TRANSIT_KEY)")
	fs.StringVar(&c.Audit, "audit", c.Audit, "file | redis-stream (FIELDVAULT_AUDIT)")
	fs.StringVar(&c.Policy, "policy", c.Policy, "policy file; built-in defaults otherwise (FIELDVAULT_POLICY)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "TLS certificate file (FIELDVAULT_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "TLS private key file (FIELDVAULT_TLS_KEY)")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", c.TLSClientCA, "CA file: require and verify client certificates (mTLS) (FIELDVAULT_TLS_CLIENT_CA)")
	fs.BoolVar(&c.InsecureHTTP, "insecure-http", c.InsecureHTTP, "allow plain HTTP on a non-loopback address (FIELDVAULT_INSECURE_HTTP)")
	fs.StringVar(&c.Node, "node", c.Node, "name of this replica in audit records; default the host name (FIELDVAULT_NODE)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug | info | warn | error (FIELDVAULT_LOG_LEVEL)")
	fs.IntVar(&c.MaxBatch, "max-batch", c.MaxBatch, "largest batch accepted (FIELDVAULT_MAX_BATCH)")
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", c.MaxBodyBytes, "largest request body accepted (FIELDVAULT_MAX_BODY_BYTES)")
	fs.StringVar(&c.KeyRefresh, "key-refresh", c.KeyRefresh, "how often to pick up key rotations made by other replicas (FIELDVAULT_KEY_REFRESH)")
	fs.BoolVar(&c.Dev, "dev", c.Dev, "development mode: fresh temporary data directory unless --data-dir is given (FIELDVAULT_DEV)")
	fs.StringVar(&c.DevRootToken, "dev-root-token", c.DevRootToken, "with --dev: use this admin API key (FIELDVAULT_DEV_ROOT_TOKEN)")
	fs.BoolVar(&c.Metrics, "metrics", c.Metrics, "serve Prometheus metrics at /metrics (FIELDVAULT_METRICS)")
	fs.IntVar(&c.PebbleCacheMB, "pebble-cache-mb", c.PebbleCacheMB, "Pebble block cache size in MiB (FIELDVAULT_PEBBLE_CACHE_MB)")
	fs.StringVar(&c.DebugListen, "debug-listen", c.DebugListen, "serve Go pprof profiles on this loopback address (off by default) (FIELDVAULT_DEBUG_LISTEN)")
	return fs.String("config", os.Getenv("FIELDVAULT_CONFIG"), "config file (JSON, keys are flag names) (FIELDVAULT_CONFIG)")
}

// envName maps a flag name to its environment variable.
func envName(flagName string) string {
	return "FIELDVAULT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// loadServeConfig applies, in order of increasing precedence: defaults, the
// config file, the environment, and the flags set on the command line.
func loadServeConfig(args []string) (*serveConfig, error) {
	c := defaultServeConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	configPath := serveFlags(fs, &c)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	// Rebuild from the bottom: defaults, file, env, then re-apply flags.
	base := defaultServeConfig()
	if *configPath != "" {
		data, err := os.ReadFile(*configPath)
		if err != nil {
			return nil, fmt.Errorf("config file: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&base); err != nil {
			return nil, fmt.Errorf("config file %s: %w", *configPath, err)
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(data, &keys); err == nil {
			for k := range keys {
				set[k] = true
			}
		}
	}
	envFS := flag.NewFlagSet("env", flag.ContinueOnError)
	serveFlags(envFS, &base)
	var envErr error
	envFS.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			set[f.Name] = true
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s: %w", envName(f.Name), err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	fs.Visit(func(f *flag.Flag) {
		if g := envFS.Lookup(f.Name); g != nil {
			_ = g.Value.Set(f.Value.String())
		}
	})
	if _, err := time.ParseDuration(base.KeyRefresh); err != nil {
		return nil, fmt.Errorf("key-refresh: %w", err)
	}
	base.set = set
	return &base, nil
}
