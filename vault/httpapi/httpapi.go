// Package httpapi serves the vault's HTTP JSON API under /v1.
//
// Every error is {"error":{"code":"UPPER_SNAKE","message":"..."}} with a
// stable code. Messages never contain values, tokens, API keys or subject
// data, and neither do log lines: the access log records the route pattern
// (never the raw path, which may hold a subject id), the status, the
// principal and the duration.
package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/fieldvault/fieldvault/vault"
)

//go:embed openapi.json
var openapiFS embed.FS

// OpenAPI returns the OpenAPI 3.1 document of the API.
func OpenAPI() []byte {
	b, err := openapiFS.ReadFile("openapi.json")
	if err != nil {
		panic("httpapi: embedded openapi.json missing")
	}
	return b
}

// Config configures the handler.
type Config struct {
	Vault  *vault.Vault
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies (default 16 MiB); larger bodies
	// get 413 BODY_TOO_LARGE.
	MaxBodyBytes int64
	// Metrics, when set, wraps every route (route pattern, status).
	Metrics Metrics
	// Extra routes (for example /metrics) mounted as they are, without
	// authentication.
	Extra map[string]http.Handler
}

// Metrics observes requests. Labels are route patterns and status codes,
// never paths or bodies.
type Metrics interface {
	ObserveRequest(route string, status int, d time.Duration)
}

// Server is the API handler.
type Server struct {
	v       *vault.Vault
	log     *slog.Logger
	maxBody int64
	metrics Metrics
	mux     *http.ServeMux
}

// New builds the handler.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 16 << 20
	}
	s := &Server{v: cfg.Vault, log: cfg.Logger, maxBody: cfg.MaxBodyBytes, metrics: cfg.Metrics, mux: http.NewServeMux()}
	s.routes()
	for pattern, h := range cfg.Extra {
		s.mux.Handle(pattern, h)
	}
	return s
}

type ctxKey int

const (
	keyPrincipal ctxKey = iota
	keyRequestID
)

// statusWriter records the status code.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validRequestID accepts a caller's X-Request-Id only if it is short and
// plain, so it cannot smuggle data into logs.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ServeHTTP adds request ids, panic recovery, the access log and metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rid := r.Header.Get("X-Request-Id")
	if !validRequestID(rid) {
		rid = newRequestID()
	}
	w.Header().Set("X-Request-Id", rid)
	sw := &statusWriter{ResponseWriter: w}
	var principal string
	ctx := context.WithValue(r.Context(), keyRequestID, rid)
	ctx = context.WithValue(ctx, keyPrincipal, &principal)
	r = r.WithContext(ctx)
	defer func() {
		if rec := recover(); rec != nil {
			// Never echo the panic value: it could hold request data.
			s.log.Error("panic serving request", "request_id", rid, "stack", string(debug.Stack()))
			if sw.status == 0 {
				writeError(sw, &vault.Error{Kind: vault.KindInternal, Code: vault.CodeInternal, Message: "internal error"})
			}
		}
		_, pattern := s.mux.Handler(r)
		if pattern == "" {
			pattern = "unmatched"
		}
		d := time.Since(start)
		if s.metrics != nil {
			s.metrics.ObserveRequest(pattern, sw.status, d)
		}
		s.log.Info("request", "request_id", rid, "route", pattern, "status", sw.status,
			"duration_ms", float64(d.Microseconds())/1000, "principal", principal)
	}()
	s.mux.ServeHTTP(sw, r)
}

// authed is an authenticated handler.
type authed struct {
	s  *Server
	fn func(w http.ResponseWriter, r *http.Request, p *vault.Principal)
}

func (a authed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fieldvault"`)
		writeError(w, &vault.Error{Kind: vault.KindUnauthorized, Code: vault.CodeUnauthorized, Message: "missing or invalid API key"})
		return
	}
	p, err := a.s.v.Authenticate(r.Context(), key)
	if err != nil {
		if e := vault.AsError(err); e.Kind == vault.KindUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fieldvault"`)
		}
		a.s.writeErr(w, r, err)
		return
	}
	// Report the principal to the access log.
	if slot, ok := r.Context().Value(keyPrincipal).(*string); ok {
		*slot = p.Name
	}
	a.fn(w, r, p)
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimSpace(h[len(prefix):]), true
}

func (s *Server) auth(fn func(w http.ResponseWriter, r *http.Request, p *vault.Principal)) http.Handler {
	return authed{s: s, fn: fn}
}

// errorBody is the JSON error envelope.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string             `json:"code"`
	Message string             `json:"message"`
	Items   []*vault.ItemError `json:"items,omitempty"`
}

var statusOf = map[vault.Kind]int{
	vault.KindInternal:     http.StatusInternalServerError,
	vault.KindInvalid:      http.StatusBadRequest,
	vault.KindUnauthorized: http.StatusUnauthorized,
	vault.KindForbidden:    http.StatusForbidden,
	vault.KindNotFound:     http.StatusNotFound,
	vault.KindConflict:     http.StatusConflict,
	vault.KindTooLarge:     http.StatusRequestEntityTooLarge,
	vault.KindUnavailable:  http.StatusServiceUnavailable,
}

func writeError(w http.ResponseWriter, e *vault.Error) {
	writeJSON(w, statusOf[e.Kind], errorBody{Error: errorDetail{Code: e.Code, Message: e.Message, Items: e.Items}})
}

// writeErr logs internal causes (without request data) and writes the error.
func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	e := vault.AsError(err)
	if e.Kind == vault.KindInternal || e.Kind == vault.KindUnavailable {
		rid, _ := r.Context().Value(keyRequestID).(string)
		s.log.Error("request failed", "request_id", rid, "code", e.Code, "cause", causeClass(err))
	}
	if e.Kind == vault.KindUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeError(w, e)
}

// causeClass names the cause of an internal error for the log. Causes come
// from the store, keyring and audit layers, whose messages never carry
// request data; they are logged to help operators.
func causeClass(err error) string {
	if u := errors.Unwrap(err); u != nil {
		return u.Error()
	}
	return err.Error()
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() < 1<<20 {
			bufPool.Put(buf)
		}
	}()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		http.Error(w, `{"error":{"code":"INTERNAL","message":"internal error"}}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
	clear(buf.Bytes()) // response bodies may hold values
}

// decode reads a JSON body strictly: unknown fields, trailing data, a wrong
// content type and oversized bodies are rejected with stable codes.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		writeError(w, &vault.Error{Kind: vault.KindInvalid, Code: "UNSUPPORTED_MEDIA_TYPE", Message: "Content-Type must be application/json"})
		return false
	}
	body := http.MaxBytesReader(w, r.Body, s.maxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, &vault.Error{Kind: vault.KindTooLarge, Code: "BODY_TOO_LARGE",
				Message: "request body is larger than the limit"})
			return false
		}
		writeError(w, &vault.Error{Kind: vault.KindInvalid, Code: "MALFORMED_JSON", Message: jsonErrorMessage(err)})
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, &vault.Error{Kind: vault.KindInvalid, Code: "MALFORMED_JSON", Message: "unexpected data after the JSON body"})
		return false
	}
	return true
}

// jsonErrorMessage describes a decoding error without echoing input.
func jsonErrorMessage(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "request body is empty"
	case errors.As(err, &se):
		return "malformed JSON"
	case errors.As(err, &te):
		if te.Field != "" {
			return "wrong type for field " + te.Field
		}
		return "wrong JSON type"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// The field name is the caller's own key, not a value.
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if len(name) > 66 {
			name = name[:66] + `…"`
		}
		return "unknown field " + name
	}
	return "malformed JSON"
}
