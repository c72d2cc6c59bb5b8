// Package transittest runs an in-memory, Transit-compatible Vault server over
// real HTTP, for tests. It is a fake, not a mock: keys have real per-version
// AES-GCM key material, so its ciphertexts really decrypt, and it follows
// the HTTP API of HashiCorp Vault's (and OpenBao's) Transit engine closely
// enough to replay the exchanges recorded from OpenBao 2.6.2 in
// testdata/exchanges exactly (see replay_test.go).
//
// # What it serves
//
//   - Transit at a mount (default "transit"): keys/:name (create, read,
//     delete), keys/:name/config, keys/:name/rotate, and encrypt, decrypt and
//     rewrap, single and batch_input, with Vault's error messages and status
//     codes: a batch encrypt or decrypt with a bad item is a 400 with
//     per-item errors beside good results, a batch rewrap with a bad item is
//     a 200, encrypt upserts a missing key.
//   - auth/token/lookup-self and renew-self, with renewable tokens whose TTL
//     really expires.
//   - sys/health, sys/mounts/:path (enable, read, disable) and
//     sys/policies/acl/:name, with ACL policies written in Vault's HCL and
//     enforced per path and capability, including the existence check that
//     makes an encrypt to a missing key need "create" rather than "update".
//   - A wrong or expired token is a 403 {"errors":["permission denied"]}.
//
// # Test switches
//
// Seal and Unseal answer every request but sys/health with Vault's 503
// "Vault is sealed". Stop and Start close and reopen the listener on the same
// address, so clients see connection refused and then recover. CreateToken
// makes tokens with policies, a TTL and renewability; Calls counts requests
// per path.
//
// # Not reproduced
//
// Derived and convergent keys, key types other than aes128-gcm96 and
// aes256-gcm96, associated_data, export, backup, HMAC, signing, namespaces
// (the header is accepted and ignored), token creation over HTTP, leases,
// and Vault's finer ACL features (parameters, wrapping TTLs, templating).
package transittest

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultMount is where Transit is mounted unless Options says otherwise.
const DefaultMount = "transit"

// maxBody bounds request bodies, like Vault's default max_request_size.
const maxBody = 32 << 20

// Options configures a Server.
type Options struct {
	// TLS serves HTTPS with httptest's self-signed certificate; clients
	// trust it through Server.Certificate.
	TLS bool
	// Mount is where Transit is mounted. Default "transit".
	Mount string
	// NoMount starts with nothing mounted, as a fresh Vault before
	// deploy/vault/setup.sh has run.
	NoMount bool
	// RootToken is the root token's ID. Default: random.
	RootToken string
}

// Server is a running Transit-compatible server. Its methods are safe for
// concurrent use.
type Server struct {
	// URL is the base URL, such as http://127.0.0.1:41234. It stays the
	// same across Stop and Start.
	URL string
	// RootToken is a token with the root policy.
	RootToken string

	tls bool

	mu        sync.Mutex
	hs        *httptest.Server
	addr      string
	sealed    bool
	mounts    map[string]*engine
	tokens    map[string]*token
	policies  map[string]*policy
	calls     map[string]int
	clusterID string
}

// New starts a server and stops it when the test ends.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := Start(opts)
	if err != nil {
		tb.Fatalf("transittest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Start starts a server; the caller must Close it. Prefer New in tests.
func Start(opts Options) (*Server, error) {
	s := &Server{
		tls:       opts.TLS,
		mounts:    make(map[string]*engine),
		tokens:    make(map[string]*token),
		policies:  make(map[string]*policy),
		calls:     make(map[string]int),
		clusterID: newUUID(),
	}
	for name, src := range builtinPolicies {
		p, err := parsePolicy(name, src)
		if err != nil {
			return nil, err
		}
		s.policies[name] = p
	}
	mount := strings.Trim(opts.Mount, "/")
	if mount == "" {
		mount = DefaultMount
	}
	if !opts.NoMount {
		s.mounts[mount] = newEngine(mount)
	}
	s.RootToken = opts.RootToken
	if s.RootToken == "" {
		s.RootToken = "hvs." + randomHex(12)
	}
	s.tokens[s.RootToken] = newRootToken(s.RootToken)
	if err := s.listen(); err != nil {
		return nil, err
	}
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	s.URL = scheme + "://" + s.addr
	return s, nil
}

func (s *Server) listen() error {
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	hs := httptest.NewUnstartedServer(s)
	hs.Listener.Close()
	hs.Listener = l
	if s.tls {
		hs.StartTLS()
	} else {
		hs.Start()
	}
	s.mu.Lock()
	s.hs, s.addr = hs, l.Addr().String()
	s.mu.Unlock()
	return nil
}

// Certificate returns the TLS certificate of a TLS server, to put in a CA
// file; nil for plain HTTP. It is the same across Stop and Start.
func (s *Server) Certificate() *x509.Certificate {
	s.mu.Lock()
	hs := s.hs
	s.mu.Unlock()
	if hs == nil || !s.tls {
		return nil
	}
	return hs.Certificate()
}

// Stop closes the listener and every connection: clients get connection
// refused until Start. Keys, tokens and policies are kept.
func (s *Server) Stop() {
	s.mu.Lock()
	hs := s.hs
	s.hs = nil
	s.mu.Unlock()
	if hs != nil {
		hs.Close()
	}
}

// Start listens again, on the same address, after Stop.
func (s *Server) Start() error {
	s.mu.Lock()
	running := s.hs != nil
	s.mu.Unlock()
	if running {
		return nil
	}
	return s.listen()
}

// Close stops the server for good.
func (s *Server) Close() { s.Stop() }

// Seal makes every request but sys/health fail with Vault's 503
// {"errors":["Vault is sealed"]}, and sys/health report sealed.
func (s *Server) Seal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sealed = true
}

// Unseal undoes Seal.
func (s *Server) Unseal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sealed = false
}

