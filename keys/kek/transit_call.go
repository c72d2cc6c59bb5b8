package kek

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"

	vaultapi "github.com/hashicorp/vault/api"
)

// maxVaultResponse bounds how much of a Vault response is read.
const maxVaultResponse = 32 << 20

// call sends one request to Vault and, on success, decodes the JSON response
// into out (when out is not nil). body is a JSON document or nil. Every error
// is mapped by vaultError or transportError.
func (t *Transit) call(ctx context.Context, op, method, path string, body []byte, out any) error {
	if t.closed.Load() {
		return fmt.Errorf("kek/transit: vault at %s: %s: the KEK is closed", t.addr, op)
	}
	err := t.roundTrip(ctx, op, method, path, body, out)
	if errors.Is(err, ErrPermissionDenied) && t.tokenFile != "" && t.reloadToken() {
		err = t.roundTrip(ctx, op, method, path, body, out)
	}
	return err
}

func (t *Transit) roundTrip(ctx context.Context, op, method, path string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()

	var resp *vaultapi.Response
	var err error
	switch method {
	case http.MethodGet:
		resp, err = t.client.Logical().ReadRawWithContext(ctx, path)
	case http.MethodPut:
		resp, err = t.client.Logical().WriteRawWithContext(ctx, path, body)
	default:
		panic("kek/transit: unsupported method " + method)
	}
	if resp != nil {
		defer resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return t.vaultError(op, resp.StatusCode, vaultMessages(resp, err))
		}
	}
	if err != nil {
		var re *vaultapi.ResponseError
		if errors.As(err, &re) {
			var msgs []string
			if !re.RawError {
				msgs = re.Errors
			}
			return t.vaultError(op, re.StatusCode, msgs)
		}
		return t.transportError(ctx, op, err)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxVaultResponse))
	if err := dec.Decode(out); err != nil {
		// Decoding errors may quote response bytes (the plaintext, for
		// decrypt); name the operation only.
		return t.malformed(op, "not the JSON Vault sends")
	}
	return nil
}

// vaultMessages returns the "errors" list of an error response. A body
// that is not Vault's JSON (a proxy's HTML page, say) yields none: it is not
// quoted into errors.
func vaultMessages(resp *vaultapi.Response, err error) []string {
	var re *vaultapi.ResponseError
	if !errors.As(err, &re) {
		if e := resp.Error(); !errors.As(e, &re) {
			return nil
		}
	}
	if re.RawError {
		return nil
	}
	return re.Errors
}

// vaultError maps a Vault error response to the package's sentinels. Vault's
// own messages ("cipher: message authentication failed", "Vault is sealed")
// are kept, shortened and stripped of control characters; they never echo
// request bodies.
func (t *Transit) vaultError(op string, status int, msgs []string) error {
	msg := summarize(msgs)
	lower := strings.ToLower(msg)
	prefix := fmt.Sprintf("kek/transit: vault at %s: %s with key %s", t.addr, op, t.keyName())
	if op == opLookupSelf || op == opRenewSelf {
		prefix = fmt.Sprintf("kek/transit: vault at %s: %s", t.addr, op)
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	switch {
	case status == http.StatusForbidden || strings.Contains(lower, "permission denied"):
		return fmt.Errorf("%s: %s (HTTP %d); check the token and that its policy grants this path (deploy/vault/fieldvault-policy.hcl): %w", prefix, msg, status, ErrPermissionDenied)
	case strings.Contains(lower, "sealed"):
		return fmt.Errorf("%s: %s (HTTP %d): %w", prefix, msg, status, ErrUnavailable)
	case status == http.StatusNotFound || strings.Contains(lower, "encryption key not found") || lower == "key not found":
		return fmt.Errorf("%s: %s (HTTP %d); enable the Transit mount and create the key with deploy/vault/setup.sh: %w", prefix, msg, status, ErrKeyNotFound)
	case status == http.StatusTooManyRequests || status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout:
		return fmt.Errorf("%s: %s (HTTP %d): %w", prefix, msg, status, ErrUnavailable)
	case status == http.StatusBadRequest && (op == opDecrypt || op == opRewrap):
		return fmt.Errorf("%s: %s (HTTP %d): %w", prefix, msg, status, ErrInvalidCiphertext)
	}
	return fmt.Errorf("%s: %s (HTTP %d)", prefix, msg, status)
}

// summarize joins Vault's error messages into one short printable line.
func summarize(msgs []string) string {
	const maxLen = 300
	s := strings.Join(msgs, "; ")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxLen {
		s = s[:maxLen] + "..."
	}
	return s
}

// transportError maps a failure to reach Vault. A timeout, a refused or
// reset connection and DNS failures are ErrUnavailable; a TLS verification
// failure is a configuration error and gets no sentinel; the caller's own
// cancellation is reported as such.
func (t *Transit) transportError(ctx context.Context, op string, err error) error {
	prefix := fmt.Sprintf("kek/transit: vault at %s: %s", t.addr, op)
	var (
		unknownCA *x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
	)
	switch {
	case errors.Is(err, context.Canceled) && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", prefix, context.Canceled)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%s: no answer within the deadline (Timeout %s): %w: %w", prefix, t.timeout, ErrUnavailable, context.DeadlineExceeded)
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		return fmt.Errorf("%s: TLS certificate verification failed (check CACert and ServerName): %w", prefix, err)
	}
	return fmt.Errorf("%s: %w: %w", prefix, ErrUnavailable, err)
}

