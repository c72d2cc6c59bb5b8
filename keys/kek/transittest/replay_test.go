package transittest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The exchanges in testdata/exchanges were recorded from a real OpenBao 2.6.2
// Transit engine (see its README.md). The replay sends every request, in
// order, to one fresh Server and compares each response with the recording:
// error bodies exactly, success bodies structurally (same keys, same JSON
// types, and equal values except where a real server's values are
// unrepeatable: request IDs, ciphertexts, timestamps, token IDs). Every
// ciphertext the Server returns must also have the recorded shape and
// version and decrypt to what was encrypted.

const exchangesDir = "testdata/exchanges"

// wantExchanges is how many recorded exchanges there are; the replay refuses
// to pass on fewer, so a lost file cannot go unnoticed.
const wantExchanges = 21

type exchange struct {
	Name    string `json:"name"`
	Request struct {
		Method  string            `json:"method"`
		Path    string            `json:"path"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	} `json:"request"`
	Response struct {
		Status int             `json:"status"`
		Body   json.RawMessage `json:"body"`
	} `json:"response"`
}

func loadExchanges(t *testing.T) []exchange {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(exchangesDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) != wantExchanges {
		t.Fatalf("found %d exchange files in %s, want %d", len(files), exchangesDir, wantExchanges)
	}
	var out []exchange
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ex exchange
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ex); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if want := strings.TrimSuffix(filepath.Base(f), ".json"); ex.Name != want {
			t.Fatalf("%s: name %q, want %q", f, ex.Name, want)
		}
		out = append(out, ex)
	}
	return out
}

func TestReplayRecordedExchanges(t *testing.T) {
	exchanges := loadExchanges(t)
	r := newReplayer(t, New(t, Options{}))
	for _, ex := range exchanges {
		// Sequential on purpose: each exchange depends on the state the
		// previous ones left.
		t.Run(ex.Name, func(t *testing.T) {
			for _, d := range r.replay(ex) {
				t.Error(d)
			}
		})
	}
}

// TestReplayDetectsMismatches shows the replay can fail: with one
// expectation made wrong, the comparison of that exchange reports it.
func TestReplayDetectsMismatches(t *testing.T) {
	mutations := []struct {
		exchange string
		mutate   func(*exchange)
	}{
		{"03-encrypt", func(ex *exchange) { ex.Response.Status = 204 }},
		{"03-encrypt", func(ex *exchange) { setJSON(ex, "data.extra_field", "x") }},
		{"06-encrypt-batch", func(ex *exchange) { ex.Response.Status = 200 }},
		{"06-encrypt-batch", func(ex *exchange) { setJSON(ex, "data.batch_results.1.error", "illegal base64 data at input byte 4") }},
		{"07-rotate", func(ex *exchange) { setJSON(ex, "data.latest_version", 3) }},
		{"08-read-key-after-rotate", func(ex *exchange) { setJSON(ex, "data.keys.3", 1795621398) }},
		{"10-rewrap", func(ex *exchange) { setJSON(ex, "data.key_version", 1) }},
		{"11-rewrap-batch", func(ex *exchange) {
			setJSON(ex, "data.batch_results.1.error", "invalid ciphertext: version is too old")
		}},
		{"12-decrypt-tampered", func(ex *exchange) { setJSON(ex, "errors.0", "cipher: message authentication failed!") }},
		{"14-config-min-decryption", func(ex *exchange) { setJSON(ex, "data.min_decryption_version", 1) }},
		{"15-decrypt-below-min-version", func(ex *exchange) { ex.Response.Status = 200 }},
		{"18-encrypt-bad-token", func(ex *exchange) { setJSON(ex, "errors.0", "missing client token") }},
		{"20-token-lookup-self", func(ex *exchange) { setJSON(ex, "data.policies.0", "default") }},
		{"21-health", func(ex *exchange) { setJSON(ex, "sealed", true) }},
	}
	for i, m := range mutations {
		t.Run(fmt.Sprintf("%d-%s", i, m.exchange), func(t *testing.T) {
			exchanges := loadExchanges(t)
			r := newReplayer(t, New(t, Options{}))
			found := false
			for _, ex := range exchanges {
				if ex.Name == m.exchange {
					found = true
					m.mutate(&ex)
					if diffs := r.replay(ex); len(diffs) == 0 {
						t.Errorf("%s: a wrong expectation was not detected", ex.Name)
					}
					return
				}
				if diffs := r.replay(ex); len(diffs) != 0 {
					t.Fatalf("%s (unmutated) failed: %v", ex.Name, diffs)
				}
			}
			if !found {
				t.Fatalf("no exchange %s", m.exchange)
			}
		})
	}
}

// TestExchangesMatchReference checks that testdata holds the recordings
// from the shared reference, when that checkout is present.
func TestExchangesMatchReference(t *testing.T) {
	ref := filepath.Join("..", "..", "..", "..", "shared", "reference", "transit-exchanges")
	files, _ := filepath.Glob(filepath.Join(ref, "*"))
	if len(files) == 0 {
		t.Skipf("reference recordings not found at %s", ref)
	}
	for _, f := range files {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(exchangesDir, filepath.Base(f)))
		if err != nil {
			t.Errorf("%s is not in %s: %v", filepath.Base(f), exchangesDir, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the reference recording", filepath.Base(f))
		}
	}
}

// replayer sends recorded requests and tracks which ciphertext the Server
// returned in place of each recorded one.
type replayer struct {
	t           *testing.T
	s           *Server
	ciphertexts map[string]string // recorded -> ours
	plaintexts  map[string]string // our ciphertext -> base64 plaintext
}

func newReplayer(t *testing.T, s *Server) *replayer {
	return &replayer{t: t, s: s, ciphertexts: map[string]string{}, plaintexts: map[string]string{}}
}

// replay sends ex's request and returns the differences from its recorded
// response.
func (r *replayer) replay(ex exchange) []string {
	r.t.Helper()
	reqBody := decodeJSON(r.t, ex.Request.Body)
	reqBody = r.substitute(reqBody)

	// The recording hides tokens as "<token>". A recorded 403 was made
	// with a wrong token; everything else with a valid one.
	token := r.s.RootToken
	if ex.Response.Status == http.StatusForbidden {
		token = "hvs.not-a-valid-token"
	}
	status, gotBody := r.send(ex.Request.Method, ex.Request.Path, token, reqBody)
	wantBody := decodeJSON(r.t, ex.Response.Body)

	var diffs []string
	if status != ex.Response.Status {
		diffs = append(diffs, fmt.Sprintf("status %d, want %d", status, ex.Response.Status))
	}
	if m, ok := wantBody.(map[string]any); ok && m["errors"] != nil {
		if !reflect.DeepEqual(gotBody, wantBody) {
			diffs = append(diffs, fmt.Sprintf("error body %s, want exactly %s", mustJSON(gotBody), mustJSON(wantBody)))
		}
		return diffs
	}
	diffs = append(diffs, compareStructure("", wantBody, gotBody)...)
	if len(diffs) == 0 {
		diffs = append(diffs, r.learn(ex, reqBody, wantBody, gotBody)...)
	}
	return diffs
}

func (r *replayer) send(method, path, token string, body any) (int, any) {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader([]byte(mustJSON(body)))
	}
	req, err := http.NewRequest(method, r.s.URL+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp.StatusCode, decodeJSON(r.t, data)
}

// substitute replaces recorded ciphertexts in a request with ours. A
// recorded ciphertext that is a tampered copy of one we know (same length,
// a long common prefix) gets the same tampering applied to ours.
func (r *replayer) substitute(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if s, ok := e.(string); ok && k == "ciphertext" {
				out[k] = r.mapCiphertext(s)
				continue
			}
			out[k] = r.substitute(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.substitute(e)
		}
		return out
	}
	return v
}

func (r *replayer) mapCiphertext(recorded string) string {
	if ours, ok := r.ciphertexts[recorded]; ok {
		return ours
	}
	best, bestLen := "", len("vault:v1:")+8
	for rec := range r.ciphertexts {
		if len(rec) != len(recorded) {
			continue
		}
		if p := commonPrefix(rec, recorded); p > bestLen {
			best, bestLen = rec, p
		}
	}
	if best == "" {
		return recorded // "garbage", "vault:v9:AAAA": sent as recorded
	}
	ours := r.ciphertexts[best]
	if len(ours) != len(best) {
		return recorded
	}
	return ours[:bestLen] + recorded[bestLen:]
}

func commonPrefix(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// learn records the ciphertexts of a successful response against the
// recorded ones, and checks that each decrypts to what was encrypted.
func (r *replayer) learn(ex exchange, reqBody, want, got any) []string {
	wantData, _ := lookup(want, "data").(map[string]any)
	gotData, _ := lookup(got, "data").(map[string]any)
	if wantData == nil || gotData == nil {
		return nil
	}
	type pair struct{ want, got, plaintext string }
	var pairs []pair
	input := func(i int) string { // the plaintext that went in for result i
		item := reqBody
		if i >= 0 {
			item = lookup(reqBody, fmt.Sprintf("batch_input.%d", i))
		}
		if strings.Contains(ex.Request.Path, "/rewrap/") {
			ct, _ := lookup(item, "ciphertext").(string)
			return r.plaintexts[ct]
		}
		pt, _ := lookup(item, "plaintext").(string)
		return pt
	}
	if w, ok := wantData["ciphertext"].(string); ok {
		g, _ := gotData["ciphertext"].(string)
		pairs = append(pairs, pair{w, g, input(-1)})
	}
	if ws, ok := wantData["batch_results"].([]any); ok {
		for i := range ws {
			w, _ := lookup(want, fmt.Sprintf("data.batch_results.%d.ciphertext", i)).(string)
			g, _ := lookup(got, fmt.Sprintf("data.batch_results.%d.ciphertext", i)).(string)
			if w != "" {
				pairs = append(pairs, pair{w, g, input(i)})
			}
		}
	}
	var diffs []string
	keyName := ex.Request.Path[strings.LastIndex(ex.Request.Path, "/")+1:]
	for _, p := range pairs {
		r.ciphertexts[p.want] = p.got
		r.plaintexts[p.got] = p.plaintext
		status, body := r.send(http.MethodPost, "/v1/transit/decrypt/"+keyName, r.s.RootToken, map[string]any{"ciphertext": p.got})
		pt, _ := lookup(body, "data.plaintext").(string)
		if status != http.StatusOK || pt != p.plaintext {
			diffs = append(diffs, fmt.Sprintf("ciphertext %s decrypts to (%d) %s, want plaintext %q", p.got, status, mustJSON(body), p.plaintext))
		}
	}
	return diffs
}

var (
	uuidRe       = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	ciphertextRe = regexp.MustCompile(`^vault:v([0-9]+):[A-Za-z0-9+/]+={0,2}$`)
	indexRe      = regexp.MustCompile(`\.[0-9]+(\.|$)`)
)

// volatile lists the fields whose values a real server cannot repeat, with
// how they are checked instead. Paths use .* for array indexes and map keys.
var volatile = map[string]func(want, got any) string{
	"request_id": func(_, got any) string {
		if s, _ := got.(string); !uuidRe.MatchString(s) {
			return "is not a UUID"
		}
		return ""
	},
	"data.ciphertext":                 checkCiphertext,
	"data.batch_results.*.ciphertext": checkCiphertext,
	"data.keys.*":                     sameType, // creation times
	// token lookup
	"data.accessor":      sameType,
	"data.creation_time": sameType,
	"data.id":            sameType,
	"data.issue_time":    sameType,
	// health
	"server_time_utc": sameType,
	"version":         sameType,
	"cluster_name":    sameType,
	"cluster_id":      sameType,
}

func checkCiphertext(want, got any) string {
	w, _ := want.(string)
	g, _ := got.(string)
	wm, gm := ciphertextRe.FindStringSubmatch(w), ciphertextRe.FindStringSubmatch(g)
	switch {
	case gm == nil:
		return "is not vault:v<N>:<base64>"
	case wm == nil:
		return "recorded value is not a ciphertext"
	case wm[1] != gm[1]:
		return fmt.Sprintf("has version v%s, want v%s", gm[1], wm[1])
	}
	return ""
}

func sameType(want, got any) string {
	if jsonType(want) != jsonType(got) {
		return fmt.Sprintf("is a %s, want a %s", jsonType(got), jsonType(want))
	}
	return ""
}

// compareStructure compares a recorded success body with ours: same keys,
// same types, equal values except for the volatile fields.
func compareStructure(path string, want, got any) []string {
	norm := indexRe.ReplaceAllString(path+".", ".*.")
	norm = strings.TrimSuffix(norm, ".")
	if strings.HasPrefix(norm, "data.keys.") {
		norm = "data.keys.*"
	}
	if check, ok := volatile[strings.TrimPrefix(norm, ".")]; ok {
		if msg := check(want, got); msg != "" {
			return []string{fmt.Sprintf("%s %s (got %s)", displayPath(path), msg, mustJSON(got))}
		}
		return nil
	}
	if jsonType(want) != jsonType(got) {
		return []string{fmt.Sprintf("%s is %s %s, want %s %s", displayPath(path), jsonType(got), mustJSON(got), jsonType(want), mustJSON(want))}
	}
	var diffs []string
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		for k := range w {
			if _, ok := g[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s is missing", displayPath(path+"."+k)))
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s is not in the recording", displayPath(path+"."+k)))
			}
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if gv, ok := g[k]; ok {
				diffs = append(diffs, compareStructure(path+"."+k, w[k], gv)...)
			}
		}
	case []any:
		g := got.([]any)
		if len(w) != len(g) {
			return []string{fmt.Sprintf("%s has %d elements, want %d", displayPath(path), len(g), len(w))}
		}
		for i := range w {
			diffs = append(diffs, compareStructure(fmt.Sprintf("%s.%d", path, i), w[i], g[i])...)
		}
	default:
		if !reflect.DeepEqual(want, got) {
			diffs = append(diffs, fmt.Sprintf("%s = %s, want %s", displayPath(path), mustJSON(got), mustJSON(want)))
		}
	}
	return diffs
}

func displayPath(p string) string {
	if p == "" {
		return "body"
	}
	return strings.TrimPrefix(p, ".")
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func decodeJSON(t *testing.T, data []byte) any {
	t.Helper()
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %q: %v", data, err)
	}
	return v
}

func mustJSON(v any) string {
	out, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(out)
}

// lookup follows a dotted path of object keys and array indexes.
func lookup(v any, path string) any {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// setJSON sets a dotted path in a recorded response body (for the
// mutation tests).
func setJSON(ex *exchange, path string, value any) {
	var body any
	dec := json.NewDecoder(bytes.NewReader(ex.Response.Body))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		panic(err)
	}
	parts := strings.Split(path, ".")
	cur := body
	for i, p := range parts {
		last := i == len(parts)-1
		switch x := cur.(type) {
		case map[string]any:
			if last {
				x[p] = value
			} else {
				cur = x[p]
			}
		case []any:
			var n int
			fmt.Sscan(p, &n)
			if last {
				x[n] = value
			} else {
				cur = x[n]
			}
		}
	}
	out, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	ex.Response.Body = out
}
