package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Transit drives HashiCorp Vault's (or OpenBao's) Transit engine over plain
// HTTP, with the same HTTP client settings as the fieldvault driver:
// encrypt and decrypt, single (one plaintext per request) or batch_input.
type Transit struct {
	ep    *endpoint
	mount string
	key   string
}

// NewTransit returns a driver for the Transit mount and key at addr,
// authenticating with token.
func NewTransit(addr, token, mount, key string, hc *http.Client) *Transit {
	if mount == "" {
		mount = "transit"
	}
	return &Transit{
		ep:    &endpoint{http: hc, base: strings.TrimRight(addr, "/"), authHeader: "X-Vault-Token", authValue: token},
		mount: strings.Trim(mount, "/"),
		key:   key,
	}
}

func (t *Transit) path(op string) string {
	return "/v1/" + t.mount + "/" + op + "/" + t.key
}

// Setup checks the token and creates the key (aes256-gcm96) if it does
// not exist yet.
func (t *Transit) Setup(ctx context.Context) error {
	w := &Worker{}
	r, err := t.ep.do(ctx, w, http.MethodGet, "/v1/auth/token/lookup-self", nil)
	if err != nil {
		return fmt.Errorf("transit: %w", err)
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("transit: token lookup: %d %s", r.status, vaultErrors(r.body))
	}
	r, err = t.ep.do(ctx, w, http.MethodGet, "/v1/"+t.mount+"/keys/"+t.key, nil)
	if err != nil {
		return fmt.Errorf("transit: %w", err)
	}
	if r.status == http.StatusOK {
		return nil
	}
	r, err = t.ep.post(ctx, w, "/v1/"+t.mount+"/keys/"+t.key, []byte(`{"type":"aes256-gcm96"}`))
	if err != nil {
		return fmt.Errorf("transit: %w", err)
	}
	if r.status/100 != 2 {
		return fmt.Errorf("transit: create key %s: %d %s", t.key, r.status, vaultErrors(r.body))
	}
	return nil
}

// appendPlaintexts writes an encrypt body: {"plaintext":...} for one value,
// {"batch_input":[...]} for more (or when forceBatch).
func appendEncryptBody(b []byte, values []string) []byte {
	if len(values) == 1 {
		b = append(b, `{"plaintext":`...)
		b = appendJSONString(b, b64(values[0]))
		return append(b, '}')
	}
	b = append(b, `{"batch_input":[`...)
	for i, v := range values {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"plaintext":`...)
		b = appendJSONString(b, b64(v))
		b = append(b, '}')
	}
	return append(b, `]}`...)
}

func appendDecryptBody(b []byte, cts []string) []byte {
	if len(cts) == 1 {
		b = append(b, `{"ciphertext":`...)
		b = appendJSONString(b, cts[0])
		return append(b, '}')
	}
	b = append(b, `{"batch_input":[`...)
	for i, c := range cts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"ciphertext":`...)
		b = appendJSONString(b, c)
		b = append(b, '}')
	}
	return append(b, `]}`...)
}

// EncryptOp encrypts n values per request; value(w) draws each value.
func (t *Transit) EncryptOp(n int, value func(w *Worker) string) Op {
	path := t.path("encrypt")
	return func(ctx context.Context, w *Worker) Outcome {
		vals := make([]string, n)
		for i := range vals {
			vals[i] = value(w)
		}
		w.Buf = appendEncryptBody(w.Buf[:0], vals)
		return t.send(ctx, w, path, n)
	}
}

// DecryptOp decrypts n ciphertexts per request, a window of cts at a
// random offset.
func (t *Transit) DecryptOp(n int, cts []string) Op {
	path := t.path("decrypt")
	return func(ctx context.Context, w *Worker) Outcome {
		start := w.Rand.IntN(len(cts))
		win := make([]string, n)
		for i := range win {
			win[i] = cts[(start+i)%len(cts)]
		}
		w.Buf = appendDecryptBody(w.Buf[:0], win)
		return t.send(ctx, w, path, n)
	}
}

func (t *Transit) send(ctx context.Context, w *Worker, path string, n int) Outcome {
	r, err := t.ep.post(ctx, w, path, w.Buf)
	if err != nil {
		return Outcome{Code: transportCode(err)}
	}
	if r.status != http.StatusOK {
		return Outcome{Code: fmt.Sprintf("HTTP_%d", r.status)}
	}
	return Outcome{Fields: n}
}

// Encrypt encrypts values in batches of at most 1000 and returns the
// ciphertexts in order (setup for the decrypt runs).
func (t *Transit) Encrypt(ctx context.Context, values []string) ([]string, error) {
	w := &Worker{}
	out := make([]string, 0, len(values))
	for len(values) > 0 {
		m := min(len(values), 1000)
		body := appendEncryptBody(nil, values[:m])
		if m == 1 {
			body = []byte(`{"batch_input":[{"plaintext":` + string(appendJSONString(nil, b64(values[0]))) + `}]}`)
		}
		r, err := t.ep.post(ctx, w, t.path("encrypt"), body)
		if err != nil {
			return nil, fmt.Errorf("transit encrypt: %w", err)
		}
		if r.status != http.StatusOK {
			return nil, fmt.Errorf("transit encrypt: %d %s", r.status, vaultErrors(r.body))
		}
		var res struct {
			Data struct {
				BatchResults []struct {
					Ciphertext string `json:"ciphertext"`
					Error      string `json:"error"`
				} `json:"batch_results"`
			} `json:"data"`
		}
		if err := json.Unmarshal(r.body, &res); err != nil {
			return nil, fmt.Errorf("transit encrypt: %w", err)
		}
		if len(res.Data.BatchResults) != m {
			return nil, fmt.Errorf("transit encrypt: %d results for %d items", len(res.Data.BatchResults), m)
		}
		for _, br := range res.Data.BatchResults {
			if br.Error != "" {
				return nil, fmt.Errorf("transit encrypt: %s", br.Error)
			}
			out = append(out, br.Ciphertext)
		}
		values = values[m:]
	}
	return out, nil
}

// Decrypt decrypts one ciphertext (for tests and checks).
func (t *Transit) Decrypt(ctx context.Context, ct string) (string, error) {
	w := &Worker{}
	r, err := t.ep.post(ctx, w, t.path("decrypt"), appendDecryptBody(nil, []string{ct}))
	if err != nil {
		return "", err
	}
	if r.status != http.StatusOK {
		return "", fmt.Errorf("transit decrypt: %d %s", r.status, vaultErrors(r.body))
	}
	var res struct {
		Data struct {
			Plaintext string `json:"plaintext"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &res); err != nil {
		return "", err
	}
	return res.Data.Plaintext, nil
}