// reloadToken re-reads the token file and reports whether it now holds a
// different token, which the client then uses.
func (t *Transit) reloadToken() bool {
	t.tokenMu.Lock()
	defer t.tokenMu.Unlock()
	tok, err := readTokenFile(t.tokenFile)
	if err != nil {
		t.log.Warn("kek/transit: re-reading the token file failed", "vault", t.addr, "error", err)
		return false
	}
	if tok == t.client.Token() {
		return false
	}
	t.client.SetToken(tok)
	t.log.Info("kek/transit: using the new token from the token file", "vault", t.addr, "token_file", t.tokenFile)
	return true
}

// Renewal timing: renew when two thirds of the TTL have passed; after a
// failure, retry after a third of what is left, between minRenewWait and
// maxRenewRetry.
const (
	minRenewWait  = 100 * time.Millisecond
	maxRenewRetry = 30 * time.Second
)

// renewLoop renews the token (auth/token/renew-self) until ctx is canceled,
// the token stops being renewable, or Vault refuses it.
func (t *Transit) renewLoop(ctx context.Context, ttl time.Duration) {
	defer close(t.renewDone)
	expiry := time.Now().Add(ttl)
	wait := ttl * 2 / 3
	for {
		timer := time.NewTimer(max(wait, minRenewWait))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}

		var resp response[struct{}]
		err := t.call(ctx, opRenewSelf, http.MethodPut, "auth/token/renew-self", []byte(`{}`), &resp)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && resp.Auth == nil:
			err = t.malformed(opRenewSelf, "no auth")
		case err == nil && (!resp.Auth.Renewable || resp.Auth.LeaseDuration <= 0):
			t.log.Info("kek/transit: the token is no longer renewable; renewal stopped", "vault", t.addr)
			return
		case err == nil:
			ttl = time.Duration(resp.Auth.LeaseDuration) * time.Second
			expiry = time.Now().Add(ttl)
			wait = ttl * 2 / 3
			t.log.Debug("kek/transit: token renewed", "vault", t.addr, "ttl", ttl)
			continue
		case errors.Is(err, ErrPermissionDenied) && t.tokenFile == "":
			t.log.Error("kek/transit: Vault refused to renew the token (expired or revoked); renewal stopped", "vault", t.addr, "error", err)
			return
		}
		wait = min(max(time.Until(expiry)/3, minRenewWait), maxRenewRetry)
		t.log.Warn("kek/transit: token renewal failed; retrying", "vault", t.addr, "retry_in", wait, "error", err)
	}
}
