package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// NewHTTPClient returns the HTTP client every driver uses, so that
// fieldvault and the Transit baseline are measured with the same settings:
// HTTP/1.1 keep-alive with one idle connection kept per worker, no proxy,
// no transparent compression, a 60 s request timeout.
func NewHTTPClient(concurrency int, tc *tls.Config) *http.Client {
	if concurrency < 1 {
		concurrency = 1
	}
	t := &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          concurrency + 16,
		MaxIdleConnsPerHost:   concurrency + 16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		TLSClientConfig:       tc,
		ForceAttemptHTTP2:     false,
	}
	return &http.Client{Transport: t, Timeout: 60 * time.Second}
}

// TLSFromEnv builds a TLS configuration from FIELDVAULT_CACERT (a PEM file
// of CAs to trust), or nil.
func TLSFromEnv() (*tls.Config, error) {
	path := os.Getenv("FIELDVAULT_CACERT")
	if path == "" {
		return nil, nil
	}
	return tlsWithCA(path)
}

// endpoint posts JSON bodies to one server with a fixed auth header.
type endpoint struct {
	http       *http.Client
	base       string
	authHeader string // "Authorization" or "X-Vault-Token"
	authValue  string
}

// response is a status and a body read into the worker's buffer.
type response struct {
	status int
	body   []byte
}

// post sends body to path and reads the whole response into w's buffer
// (reused between requests). The returned body aliases that buffer.
func (e *endpoint) post(ctx context.Context, w *Worker, path string, body []byte) (response, error) {
	return e.do(ctx, w, http.MethodPost, path, body)
}

func (e *endpoint) do(ctx context.Context, w *Worker, method, path string, body []byte) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.base+path, rd)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(e.authHeader, e.authValue)
	resp, err := e.http.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	buf := bytes.NewBuffer(w.resp[:0])
	_, err = buf.ReadFrom(resp.Body)
	w.resp = buf.Bytes()
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, body: w.resp}, nil
}

// transportCode classifies a failed round trip.
func transportCode(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "TIMEOUT"
	case errors.Is(err, context.Canceled):
		return "CANCELED"
	}
	return "TRANSPORT"
}

// apiErrorCode reads fieldvault's {"error":{"code":...}} or falls back to
// HTTP_<status> (Vault answers {"errors":[...]}).
func apiErrorCode(r response) string {
	var env struct {
		Error *struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(r.body, &env) == nil && env.Error != nil && env.Error.Code != "" {
		return env.Error.Code
	}
	return fmt.Sprintf("HTTP_%d", r.status)
}

// vaultErrors reads Vault's {"errors":[...]} for error messages.
func vaultErrors(body []byte) string {
	var env struct {
		Errors []string `json:"errors"`
	}
	if json.Unmarshal(body, &env) == nil && len(env.Errors) > 0 {
		return strings.Join(env.Errors, "; ")
	}
	if len(body) > 200 {
		body = body[:200]
	}
	return string(body)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func tlsWithCA(path string) (*tls.Config, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", path)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
