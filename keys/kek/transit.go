package kek

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// Defaults for TransitConfig.
const (
	DefaultTransitMount   = "transit"
	DefaultTransitKey     = "fieldvault"
	DefaultTransitTimeout = 30 * time.Second
	// DefaultTransitRetries is how many times a call is retried on a
	// connection error, 429 or 5xx, as Vault's own client does.
	DefaultTransitRetries = 2
)

// TransitConfig configures a Transit KEK. Apart from the address and a token
// source, every field has a usable zero value.
type TransitConfig struct {
	// Address is the Vault or OpenBao server, for example
	// "https://vault.internal:8200". Default: the VAULT_ADDR environment
	// variable. Required one way or the other; it must not hold credentials.
	Address string

	// Token authenticates to Vault. Default: the contents of TokenFile if
	// that is set, else the VAULT_TOKEN environment variable. Setting both
	// Token and TokenFile is an error. If the token is renewable and has a
	// TTL, it is renewed in the background until Close.
	Token string
	// TokenFile is a file holding the token, such as a Vault Agent sink. It
	// is read at start and read again whenever Vault refuses the token, so a
	// token the agent replaced is picked up.
	TokenFile string
	// Namespace is the Vault Enterprise or OpenBao namespace. Default: none
	// (the root namespace); VAULT_NAMESPACE is not read.
	Namespace string

	// Mount is the path of the Transit secrets engine. Default "transit".
	Mount string
	// Key is the Transit key. Default "fieldvault". It must already exist:
	// deploy/vault/setup.sh creates it.
	Key string

	// CACert is a PEM file of CA certificates that verify Vault's TLS
	// certificate. Default: the system roots. VAULT_CACERT is not read.
	CACert string
	// ClientCert and ClientKey are PEM files for TLS client
	// authentication: both or neither.
	ClientCert string
	ClientKey  string
	// ServerName overrides the host name checked in Vault's certificate and
	// sent as SNI. Default: the host of Address.
	ServerName string
	// Insecure disables TLS certificate verification. For development only;
	// NewTransit logs a warning. VAULT_SKIP_VERIFY is not read.
	Insecure bool

	// Timeout bounds each call to Vault, retries included. Default 30s.
	Timeout time.Duration
	// MaxRetries is how many times a call is retried on a connection error,
	// 429 or 5xx, 1 to 1.5 s apart. Default 2; negative disables retries.
	MaxRetries int
	// Logger receives token renewal events and warnings; it never receives
	// the token. Default: discard.
	Logger *slog.Logger
}

