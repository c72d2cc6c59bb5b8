package main

// Helpers for the end-to-end tests: they build the real fieldvault binary
// once per test run, start it as a child process on a loopback port, and
// talk to it over HTTP.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/vault/client"
)

// e2eRootToken is the dev root (admin) API key of the servers the tests start.
const e2eRootToken = "e2e-root-token-4f1c9a"

var (
	binDir    string
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fieldvault-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// fieldvaultBin builds the binary from this package's sources (once per test
// run) and returns its path.
func fieldvaultBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool := "go"
		if root := os.Getenv("GOROOT"); root != "" {
			if p := filepath.Join(root, "bin", "go"); fileExists(p) {
				goTool = p
			}
		}
		out := filepath.Join(binDir, "fieldvault")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool, "build", "-o", out, ".")
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, buf.String())
			return
		}
		binPath = out
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// childEnv is the environment of child processes: the test's own, without
// any FIELDVAULT_* or VAULT_* variable (another engineer's shell settings
// must not change what the tests observe), plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "FIELDVAULT_") || strings.HasPrefix(kv, "VAULT_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// freePort returns a loopback TCP port that was free a moment ago. Callers
// retry when the server then fails to bind it.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// portFree reports whether a loopback port can be bound now.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// syncBuffer is a goroutine-safe output capture.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// launch is one way of starting a server: the arguments after "serve" and
// extra environment variables.
type launch struct {
	args []string
	env  []string
	// port is the port the launcher picked (0 if none); used to tell a
	// bind failure of our own choice (retry) from a real failure.
	port int
}

