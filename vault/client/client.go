// Package client is the Go SDK for fieldvault's HTTP API.
//
// A Client is safe for concurrent use. Errors from the API are *APIError
// values carrying the stable error code; a detokenise call whose every token
// was denied returns the per-token result together with an *APIError.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// Client talks to one fieldvault server.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient replaces the HTTP client (for TLS settings, timeouts).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithTLSConfig sets the TLS configuration (CA pool, client certificate).
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *Client) {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = cfg
		c.http = &http.Client{Transport: t, Timeout: 60 * time.Second}
	}
}

// New returns a client for the server at addr (e.g. http://127.0.0.1:8280)
// authenticating with an API key.
func New(addr, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: address must be http(s)://host:port, got %q", addr)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	c := &Client{base: strings.TrimRight(addr, "/"), token: apiKey,
		http: &http.Client{Transport: t, Timeout: 60 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// FromEnv builds a client from FIELDVAULT_ADDR (default
// http://127.0.0.1:8280) and FIELDVAULT_TOKEN.
func FromEnv(opts ...Option) (*Client, error) {
	addr := os.Getenv("FIELDVAULT_ADDR")
	if addr == "" {
		addr = "http://127.0.0.1:8280"
	}
	tok := os.Getenv("FIELDVAULT_TOKEN")
	if tok == "" {
		return nil, errors.New("client: FIELDVAULT_TOKEN is not set")
	}
	return New(addr, tok, opts...)
}

// APIError is an error answered by the server.
type APIError struct {
	Status  int
	Code    string
	Message string
	Items   []*vault.ItemError
}

func (e *APIError) Error() string {
	return fmt.Sprintf("fieldvault: %d %s: %s", e.Status, e.Code, e.Message)
}

// IsCode reports whether err is an *APIError with the given code.
func IsCode(err error, code string) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == code
}

type errorEnvelope struct {
	Error *struct {
		Code    string             `json:"code"`
		Message string             `json:"message"`
		Items   []*vault.ItemError `json:"items"`
	} `json:"error"`
}

// do sends a request and decodes a 2xx body into out. For non-2xx answers it
// returns an *APIError and, when out is non-nil and the body carries more
// than the error (detokenise denials), decodes it into out as well.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("fieldvault: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("fieldvault: reading the response: %w", err)
	}
	if resp.StatusCode/100 == 2 {
		if out == nil {
			return nil
		}
		return json.Unmarshal(data, out)
	}
	var env errorEnvelope
	if json.Unmarshal(data, &env) != nil || env.Error == nil {
		return &APIError{Status: resp.StatusCode, Code: "HTTP_" + fmt.Sprint(resp.StatusCode), Message: http.StatusText(resp.StatusCode)}
	}
	if out != nil {
		_ = json.Unmarshal(data, out)
	}
	return &APIError{Status: resp.StatusCode, Code: env.Error.Code, Message: env.Error.Message, Items: env.Error.Items}
}

// Tokenize tokenises a batch.
func (c *Client) Tokenize(ctx context.Context, req *vault.TokenizeRequest) (*vault.TokenizeResult, error) {
	var out vault.TokenizeResult
	if err := c.do(ctx, http.MethodPost, "/v1/tokenize", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Detokenize asks for values back. When every token is denied it returns
// the result (with the per-token reasons) and an *APIError.
func (c *Client) Detokenize(ctx context.Context, req *vault.DetokenizeRequest) (*vault.DetokenizeResult, error) {
	var out vault.DetokenizeResult
	err := c.do(ctx, http.MethodPost, "/v1/detokenize", req, &out)
	if err != nil && out.DecisionID == "" {
		return nil, err
	}
	return &out, err
}

// PutSubject registers or updates a subject.
func (c *Client) PutSubject(ctx context.Context, id string, req *vault.PutSubjectRequest) (*subject.Subject, error) {
	var out subject.Subject
	if err := c.do(ctx, http.MethodPut, "/v1/subjects/"+url.PathEscape(id), req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetSubject reads a subject.
func (c *Client) GetSubject(ctx context.Context, id string) (*subject.Subject, error) {
	var out subject.Subject
	if err := c.do(ctx, http.MethodGet, "/v1/subjects/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ConsentView is a consent with its status.
type ConsentView struct {
	consent.Consent
	Status string `json:"status"`
}

// GrantConsent records a consent.
func (c *Client) GrantConsent(ctx context.Context, req *vault.GrantConsentRequest) (*ConsentView, error) {
	var out ConsentView
	if err := c.do(ctx, http.MethodPost, "/v1/consents", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetConsent reads a consent.
func (c *Client) GetConsent(ctx context.Context, id string) (*ConsentView, error) {
	var out ConsentView
	if err := c.do(ctx, http.MethodGet, "/v1/consents/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// WithdrawConsent withdraws a consent.
func (c *Client) WithdrawConsent(ctx context.Context, id string, req *vault.WithdrawConsentRequest) (*ConsentView, error) {
	var out ConsentView
	if req == nil {
		req = &vault.WithdrawConsentRequest{}
	}
	if err := c.do(ctx, http.MethodPost, "/v1/consents/"+url.PathEscape(id)+"/withdraw", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateAPIKey creates an API key (admin only); the key is in the result,
// shown once.
func (c *Client) CreateAPIKey(ctx context.Context, principal string, roles ...string) (*vault.CreateAPIKeyResult, error) {
	var out vault.CreateAPIKeyResult
	if err := c.do(ctx, http.MethodPost, "/v1/auth/keys", &vault.CreateAPIKeyRequest{Principal: principal, Roles: roles}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeAPIKeys revokes every key of a principal.
func (c *Client) RevokeAPIKeys(ctx context.Context, principal string) (int, error) {
	var out struct {
		Revoked int `json:"revoked"`
	}
	if err := c.do(ctx, http.MethodDelete, "/v1/auth/keys/"+url.PathEscape(principal), nil, &out); err != nil {
		return 0, err
	}
	return out.Revoked, nil
}

// Ready reports whether the server is ready.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil)
}