var (
	mountRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`)
	// keyNameRe is Vault's GenericNameRegex for Transit key names.
	keyNameRe = regexp.MustCompile(`^\w(([\w.@-]+)?\w)?$`)
)

// resolve applies defaults and environment fallbacks and validates c.
func (c TransitConfig) resolve() (TransitConfig, error) {
	if c.Address == "" {
		c.Address = os.Getenv("VAULT_ADDR")
	}
	if c.Address == "" {
		return c, errors.New("kek/transit: no Vault address: set TransitConfig.Address or VAULT_ADDR")
	}
	u, err := url.Parse(c.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// url.Parse errors quote the input, which may be mistyped
		// credentials; say only what is wrong.
		return c, errors.New("kek/transit: Vault address must be an http:// or https:// URL with a host")
	}
	if u.User != nil {
		return c, errors.New("kek/transit: Vault address must not contain credentials; use Token or TokenFile")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return c, errors.New("kek/transit: Vault address must not have a query or fragment")
	}
	c.Address = strings.TrimRight(u.String(), "/")
	if u.Scheme == "http" && (c.CACert != "" || c.ClientCert != "" || c.ClientKey != "" || c.ServerName != "" || c.Insecure) {
		return c, fmt.Errorf("kek/transit: TLS options are set but the Vault address %s is plain http", c.Address)
	}
	if (c.ClientCert == "") != (c.ClientKey == "") {
		return c, errors.New("kek/transit: ClientCert and ClientKey must be set together")
	}
	if c.Token != "" && c.TokenFile != "" {
		return c, errors.New("kek/transit: set Token or TokenFile, not both")
	}

	c.Mount = strings.Trim(c.Mount, "/")
	if c.Mount == "" {
		c.Mount = DefaultTransitMount
	}
	if !mountRe.MatchString(c.Mount) || strings.Contains("/"+c.Mount+"/", "/../") || strings.Contains("/"+c.Mount+"/", "/./") {
		return c, fmt.Errorf("kek/transit: invalid Transit mount %q", c.Mount)
	}
	if c.Key == "" {
		c.Key = DefaultTransitKey
	}
	if !keyNameRe.MatchString(c.Key) {
		return c, fmt.Errorf("kek/transit: invalid Transit key name %q", c.Key)
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTransitTimeout
	}
	switch {
	case c.MaxRetries == 0:
		c.MaxRetries = DefaultTransitRetries
	case c.MaxRetries < 0:
		c.MaxRetries = 0
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// resolveToken returns the token from the config, the token file or
// VAULT_TOKEN. Errors never quote the token.
func (c TransitConfig) resolveToken() (string, error) {
	switch {
	case c.Token != "":
		return checkToken(c.Token, "TransitConfig.Token")
	case c.TokenFile != "":
		return readTokenFile(c.TokenFile)
	case os.Getenv("VAULT_TOKEN") != "":
		return checkToken(os.Getenv("VAULT_TOKEN"), "VAULT_TOKEN")
	}
	return "", errors.New("kek/transit: no Vault token: set TransitConfig.Token, TransitConfig.TokenFile or VAULT_TOKEN")
}

func readTokenFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("kek/transit: reading token file %s: %w", path, err)
	}
	defer clear(data)
	return checkToken(string(bytes.TrimSpace(data)), "token file "+path)
}

func checkToken(tok, source string) (string, error) {
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", fmt.Errorf("kek/transit: %s is empty", source)
	}
	for _, r := range tok {
		if r <= ' ' || r == 0x7f {
			return "", fmt.Errorf("kek/transit: %s holds whitespace or control characters", source)
		}
	}
	return tok, nil
}

// Transit is a KEK held by HashiCorp Vault's (or OpenBao's) Transit secrets
// engine. The key never leaves Vault: Wrap and Unwrap are Transit encrypt
// and decrypt calls, Rotate adds a key version in Vault and Rewrap moves a
// blob to the latest version without the plaintext leaving Vault.
//
// Blobs are Transit ciphertexts ("vault:v<N>:<base64>") of
// SHA-256(aad) || plaintext: Transit ignores the context parameter for
// non-derived keys, so Transit binds aad itself and checks the digest in
// constant time on unwrap.
//
// Errors wrap the package's sentinels and name Vault and its address, never
// the token or the plaintext. Safe for concurrent use. Call Close to stop
// token renewal.
type Transit struct {
	client     *vaultapi.Client
	httpClient *http.Client
	addr       string
	mount      string
	key        string
	timeout    time.Duration
	tokenFile  string
	log        *slog.Logger

	tokenMu sync.Mutex // serialises token file reloads

	closed      atomic.Bool
	closeOnce   sync.Once
	stopRenewal context.CancelFunc
	renewDone   chan struct{}
}

var (
	_ KEK       = (*Transit)(nil)
	_ Rotator   = (*Transit)(nil)
	_ Rewrapper = (*Transit)(nil)
	_ Versioner = (*Transit)(nil)
)

// Operation names, as they appear in errors.
const (
	opLookupSelf = "token lookup"
	opRenewSelf  = "token renewal"
	opReadKey    = "read key"
	opEncrypt    = "encrypt"
	opDecrypt    = "decrypt"
	opRewrap     = "rewrap"
	opRotate     = "rotate"
)

// NewTransit connects to Vault and checks, before returning, that the token
// is accepted (auth/token/lookup-self) and that the Transit key exists and
// can encrypt and decrypt (GET <mount>/keys/<key>). A missing key fails with
// ErrKeyNotFound and a hint to run deploy/vault/setup.sh: Transit's encrypt
// would silently create it, so NewTransit never relies on that. ctx bounds
// only these start-up calls.
func NewTransit(ctx context.Context, cfg TransitConfig) (*Transit, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	token, err := cfg.resolveToken()
	if err != nil {
		return nil, err
	}
	client, hc, err := newVaultClient(cfg)
	if err != nil {
		return nil, err
	}
	client.SetToken(token)
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	} else {
		client.ClearNamespace()
	}
	t := &Transit{
		client:     client,
		httpClient: hc,
		addr:       cfg.Address,
		mount:      cfg.Mount,
		key:        cfg.Key,
		timeout:    cfg.Timeout,
		tokenFile:  cfg.TokenFile,
		log:        cfg.Logger,
	}
	if cfg.Insecure {
		t.log.Warn("kek/transit: TLS certificate verification is disabled (Insecure); use only in development", "vault", t.addr)
	}

	var self response[tokenLookup]
	if err := t.call(ctx, opLookupSelf, http.MethodGet, "auth/token/lookup-self", nil, &self); err != nil {
		hc.CloseIdleConnections()
		return nil, err
	}
	if self.Data == nil {
		hc.CloseIdleConnections()
		return nil, t.malformed(opLookupSelf, "no data")
	}

	var key response[transitKey]
	if err := t.call(ctx, opReadKey, http.MethodGet, t.mount+"/keys/"+t.key, nil, &key); err != nil {
		hc.CloseIdleConnections()
		return nil, err
	}
	if err := t.checkKey(key.Data); err != nil {
		hc.CloseIdleConnections()
		return nil, err
	}

	t.renewDone = make(chan struct{})
	if self.Data.Renewable && self.Data.TTL > 0 {
		rctx, cancel := context.WithCancel(context.Background())
		t.stopRenewal = cancel
		go t.renewLoop(rctx, time.Duration(self.Data.TTL)*time.Second)
	} else {
		close(t.renewDone)
	}
	return t, nil
}

func newVaultClient(cfg TransitConfig) (*vaultapi.Client, *http.Client, error) {
	tr, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, nil, errors.New("kek/transit: http.DefaultTransport is not an *http.Transport")
	}
	tr = tr.Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	tr.TLSHandshakeTimeout = 10 * time.Second
	hc := &http.Client{
		Transport: tr,
		// Vault's client follows a redirect itself, once, refusing a
		// downgrade to http.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	conf := &vaultapi.Config{
		Address:    cfg.Address,
		HttpClient: hc,
		// No client-wide timeout: Logical().WriteRawWithContext cancels
		// that timeout's context when it returns, before the caller reads
		// the body, which breaks reading any response larger than what
		// the transport has buffered. roundTrip sets cfg.Timeout on the
		// context instead, and reads the body before cancelling it.
		Timeout:    0,
		MaxRetries: cfg.MaxRetries,
	}
	if strings.HasPrefix(cfg.Address, "https://") {
		err := conf.ConfigureTLS(&vaultapi.TLSConfig{
			CACert:        cfg.CACert,
			ClientCert:    cfg.ClientCert,
			ClientKey:     cfg.ClientKey,
			TLSServerName: cfg.ServerName,
			Insecure:      cfg.Insecure,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("kek/transit: TLS configuration for Vault at %s: %w", cfg.Address, err)
		}
	}
	client, err := vaultapi.NewClient(conf)
	if err != nil {
		return nil, nil, fmt.Errorf("kek/transit: Vault client for %s: %w", cfg.Address, err)
	}
	return client, hc, nil
}

// checkKey refuses a key that cannot do what the KEK needs.
func (t *Transit) checkKey(k *transitKey) error {
	if k == nil {
		return t.malformed(opReadKey, "no data")
	}
	switch {
	case k.Derived:
		return fmt.Errorf("kek/transit: vault at %s: key %s is derived (needs a context per call); create a non-derived aes256-gcm96 key with deploy/vault/setup.sh", t.addr, t.keyName())
	case !k.SupportsEncryption || !k.SupportsDecryption:
		return fmt.Errorf("kek/transit: vault at %s: key %s of type %q cannot encrypt and decrypt; use an aes256-gcm96 key", t.addr, t.keyName(), k.Type)
	case k.Type != "aes256-gcm96" && k.Type != "aes128-gcm96" && k.Type != "chacha20-poly1305":
		// RSA keys can encrypt, but not the sizes keysets need.
		return fmt.Errorf("kek/transit: vault at %s: key %s has type %q; use an aes256-gcm96 key", t.addr, t.keyName(), k.Type)
	}
	return nil
}

// Wrap encrypts SHA-256(aad) || plaintext with the key's latest version.
func (t *Transit) Wrap(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	digest := sha256.Sum256(aad)
	payload := make([]byte, 0, len(digest)+len(plaintext))
	payload = append(append(payload, digest[:]...), plaintext...)
	body := jsonBase64Body("plaintext", payload)
	clear(payload)
	defer clear(body)

	var resp response[transitCiphertext]
	if err := t.call(ctx, opEncrypt, http.MethodPut, t.mount+"/encrypt/"+t.key, body, &resp); err != nil {
		return nil, err
	}
	return t.checkCiphertext(opEncrypt, resp.Data)
}

// Unwrap decrypts a blob made by Wrap (or Rewrap) and checks that it was
// bound to aad. Malformed, tampered, too-old (below the key's
// min_decryption_version) and wrong-aad blobs fail with
// ErrInvalidCiphertext.
func (t *Transit) Unwrap(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	if _, err := parseTransitCiphertext(wrapped); err != nil {
		return nil, err
	}
	var resp response[transitPlaintext]
	if err := t.call(ctx, opDecrypt, http.MethodPut, t.mount+"/decrypt/"+t.key, jsonStringBody("ciphertext", wrapped), &resp); err != nil {
		return nil, err
	}
	if resp.Data == nil {
		return nil, t.malformed(opDecrypt, "no data")
	}
	pt := resp.Data.Plaintext
	defer clear(pt)
	digest := sha256.Sum256(aad)
	if len(pt) < len(digest) || subtle.ConstantTimeCompare(pt[:len(digest)], digest[:]) != 1 {
		return nil, fmt.Errorf("kek/transit: vault at %s: %s with key %s: associated data does not match: %w", t.addr, opDecrypt, t.keyName(), ErrInvalidCiphertext)
	}
	return bytes.Clone(pt[len(digest):]), nil
}

// Rewrap re-encrypts a blob under the key's latest version inside Vault;
// the plaintext never leaves Vault and the aad binding is kept.
func (t *Transit) Rewrap(ctx context.Context, wrapped []byte) ([]byte, error) {
	if _, err := parseTransitCiphertext(wrapped); err != nil {
		return nil, err
	}
	var resp response[transitCiphertext]
	if err := t.call(ctx, opRewrap, http.MethodPut, t.mount+"/rewrap/"+t.key, jsonStringBody("ciphertext", wrapped), &resp); err != nil {
		return nil, err
	}
	return t.checkCiphertext(opRewrap, resp.Data)
}

// Rotate adds a key version in Vault and makes it the latest: new wraps use
// it, old blobs still unwrap (until an operator raises the key's
// min_decryption_version). The token needs update on
// <mount>/keys/<key>/rotate (deploy/vault/fieldvault-security-policy.hcl).
func (t *Transit) Rotate(ctx context.Context) error {
	return t.call(ctx, opRotate, http.MethodPut, t.mount+"/keys/"+t.key+"/rotate", nil, nil)
}

// WrappedVersion returns the Transit key version named in a blob, without
// contacting Vault or authenticating the blob.
func (t *Transit) WrappedVersion(wrapped []byte) (uint32, error) {
	return parseTransitCiphertext(wrapped)
}

// Close stops token renewal and releases idle connections. Wrap, Unwrap,
// Rewrap and Rotate fail after Close. It is safe to call more than once.
func (t *Transit) Close() error {
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		if t.stopRenewal != nil {
			t.stopRenewal()
		}
		if t.renewDone != nil {
			<-t.renewDone
		}
		t.httpClient.CloseIdleConnections()
	})
	return nil
}

// String describes the KEK without the token.
func (t *Transit) String() string {
	return fmt.Sprintf("kek/transit(vault at %s, key %s)", t.addr, t.keyName())
}

// Format prints String for every verb, so that no fmt verb (%#v, %+v) can
// reach the token inside the Vault client.
func (t *Transit) Format(f fmt.State, _ rune) { io.WriteString(f, t.String()) }

// LogValue describes the KEK to log/slog without the token.
func (t *Transit) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("backend", "transit"),
		slog.String("vault", t.addr),
		slog.String("mount", t.mount),
		slog.String("key", t.key),
	)
}

func (t *Transit) keyName() string { return t.mount + "/" + t.key }

func (t *Transit) checkCiphertext(op string, d *transitCiphertext) ([]byte, error) {
	if d == nil {
		return nil, t.malformed(op, "no data")
	}
	ct := []byte(d.Ciphertext)
	v, err := parseTransitCiphertext(ct)
	if err != nil {
		return nil, t.malformed(op, "the ciphertext is not in Transit's format")
	}
	if d.KeyVersion != 0 && uint64(d.KeyVersion) != uint64(v) {
		return nil, t.malformed(op, fmt.Sprintf("key_version %d does not match the ciphertext's v%d", d.KeyVersion, v))
	}
	return ct, nil
}

func (t *Transit) malformed(op, what string) error {
	return fmt.Errorf("kek/transit: vault at %s: %s with key %s: malformed response: %s", t.addr, op, t.keyName(), what)
}

// Vault response shapes. Decoding is typed; nothing is type-asserted.

type response[T any] struct {
	Data *T         `json:"data"`
	Auth *tokenAuth `json:"auth"`
}

type tokenLookup struct {
	Renewable bool  `json:"renewable"`
	TTL       int64 `json:"ttl"`
}

type tokenAuth struct {
	Renewable     bool  `json:"renewable"`
	LeaseDuration int64 `json:"lease_duration"`
}

type transitKey struct {
	Type               string `json:"type"`
	Derived            bool   `json:"derived"`
	SupportsEncryption bool   `json:"supports_encryption"`
	SupportsDecryption bool   `json:"supports_decryption"`
}

type transitCiphertext struct {
	Ciphertext string `json:"ciphertext"`
	KeyVersion int64  `json:"key_version"`
}

type transitPlaintext struct {
	Plaintext base64Bytes `json:"plaintext"`
}

// base64Bytes decodes a JSON string of standard base64 straight into bytes,
// so the plaintext never becomes an immutable (uncleanable) string.
type base64Bytes []byte

func (b *base64Bytes) UnmarshalJSON(data []byte) error {
	if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
		return errors.New("not a JSON string")
	}
	src := data[1 : len(data)-1]
	dst := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	n, err := base64.StdEncoding.Decode(dst, src)
	if err != nil {
		clear(dst)
		return errors.New("not base64")
	}
	*b = dst[:n]
	return nil
}

// jsonBase64Body returns {"<field>":"<base64 of value>"} without an
// intermediate string.
func jsonBase64Body(field string, value []byte) []byte {
	out := make([]byte, 0, len(field)+base64.StdEncoding.EncodedLen(len(value))+8)
	out = append(append(append(out, `{"`...), field...), `":"`...)
	out = base64.StdEncoding.AppendEncode(out, value)
	return append(out, `"}`...)
}

// jsonStringBody returns {"<field>":"<value>"}; value must need no JSON
// escaping (callers pass only parsed Transit ciphertexts).
func jsonStringBody(field string, value []byte) []byte {
	out := make([]byte, 0, len(field)+len(value)+8)
	out = append(append(append(out, `{"`...), field...), `":"`...)
	out = append(out, value...)
	return append(out, `"}`...)
}