// server is a running fieldvault serve child process.
type server struct {
	t       testing.TB
	cmd     *exec.Cmd
	addr    string // scheme://host:port, as printed by the server
	dataDir string
	stdout  *syncBuffer
	stderr  *syncBuffer
	httpc   *http.Client
	tlsConf *tls.Config

	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

var listeningRE = regexp.MustCompile(`fieldvault listening on (\S+)`)

// devLaunch returns a launcher of `serve --dev` on a fresh loopback port with
// the test root token, on dataDir, with extra flags.
func devLaunch(t testing.TB, dataDir string, extra ...string) func() launch {
	return func() launch {
		p := freePort(t)
		args := []string{"--dev", "--dev-root-token=" + e2eRootToken, "--data-dir", dataDir,
			"--listen", fmt.Sprintf("127.0.0.1:%d", p)}
		return launch{args: append(args, extra...), port: p}
	}
}

// startDev starts a dev server on a fresh data directory.
func startDev(t testing.TB, extra ...string) *server {
	t.Helper()
	dir := t.TempDir()
	return startServer(t, dir, devLaunch(t, dir, extra...), nil)
}

// startServer starts a server and waits until it answers /readyz; the test
// fails if it cannot.
func startServer(t testing.TB, dataDir string, mk func() launch, tlsConf *tls.Config) *server {
	t.Helper()
	s, err := tryStartServer(t, dataDir, mk, tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tryStartServer starts a server; on a bind failure on a port the launcher
// picked it retries with a new launch. The server is stopped (SIGTERM, then
// SIGKILL) when the test ends.
func tryStartServer(t testing.TB, dataDir string, mk func() launch, tlsConf *tls.Config) (*server, error) {
	t.Helper()
	bin := fieldvaultBin(t)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		l := mk()
		s := &server{t: t, dataDir: dataDir, stdout: &syncBuffer{}, stderr: &syncBuffer{},
			tlsConf: tlsConf, done: make(chan struct{})}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tlsConf
		s.httpc = &http.Client{Transport: tr, Timeout: 30 * time.Second}
		s.cmd = exec.Command(bin, append([]string{"serve"}, l.args...)...)
		s.cmd.Env = childEnv(l.env...)
		s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
		setChildAttrs(s.cmd)
		if err := s.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start fieldvault: %w", err)
		}
		go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()
		t.Cleanup(func() { s.stop(syscall.SIGTERM, 20*time.Second) })

		err := s.waitListening(60 * time.Second)
		if err == nil {
			if err = s.waitReady(30 * time.Second); err == nil {
				return s, nil
			}
		}
		lastErr = err
		s.stop(syscall.SIGKILL, 10*time.Second)
		if l.port != 0 && strings.Contains(s.stderr.String(), "address already in use") {
			continue // someone took the port between our probe and the bind
		}
		return nil, lastErr
	}
	return nil, lastErr
}

// exited reports whether the process has ended.
func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *server) waitListening(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if m := listeningRE.FindStringSubmatch(s.stdout.String()); m != nil {
			s.addr = m[1]
			return nil
		}
		if s.exited() {
			return fmt.Errorf("fieldvault serve exited before listening (%v)\nstdout:\n%s\nstderr:\n%s",
				s.waitErr, s.stdout, s.stderr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fieldvault serve did not print its address within %v\nstdout:\n%s\nstderr:\n%s",
				timeout, s.stdout, s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		resp, err := s.httpc.Get(s.addr + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		if s.exited() {
			return fmt.Errorf("fieldvault serve exited before ready (%v)\nstderr:\n%s", s.waitErr, s.stderr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/readyz not ready within %v: %s\nstderr:\n%s", timeout, last, s.stderr)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// stop signals the process (if it still runs) and waits for it to end,
// killing it after timeout. It returns the exit code (-1 for a signal).
func (s *server) stop(sig os.Signal, timeout time.Duration) int {
	s.stopOnce.Do(func() {
		if !s.exited() {
			_ = s.cmd.Process.Signal(sig)
			select {
			case <-s.done:
			case <-time.After(timeout):
				s.t.Errorf("fieldvault serve did not exit within %v of %v; killing it", timeout, sig)
				_ = s.cmd.Process.Kill()
				<-s.done
			}
		}
	})
	<-s.done
	return s.cmd.ProcessState.ExitCode()
}

// client returns a Go SDK client with the given API key.
func (s *server) client(key string) *client.Client {
	s.t.Helper()
	var opts []client.Option
	if s.tlsConf != nil {
		opts = append(opts, client.WithTLSConfig(s.tlsConf))
	}
	c, err := client.New(s.addr, key, opts...)
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

func (s *server) root() *client.Client { return s.client(e2eRootToken) }

// response is a raw HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// do sends a raw request. key "" sends no Authorization header; contentType
// "" sends none.
func (s *server) do(method, path, key, contentType string, body []byte) response {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.addr+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.httpc.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// postJSON posts body (a string or a value to marshal) with the root key.
func (s *server) postJSON(path string, body any) response {
	s.t.Helper()
	return s.do(http.MethodPost, path, e2eRootToken, "application/json", jsonBytes(s.t, body))
}

func jsonBytes(t testing.TB, v any) []byte {
	t.Helper()
	switch b := v.(type) {
	case string:
		return []byte(b)
	case []byte:
		return b
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// errEnvelope is the API's error body.
type errEnvelope struct {
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Items   []*struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"items"`
	} `json:"error"`
}

var upperSnake = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$`)

// apiError decodes an error envelope, failing the test if the body is not one.
func apiError(t testing.TB, r response) errEnvelope {
	t.Helper()
	var e errEnvelope
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == nil {
		t.Fatalf("not a JSON error envelope: %s", r)
	}
	if !upperSnake.MatchString(e.Error.Code) {
		t.Errorf("error code %q is not UPPER_SNAKE", e.Error.Code)
	}
	if e.Error.Message == "" {
		t.Errorf("error without a message: %s", r)
	}
	return e
}

// metricSum sums the samples of a Prometheus counter whose labels contain
// every one of labels (e.g. `outcome="ok"`).
func (s *server) metricSum(name string, labels ...string) float64 {
	s.t.Helper()
	r := s.do(http.MethodGet, "/metrics", "", "", nil)
	if r.status != http.StatusOK {
		s.t.Fatalf("/metrics: %s", r)
	}
	sum := 0.0
	for _, line := range strings.Split(string(r.body), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil || math.IsNaN(f) {
			s.t.Fatalf("/metrics: bad sample %q", line)
		}
		sum += f
	}
	return sum
}

// runCLI runs the binary with args and returns its stdout, stderr and exit
// code.
func runCLI(t testing.TB, env []string, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, fieldvaultBin(t), args...)
	cmd.Env = childEnv(env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("fieldvault %v: %v", args, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// thaiIDCheckDigit is the check digit of the first 12 digits of a Thai
// national ID.
func thaiIDCheckDigit(d string) int {
	sum := 0
	for i := 0; i < 12; i++ {
		sum += int(d[i]-'0') * (13 - i)
	}
	return (11 - sum%11) % 10
}

// validThaiID completes 12 digits with their check digit.
func validThaiID(first12 string) string {
	return first12 + strconv.Itoa(thaiIDCheckDigit(first12))
}