// Calls returns how many requests reached path (such as
// "/v1/auth/token/renew-self"), whatever their outcome.
func (s *Server) Calls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

// CreateKey creates an aes256-gcm96 key named name at mount, as
// POST <mount>/keys/<name> would. It is a no-op if the key exists.
func (s *Server) CreateKey(mount, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.mounts[mount]
	if e == nil {
		return fmt.Errorf("transittest: no Transit mount at %s/", mount)
	}
	if e.keys[name] != nil {
		return nil
	}
	_, err := e.createKey(name, "aes256-gcm96")
	return err
}

// ServeHTTP answers one Vault API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	var rep reply
	switch {
	case err != nil:
		rep = errorReply(http.StatusBadRequest, "failed to read request body")
	case len(body) > maxBody:
		rep = errorReply(http.StatusRequestEntityTooLarge, "http: request body too large")
	case !strings.HasPrefix(r.URL.Path, "/v1/"):
		rep = errorReply(http.StatusNotFound)
	default:
		s.mu.Lock()
		s.calls[r.URL.Path]++
		rep = s.handle(r, strings.TrimPrefix(r.URL.Path, "/v1/"), body)
		s.mu.Unlock()
	}
	w.Header().Set("Cache-Control", "no-store")
	if rep.body == nil {
		w.WriteHeader(rep.status)
		return
	}
	out, err := json.Marshal(rep.body)
	if err != nil {
		http.Error(w, "transittest: marshalling the response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	w.Write(append(out, '\n'))
}

// reply is a status and a JSON body (nil: no body).
type reply struct {
	status int
	body   any
}

// envelope is Vault's response body for a successful logical request.
type envelope struct {
	RequestID     string   `json:"request_id"`
	LeaseID       string   `json:"lease_id"`
	Renewable     bool     `json:"renewable"`
	LeaseDuration int64    `json:"lease_duration"`
	Data          any      `json:"data"`
	WrapInfo      any      `json:"wrap_info"`
	Warnings      []string `json:"warnings"`
	Auth          any      `json:"auth"`
}

func okReply(data any, warnings ...string) reply {
	return statusReply(http.StatusOK, data, warnings...)
}

func statusReply(status int, data any, warnings ...string) reply {
	return reply{status: status, body: envelope{RequestID: newUUID(), Data: data, Warnings: warnings}}
}

func noContent() reply { return reply{status: http.StatusNoContent} }

// errorReply is Vault's error body, {"errors":[...]}; with no messages the
// list is empty, as in Vault's 404 for a missing key.
func errorReply(status int, msgs ...string) reply {
	if msgs == nil {
		msgs = []string{}
	}
	return reply{status: status, body: struct {
		Errors []string `json:"errors"`
	}{msgs}}
}

func badRequest(msg string) reply { return errorReply(http.StatusBadRequest, msg) }

func permissionDenied() reply { return errorReply(http.StatusForbidden, "permission denied") }

func unsupportedOperation() reply {
	return errorReply(http.StatusMethodNotAllowed, "1 error occurred:\n\t* unsupported operation\n\n")
}

func noHandler(path string) reply {
	return errorReply(http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", path))
}

// newUUID returns a random UUID in Vault's 8-4-4-4-12 hex form.
func newUUID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("transittest: crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}

func unixNow() int64 { return time.Now().Unix() }
