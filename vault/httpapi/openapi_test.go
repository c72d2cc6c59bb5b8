package httpapi

// Tests that keep openapi.json honest: the document is well formed, every
// route is documented, the vocabularies equal the Go ones, the documented
// shapes equal the Go JSON types, and a realistic scenario against a real
// in-process server only sends requests and receives responses that the
// document allows (JSON Schema 2020-12, through santhosh-tekuri/jsonschema).
//
// When an endpoint is added: document it (without "x-fieldvault-status":
// "planned" once it is routed), add its Go request/response types to
// oaGoTypes, and add success and error steps to TestOpenAPIConformance.
// The coverage check at the end of that test fails until both a 2xx and an
// error status of every routed operation have been seen.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/fieldvault/fieldvault/keys"
	"github.com/fieldvault/fieldvault/keys/kek"
	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/audit"
	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/store/pebble"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// oaBase is the URL the document is registered under in the schema
// compiler; "#/components/schemas/..." references resolve against it.
const oaBase = "https://fieldvault.invalid/openapi.json"

// oaStatusPlanned marks an operation that is specified but not routed yet.
const oaStatusPlanned = "planned"

var oaMethods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

// oaOp is one operation of the document.
type oaOp struct {
	Method  string // upper case
	Path    string // template, as in the document
	ID      string
	Planned bool
	Node    map[string]any
	Ptr     string // JSON pointer of the operation
	segs    []string
}

// oaSpec is the parsed document and a schema compiler that holds it.
type oaSpec struct {
	doc     map[string]any
	ops     []*oaOp
	comp    *jsonschema.Compiler
	schemas map[string]*jsonschema.Schema
}

func oaLoad(t testing.TB) *oaSpec {
	t.Helper()
	raw := OpenAPI()
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(oaBase, inst); err != nil {
		t.Fatalf("openapi.json as a schema resource: %v", err)
	}
	s := &oaSpec{doc: doc, comp: c, schemas: map[string]*jsonschema.Schema{}}
	paths, _ := doc["paths"].(map[string]any)
	for _, p := range sortedKeys(paths) {
		item, _ := paths[p].(map[string]any)
		for _, m := range oaMethods {
			node, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			id, _ := node["operationId"].(string)
			st, _ := node["x-fieldvault-status"].(string)
			s.ops = append(s.ops, &oaOp{Method: strings.ToUpper(m), Path: p, ID: id, Planned: st == oaStatusPlanned,
				Node: node, Ptr: "/paths/" + ptrEscape(p) + "/" + m, segs: strings.Split(strings.Trim(p, "/"), "/")})
		}
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func ptrEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// schema compiles (once) the schema at a JSON pointer of the document.
func (s *oaSpec) schema(t testing.TB, ptr string) *jsonschema.Schema {
	t.Helper()
	if sch, ok := s.schemas[ptr]; ok {
		return sch
	}
	toks := strings.Split(ptr, "/")
	for i := range toks {
		toks[i] = neturl.PathEscape(toks[i])
	}
	sch, err := s.comp.Compile(oaBase + "#" + strings.Join(toks, "/"))
	if err != nil {
		t.Fatalf("compiling the schema at %s: %v", ptr, err)
	}
	s.schemas[ptr] = sch
	return sch
}

// lookup returns the node at a JSON pointer.
func (s *oaSpec) lookup(ptr string) (any, bool) {
	var cur any = s.doc
	if ptr == "" {
		return cur, true
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// deref follows local $refs (responses, parameters, headers, schemas) and
// returns the node and its pointer.
func (s *oaSpec) deref(t testing.TB, node map[string]any, ptr string) (map[string]any, string) {
	t.Helper()
	for i := 0; i < 16; i++ {
		r, ok := node["$ref"].(string)
		if !ok {
			return node, ptr
		}
		if !strings.HasPrefix(r, "#/") {
			t.Fatalf("%s: only local references are used, got %q", ptr, r)
		}
		n, ok := s.lookup(r[1:])
		m, isMap := n.(map[string]any)
		if !ok || !isMap {
			t.Fatalf("%s: unresolved reference %q", ptr, r)
		}
		node, ptr = m, r[1:]
	}
	t.Fatalf("%s: reference cycle", ptr)
	return nil, ""
}

// find returns the operation serving a method and a concrete path; literal
// segments win over templated ones, as in net/http.
func (s *oaSpec) find(method, path string) *oaOp {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	var best *oaOp
	bestLit := -1
	for _, op := range s.ops {
		if op.Method != method || len(op.segs) != len(segs) {
			continue
		}
		lit, ok := 0, true
		for i, sg := range op.segs {
			switch {
			case strings.HasPrefix(sg, "{") && strings.HasSuffix(sg, "}"):
				if segs[i] == "" {
					ok = false
				}
			case sg == segs[i]:
				lit++
			default:
				ok = false
			}
		}
		if ok && lit > bestLit {
			best, bestLit = op, lit
		}
	}
	return best
}

func (s *oaSpec) enum(t testing.TB, name string) []string {
	t.Helper()
	n, ok := s.lookup("/components/schemas/" + name + "/enum")
	arr, isArr := n.([]any)
	if !ok || !isArr {
		t.Fatalf("components/schemas/%s has no enum", name)
	}
	out := make([]string, len(arr))
	for i, v := range arr {
		out[i], _ = v.(string)
	}
	return out
}

// ---------------------------------------------------------------------------
// The document itself.

func TestOpenAPIDocument(t *testing.T) {
	s := oaLoad(t)
	if v, _ := s.doc["openapi"].(string); v != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", v)
	}
	if _, ok := s.lookup("/components/securitySchemes/bearer"); !ok {
		t.Error("no bearer security scheme")
	}
	if len(s.ops) == 0 {
		t.Fatal("no operations")
	}
	ids := map[string]string{}
	params := regexp.MustCompile(`\{([^}]+)\}`)
	for _, op := range s.ops {
		where := op.Method + " " + op.Path
		if op.ID == "" {
			t.Errorf("%s: no operationId", where)
		} else if prev, dup := ids[op.ID]; dup {
			t.Errorf("operationId %s is used by %s and %s", op.ID, prev, where)
		}
		ids[op.ID] = where
		if st, ok := op.Node["x-fieldvault-status"]; ok && st != oaStatusPlanned {
			t.Errorf("%s: x-fieldvault-status %v: the only status is %q", where, st, oaStatusPlanned)
		}
		if perm, ok := op.Node["x-fieldvault-permission"].(string); ok && !slices.Contains(vault.Operations, perm) {
			t.Errorf("%s: x-fieldvault-permission %q is not an operation (vault.Operations)", where, perm)
		}
		if d, _ := op.Node["description"].(string); d == "" {
			t.Errorf("%s: no description", where)
		}
		// Path parameters declared exactly.
		want := map[string]bool{}
		for _, m := range params.FindAllStringSubmatch(op.Path, -1) {
			want[m[1]] = true
		}
		got := map[string]bool{}
		ps, _ := op.Node["parameters"].([]any)
		for i, p := range ps {
			pm, _ := p.(map[string]any)
			pm, pptr := s.deref(t, pm, fmt.Sprintf("%s/parameters/%d", op.Ptr, i))
			if pm["in"] == "path" {
				name, _ := pm["name"].(string)
				got[name] = true
				if pm["required"] != true {
					t.Errorf("%s: path parameter %s must be required", where, name)
				}
			}
			if _, ok := pm["schema"]; ok {
				s.schema(t, pptr+"/schema")
			}
		}
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s: path parameters %v, declared %v", where, sortedKeys(want), sortedKeys(got))
		}
		// Every schema compiles (the compiler also checks each against the
		// 2020-12 meta-schema and resolves every $ref).
		if rb, ok := op.Node["requestBody"].(map[string]any); ok {
			rb, rptr := s.deref(t, rb, op.Ptr+"/requestBody")
			content, _ := rb["content"].(map[string]any)
			if _, ok := content["application/json"]; !ok {
				t.Errorf("%s: the request body is not application/json", where)
			}
			for mt := range content {
				s.schema(t, rptr+"/content/"+ptrEscape(mt)+"/schema")
			}
			s.checkClosed(t, where+" request body", rptr+"/content/application~1json/schema", map[string]bool{})
		}
		responses, _ := op.Node["responses"].(map[string]any)
		if len(responses) == 0 {
			t.Errorf("%s: no responses", where)
		}
		has2xx := false
		for code, r := range responses {
			if !regexp.MustCompile(`^[1-5][0-9][0-9]$`).MatchString(code) {
				t.Errorf("%s: response %q: use explicit status codes", where, code)
				continue
			}
			has2xx = has2xx || code[0] == '2'
			rm, _ := r.(map[string]any)
			rm, rptr := s.deref(t, rm, op.Ptr+"/responses/"+code)
			if d, _ := rm["description"].(string); d == "" {
				t.Errorf("%s %s: no description", where, code)
			}
			content, _ := rm["content"].(map[string]any)
			for mt := range content {
				s.schema(t, rptr+"/content/"+ptrEscape(mt)+"/schema")
			}
			if code[0] >= '4' && content["application/json"] == nil {
				t.Errorf("%s %s: errors are application/json", where, code)
			}
		}
		if !has2xx {
			t.Errorf("%s: no success response", where)
		}
		sec, hasSec := op.Node["security"].([]any)
		public := hasSec && len(sec) == 0
		if _, ok := responses["401"]; ok == public {
			t.Errorf("%s: an authenticated operation documents 401, a public one does not (public=%v)", where, public)
		}
	}
	schemas, _ := s.doc["components"].(map[string]any)["schemas"].(map[string]any)
	for _, name := range sortedKeys(schemas) {
		s.schema(t, "/components/schemas/"+name)
	}
}

// checkClosed requires additionalProperties on every object schema reachable
// from ptr: the server rejects unknown fields, so a request schema must too
// (a map, such as evidence attributes, gives additionalProperties a schema).
func (s *oaSpec) checkClosed(t *testing.T, where, ptr string, seen map[string]bool) {
	t.Helper()
	if seen[ptr] {
		return
	}
	seen[ptr] = true
	n, ok := s.lookup(ptr)
	node, isMap := n.(map[string]any)
	if !ok || !isMap {
		return
	}
	node, ptr = s.deref(t, node, ptr)
	if _, isObj := node["properties"]; isObj || node["type"] == "object" {
		if _, ok := node["additionalProperties"]; !ok {
			t.Errorf("%s: the object schema at %s does not set additionalProperties", where, ptr)
		}
	}
	if props, ok := node["properties"].(map[string]any); ok {
		for _, k := range sortedKeys(props) {
			s.checkClosed(t, where, ptr+"/properties/"+ptrEscape(k), seen)
		}
	}
	for _, k := range []string{"items", "additionalProperties"} {
		if _, ok := node[k].(map[string]any); ok {
			s.checkClosed(t, where, ptr+"/"+k, seen)
		}
	}
	for _, k := range []string{"oneOf", "anyOf", "allOf"} {
		if arr, ok := node[k].([]any); ok {
			for i := range arr {
				s.checkClosed(t, where, fmt.Sprintf("%s/%s/%d", ptr, k, i), seen)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Routes.

// oaRoutes parses routes.go: "METHOD /path" patterns of m.Handle and
// m.HandleFunc.
func oaRoutes(t *testing.T) map[string]bool {
	t.Helper()
	src, err := os.ReadFile("routes.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`m\.Handle(?:Func)?\(\s*"([A-Z]+) (/[^"]*)"`)
	out := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(string(src), -1) {
		out[m[1]+" "+m[2]] = true
	}
	if len(out) == 0 {
		t.Fatal("no route found in routes.go")
	}
	return out
}

// oaExtraRoutes are the routes cmd/fieldvault mounts through Config.Extra
// (see serve.go); the tests mount them the same way unless routes.go
// already has them.
var oaExtraRoutes = []string{"GET /metrics"}

func TestOpenAPIRoutes(t *testing.T) {
	s := oaLoad(t)
	routed := oaRoutes(t)
	for _, r := range oaExtraRoutes {
		routed[r] = true
	}
	documented := map[string]*oaOp{}
	for _, op := range s.ops {
		documented[op.Method+" "+op.Path] = op
	}
	for _, r := range sortedKeys(routed) {
		op := documented[r]
		switch {
		case op == nil:
			t.Errorf("route %q is not in openapi.json", r)
		case op.Planned:
			t.Errorf("route %q is served but openapi.json marks it planned: remove \"x-fieldvault-status\" and add "+
				"success and error steps to TestOpenAPIConformance", r)
		}
	}
	for _, r := range sortedKeys(documented) {
		if !documented[r].Planned && !routed[r] {
			t.Errorf("openapi.json documents %q, which no route serves (mark it \"x-fieldvault-status\": \"planned\" "+
				"if it is not built yet)", r)
		}
	}
}

// ---------------------------------------------------------------------------
// Vocabularies.

// goConsts returns, in declaration order, the values of the string
// constants of the non-test Go files of dir for which keep(name, type) is
// true.
func goConsts(t *testing.T, dir string, keep func(name, typ string) bool) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var out []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, sp := range gd.Specs {
				vs := sp.(*ast.ValueSpec)
				typ := ""
				if id, ok := vs.Type.(*ast.Ident); ok {
					typ = id.Name
				}
				for i, name := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING || !keep(name.Name, typ) {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, v)
				}
			}
		}
	}
	return out
}

func prefixed(p string) func(name, typ string) bool {
	return func(name, _ string) bool { return strings.HasPrefix(name, p) }
}

func typed(typ string) func(name, typ string) bool {
	return func(_, t string) bool { return t == typ }
}

func setOf(xs ...[]string) map[string]bool {
	out := map[string]bool{}
	for _, x := range xs {
		for _, v := range x {
			out[v] = true
		}
	}
	return out
}

// oaErrorCodes returns every error code the server can answer with: the
// policy's reason codes, the vault's codes and the literal codes of this
// package (MALFORMED_JSON, BODY_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE).
func oaErrorCodes(t *testing.T) map[string]bool {
	t.Helper()
	codes := setOf(goConsts(t, "../policy", prefixed("Code")), goConsts(t, "..", prefixed("Code")))
	files, _ := filepath.Glob("*.go")
	lit := regexp.MustCompile(`Code:\s*"([A-Z][A-Z0-9_]*)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
			codes[m[1]] = true
		}
	}
	for _, c := range []string{"MALFORMED_JSON", "BODY_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"} {
		if !codes[c] {
			t.Errorf("the code %s is no longer found in this package's sources: update the test", c)
		}
	}
	return codes
}

func TestOpenAPIVocabularies(t *testing.T) {
	s := oaLoad(t)
	ordered := func(name string, want []string) {
		t.Helper()
		if got := s.enum(t, name); !slices.Equal(got, want) {
			t.Errorf("components/schemas/%s enum = %q,\n want %q (the Go vocabulary, in order)", name, got, want)
		}
	}
	same := func(name string, got []string, want map[string]bool) {
		t.Helper()
		for _, c := range sortedKeys(want) {
			if !slices.Contains(got, c) {
				t.Errorf("%s: %s is missing from openapi.json", name, c)
			}
		}
		for _, c := range got {
			if !want[c] {
				t.Errorf("%s: %s is documented but the Go code does not define it", name, c)
			}
		}
		if len(setOf(got)) != len(got) {
			t.Errorf("%s: duplicate entries", name)
		}
	}

	ordered("Purpose", policy.Purposes)
	ordered("Ground", policy.Grounds)
	ordered("EvidenceKind", policy.EvidenceKinds)
	ordered("TransferBasisType", goConsts(t, "../policy", prefixed("Transfer")))
	ordered("RevealLevel", goConsts(t, "../policy", prefixed("Reveal")))
	ordered("Decision", []string{policy.Allow, policy.AllowMasked, policy.Deny})
	var cats []string
	for _, c := range tokenizer.All() {
		cats = append(cats, c.Name)
	}
	ordered("Category", cats)
	ordered("CollectionMethod", goConsts(t, "../consent", prefixed("Method")))
	ordered("ConsentStatus", goConsts(t, "../consent", prefixed("Status")))
	ordered("ConsentEventType", goConsts(t, "../consent", prefixed("Event")))
	ordered("GrantorParty", goConsts(t, "../consent", prefixed("Party")))
	ordered("SubjectType", goConsts(t, "../subject", typed("Type")))
	ordered("SubjectState", goConsts(t, "../subject", typed("State")))
	var bands []string
	for _, b := range goConsts(t, "../subject", typed("AgeBand")) {
		if b != string(subject.AgeUnknown) {
			bands = append(bands, b)
		}
	}
	ordered("AgeBand", bands)
	ordered("KeyVersionState", goConsts(t, "../../keys", prefixed("State")))

	// Vocabularies inline in a schema.
	inline := func(ptr string, want []string) {
		t.Helper()
		n, _ := s.lookup(ptr)
		arr, _ := n.([]any)
		var got []string
		for _, v := range arr {
			got = append(got, fmt.Sprint(v))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", ptr, got, want)
		}
	}
	inline("/components/schemas/Job/properties/state/enum", goConsts(t, "..", prefixed("Job")))
	inline("/components/schemas/CategoryKeys/properties/tier/enum",
		[]string{tokenizer.T0.String(), tokenizer.T1.String(), tokenizer.T2.String(), tokenizer.T2Plus.String()})
	src, err := os.ReadFile("../erasure.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`erasureTriggers = \[\]string\{([^}]*)\}`).FindSubmatch(src)
	if m == nil {
		t.Fatal("erasureTriggers not found in vault/erasure.go: update the test")
	}
	var triggers []string
	for _, q := range regexp.MustCompile(`"[^"]*"`).FindAll(m[1], -1) {
		triggers = append(triggers, string(q[1:len(q)-1]))
	}
	inline("/components/schemas/EraseRequest/properties/trigger/enum", triggers)

	// Reason codes: the policy's codes plus the vault's own denial.
	same("ReasonCode", s.enum(t, "ReasonCode"), setOf(goConsts(t, "../policy", prefixed("Code")), []string{vault.CodeValueUnreadable}))

	// Error codes: everything, except codes documented ahead of the code
	// (x-fieldvault-planned-codes).
	want := oaErrorCodes(t)
	var planned []string
	if n, ok := s.lookup("/components/schemas/ErrorCode/x-fieldvault-planned-codes"); ok {
		for _, v := range n.([]any) {
			c := v.(string)
			if want[c] {
				t.Logf("ErrorCode: %s is defined now: remove it from x-fieldvault-planned-codes", c)
			}
			planned = append(planned, c)
			want[c] = true
		}
	}
	got := s.enum(t, "ErrorCode")
	for _, c := range planned {
		if !slices.Contains(got, c) {
			t.Errorf("ErrorCode: planned code %s is not in the enum", c)
		}
	}
	same("ErrorCode", got, want)
}

// ---------------------------------------------------------------------------
// Go types.

// oaGoTypes maps component schemas to the Go types the server encodes or
// decodes. Requests: the properties must be exactly the struct's JSON
// fields (the server rejects the others), required ones among them.
// Responses: the properties must be exactly the JSON fields, and the
// required ones exactly those without omitempty/omitzero.
var oaGoTypes = []struct {
	schema  string
	value   any
	request bool
}{
	{"TokenizeRequest", vault.TokenizeRequest{}, true},
	{"TokenizeResult", vault.TokenizeResult{}, false},
	{"DetokenizeRequest", vault.DetokenizeRequest{}, true},
	{"DetokenizeResult", vault.DetokenizeResult{}, false},
	{"DetokenizeDenied", detokenizeDenied{}, false},
	{"Error", errorBody{}, false},
	{"PutSubjectRequest", vault.PutSubjectRequest{}, true},
	{"Subject", subject.Subject{}, false},
	{"SuspendRequest", vault.SuspendRequest{}, true},
	{"ProofRequest", vault.ProofRequest{}, true},
	{"RestrictRequest", vault.RestrictRequest{}, true},
	{"ObjectionRequest", vault.ObjectionRequest{}, true},
	{"LegalHoldRequest", vault.LegalHoldRequest{}, true},
	{"RetentionRequest", vault.RetentionRequest{}, true},
	{"EraseRequest", vault.EraseRequest{}, true},
	{"ErasureCertificate", vault.ErasureCertificate{}, false},
	{"AccessReport", vault.AccessReport{}, false},
	{"CreateEvidenceRequest", vault.CreateEvidenceRequest{}, true},
	{"Evidence", policy.Evidence{}, false},
	{"GrantConsentRequest", vault.GrantConsentRequest{}, true},
	{"Consent", consentView{}, false},
	{"WithdrawConsentRequest", vault.WithdrawConsentRequest{}, true},
	{"KeysView", vault.KeysView{}, false},
	{"CategoryKeys", vault.CategoryKeysView{}, false},
	{"KeyConfigRequest", vault.KeyConfigRequest{}, true},
	{"RewrapRequest", vault.RewrapRequest{}, true},
	{"Job", vault.Job{}, false},
	{"CreateAPIKeyRequest", vault.CreateAPIKeyRequest{}, true},
	{"CreateAPIKeyResult", vault.CreateAPIKeyResult{}, false},
}

type oaField struct {
	name     string
	typ      reflect.Type
	optional bool
}

// jsonFields lists a struct's JSON fields as encoding/json sees them
// (embedded structs without a tag are flattened).
func jsonFields(t reflect.Type) []oaField {
	var out []oaField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" {
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, jsonFields(ft)...)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		optional := false
		for _, o := range strings.Split(opts, ",") {
			optional = optional || o == "omitempty" || o == "omitzero"
		}
		out = append(out, oaField{name: name, typ: f.Type, optional: optional})
	}
	return out
}

var timeType = reflect.TypeOf(time.Time{})

// schemaTypes returns the JSON types a schema allows ("type" as a string or
// an array).
func schemaTypes(node map[string]any) []string {
	switch v := node["type"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	return nil
}

// objectBranch picks, from a schema that is a choice (anyOf/oneOf of an
// object and null), the branch that is not null.
func (s *oaSpec) objectBranch(t *testing.T, node map[string]any, ptr string) (map[string]any, string) {
	node, ptr = s.deref(t, node, ptr)
	for _, k := range []string{"anyOf", "oneOf"} {
		arr, ok := node[k].([]any)
		if !ok || node["type"] != nil || node["properties"] != nil {
			continue
		}
		var pick map[string]any
		var pptr string
		n := 0
		for i, b := range arr {
			bm, _ := b.(map[string]any)
			bm, bptr := s.deref(t, bm, fmt.Sprintf("%s/%s/%d", ptr, k, i))
			if slices.Equal(schemaTypes(bm), []string{"null"}) {
				continue
			}
			pick, pptr = bm, bptr
			n++
		}
		if n == 1 {
			return pick, pptr
		}
	}
	return node, ptr
}

func (s *oaSpec) compareGo(t *testing.T, where string, gt reflect.Type, node map[string]any, ptr string, request bool, seen map[string]bool) {
	t.Helper()
	for gt.Kind() == reflect.Pointer {
		gt = gt.Elem()
	}
	node, ptr = s.objectBranch(t, node, ptr)
	key := gt.String() + "@" + ptr
	if seen[key] {
		return
	}
	seen[key] = true
	types := schemaTypes(node)
	want := ""
	switch {
	case gt == timeType:
		want = "string"
		if node["format"] != "date-time" {
			t.Errorf("%s (%s): a time.Time is a string with format date-time", where, ptr)
		}
	case gt.Kind() == reflect.Struct:
		want = "object"
	case gt.Kind() == reflect.Slice:
		want = "array"
	case gt.Kind() == reflect.Map:
		want = "object"
	case gt.Kind() == reflect.String:
		want = "string"
	case gt.Kind() == reflect.Bool:
		want = "boolean"
	case gt.Kind() >= reflect.Int && gt.Kind() <= reflect.Uint64:
		want = "integer"
	case gt.Kind() == reflect.Float32 || gt.Kind() == reflect.Float64:
		want = "number"
	default:
		t.Errorf("%s: Go type %s not handled by the test", where, gt)
		return
	}
	if !slices.Contains(types, want) {
		t.Errorf("%s (%s): Go type %s is JSON %s, the schema says %v", where, ptr, gt, want, types)
		return
	}
	switch {
	case gt == timeType:
	case gt.Kind() == reflect.Struct:
		props, _ := node["properties"].(map[string]any)
		required := map[string]bool{}
		if rs, ok := node["required"].([]any); ok {
			for _, r := range rs {
				required[fmt.Sprint(r)] = true
			}
		}
		if node["additionalProperties"] != false {
			t.Errorf("%s (%s): an object of Go type %s must set additionalProperties false", where, ptr, gt)
		}
		fields := jsonFields(gt)
		names := map[string]bool{}
		for _, f := range fields {
			names[f.name] = true
			p, ok := props[f.name].(map[string]any)
			if !ok {
				t.Errorf("%s (%s): field %q of %s is not documented", where, ptr, f.name, gt)
				continue
			}
			switch {
			case request:
			case f.optional && required[f.name]:
				t.Errorf("%s (%s): %q is omitempty in %s but required in the schema", where, ptr, f.name, gt)
			case !f.optional && !required[f.name]:
				t.Errorf("%s (%s): %q is always present in %s but not required in the schema", where, ptr, f.name, gt)
			}
			s.compareGo(t, where+"."+f.name, f.typ, p, ptr+"/properties/"+ptrEscape(f.name), request, seen)
		}
		for _, p := range sortedKeys(props) {
			if !names[p] {
				t.Errorf("%s (%s): property %q is not a JSON field of %s", where, ptr, p, gt)
			}
		}
		for _, r := range sortedKeys(required) {
			if !names[r] {
				t.Errorf("%s (%s): required %q is not a JSON field of %s", where, ptr, r, gt)
			}
		}
	case gt.Kind() == reflect.Slice:
		items, ok := node["items"].(map[string]any)
		if !ok {
			t.Errorf("%s (%s): array without items", where, ptr)
			return
		}
		s.compareGo(t, where+"[]", gt.Elem(), items, ptr+"/items", request, seen)
	case gt.Kind() == reflect.Map:
		ap, ok := node["additionalProperties"].(map[string]any)
		if !ok {
			t.Errorf("%s (%s): a map is an object whose additionalProperties is the value schema", where, ptr)
			return
		}
		s.compareGo(t, where+"{}", gt.Elem(), ap, ptr+"/additionalProperties", request, seen)
	}
}

func TestOpenAPIGoTypes(t *testing.T) {
	s := oaLoad(t)
	for _, tc := range oaGoTypes {
		ptr := "/components/schemas/" + tc.schema
		n, ok := s.lookup(ptr)
		node, isMap := n.(map[string]any)
		if !ok || !isMap {
			t.Errorf("components/schemas/%s is missing", tc.schema)
			continue
		}
		s.compareGo(t, tc.schema, reflect.TypeOf(tc.value), node, ptr, tc.request, map[string]bool{})
	}
}

// ---------------------------------------------------------------------------
// Real requests and responses.

type oaServer struct {
	spec  *oaSpec
	srv   *httptest.Server
	admin string
	st    *pebble.Store
	alog  *audit.Log
	// seen records the statuses observed per operation id.
	seen map[string]map[int]bool
}

func oaNewServer(t *testing.T, spec *oaSpec) *oaServer {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := pebble.Open(filepath.Join(dir, "store"), pebble.Options{CacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := kek.LoadOrCreateLocal(filepath.Join(dir, "kek.key"))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keys.New(keys.Config{KEK: k, Storage: vault.KeyStorage(st)})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := audit.OpenFileSink(audit.FileConfig{Dir: filepath.Join(dir, "audit")})
	if err != nil {
		t.Fatal(err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	refKey := make([]byte, audit.RefKeySize)
	if _, err := rand.Read(refKey); err != nil {
		t.Fatal(err)
	}
	alog, err := audit.New(audit.Config{Node: "oa-test", RefKey: refKey, SigningKey: priv, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(vault.Config{Store: st, Keys: ring, Audit: alog, AuditSource: sink, Node: "oa-test", KEK: k})
	if err != nil {
		t.Fatal(err)
	}
	admin, created, err := v.EnsureAdminKey(ctx, "")
	if err != nil || !created {
		t.Fatalf("admin key: %v (created %v)", err, created)
	}
	// /metrics as cmd/fieldvault mounts it.
	extra := map[string]http.Handler{}
	routes := oaRoutes(t)
	for _, r := range oaExtraRoutes {
		if !routes[r] {
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector())
			extra[r] = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
		}
	}
	srv := httptest.NewServer(New(Config{Vault: v, MaxBodyBytes: 64 << 10, Extra: extra}))
	t.Cleanup(func() {
		srv.Close()
		_ = alog.Close()
		_ = sink.Close()
		_ = st.Close()
	})
	return &oaServer{spec: spec, srv: srv, admin: admin, st: st, alog: alog, seen: map[string]map[int]bool{}}
}

// oaCall is one request of the scenario.
type oaCall struct {
	Method, Path string
	Key          string // bearer API key; "" sends none
	Body         any    // JSON-encoded when not nil
	Raw          []byte // sent as is when not nil
	ContentType  string // default application/json when there is a body
	Header       map[string]string
	// BadBody: the body is deliberately outside the documented request
	// schema (the test checks that the schema rejects it too).
	BadBody  bool
	Want     int    // expected status
	WantCode string // expected error.code
}

type oaResp struct {
	Status int
	Header http.Header
	Raw    []byte
	JSON   map[string]any
}

// str digs a string out of a decoded JSON object.
func (r *oaResp) str(path ...any) string {
	var cur any = r.JSON
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := cur.(map[string]any)
			cur = m[k]
		case int:
			a, _ := cur.([]any)
			if k >= len(a) {
				return ""
			}
			cur = a[k]
		}
	}
	s, _ := cur.(string)
	return s
}

func (h *oaServer) do(t *testing.T, c oaCall) *oaResp {
	t.Helper()
	where := c.Method + " " + c.Path
	var body []byte
	switch {
	case c.Raw != nil:
		body = c.Raw
	case c.Body != nil:
		b, err := json.Marshal(c.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = b
	}
	u, err := neturl.Parse(h.srv.URL + c.Path)
	if err != nil {
		t.Fatal(err)
	}
	op := h.spec.find(c.Method, u.EscapedPath())
	if op == nil {
		t.Errorf("%s: no documented operation serves this request", where)
	} else if op.Planned {
		t.Errorf("%s: %s is marked planned: it must not be called", where, op.ID)
	}
	if op != nil && body != nil {
		h.checkRequest(t, where, op, body, c.BadBody)
	}
	req, err := http.NewRequest(c.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body = nil
		req.ContentLength = 0
	}
	if body != nil {
		ct := c.ContentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if c.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	for k, v := range c.Header {
		req.Header.Set(k, v)
	}
	res, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	raw, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	r := &oaResp{Status: res.StatusCode, Header: res.Header, Raw: raw}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(raw, &r.JSON)
	}
	if c.Want != 0 && r.Status != c.Want {
		t.Errorf("%s: status %d, want %d: %s", where, r.Status, c.Want, oaShort(raw))
	}
	if c.WantCode != "" {
		if got := r.str("error", "code"); got != c.WantCode {
			t.Errorf("%s: error.code %q, want %q: %s", where, got, c.WantCode, oaShort(raw))
		}
	}
	if op != nil {
		h.checkResponse(t, where, op, r)
		if h.seen[op.ID] == nil {
			h.seen[op.ID] = map[int]bool{}
		}
		h.seen[op.ID][r.Status] = true
	}
	return r
}

func oaShort(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "..."
	}
	return string(b)
}

func (h *oaServer) checkRequest(t *testing.T, where string, op *oaOp, body []byte, bad bool) {
	t.Helper()
	rb, ok := op.Node["requestBody"].(map[string]any)
	if !ok {
		if !bad {
			t.Errorf("%s: %s documents no request body, but the scenario sends one", where, op.ID)
		}
		return
	}
	rb, ptr := h.spec.deref(t, rb, op.Ptr+"/requestBody")
	if _, ok := rb["content"].(map[string]any)["application/json"]; !ok {
		t.Fatalf("%s: no application/json request body", where)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		if !bad {
			t.Errorf("%s: the request body is not JSON: %v", where, err)
		}
		return
	}
	verr := h.spec.schema(t, ptr+"/content/application~1json/schema").Validate(inst)
	switch {
	case verr != nil && !bad:
		t.Errorf("%s: the request body does not match the %s request schema:\n%v\nbody: %s", where, op.ID, verr, oaShort(body))
	case verr == nil && bad:
		t.Errorf("%s: the scenario marks this body invalid, but the %s request schema accepts it: %s", where, op.ID, oaShort(body))
	}
}

func (h *oaServer) checkResponse(t *testing.T, where string, op *oaOp, r *oaResp) {
	t.Helper()
	code := strconv.Itoa(r.Status)
	responses, _ := op.Node["responses"].(map[string]any)
	rn, ok := responses[code].(map[string]any)
	if !ok {
		t.Errorf("%s: status %d is not documented for %s: %s", where, r.Status, op.ID, oaShort(r.Raw))
		return
	}
	rn, ptr := h.spec.deref(t, rn, op.Ptr+"/responses/"+code)
	if hs, ok := rn["headers"].(map[string]any); ok {
		for _, name := range sortedKeys(hs) {
			hn, _ := hs[name].(map[string]any)
			hn, _ = h.spec.deref(t, hn, ptr+"/headers/"+name)
			if hn["required"] == true && r.Header.Get(name) == "" {
				t.Errorf("%s %d: required header %s is missing", where, r.Status, name)
			}
		}
	}
	content, _ := rn["content"].(map[string]any)
	if len(content) == 0 {
		if len(r.Raw) > 0 {
			t.Errorf("%s %d: the document says no body, got %s", where, r.Status, oaShort(r.Raw))
		}
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		t.Errorf("%s %d: Content-Type %q: %v", where, r.Status, r.Header.Get("Content-Type"), err)
		return
	}
	if _, ok := content[mt]; !ok {
		t.Errorf("%s %d: Content-Type %s is not documented (%v)", where, r.Status, mt, sortedKeys(content))
		return
	}
	if mt != "application/json" {
		if len(r.Raw) == 0 {
			t.Errorf("%s %d: empty body", where, r.Status)
		}
		return
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.Raw))
	if err != nil {
		t.Errorf("%s %d: the body is not JSON: %v", where, r.Status, err)
		return
	}
	if err := h.spec.schema(t, ptr+"/content/application~1json/schema").Validate(inst); err != nil {
		t.Errorf("%s %d: the response does not match the documented schema:\n%v\nbody: %s", where, r.Status, err, oaShort(r.Raw))
	}
}

// checkCoverage requires, for every routed operation, a success and (when
// the document lists any 4xx or 503) an error response.
func (h *oaServer) checkCoverage(t *testing.T) {
	t.Helper()
	for _, op := range h.spec.ops {
		if op.Planned {
			continue
		}
		ok, bad := false, false
		for st := range h.seen[op.ID] {
			ok = ok || st < 300
			bad = bad || st >= 400
		}
		errDocumented := false
		responses, _ := op.Node["responses"].(map[string]any)
		for code := range responses {
			errDocumented = errDocumented || (code[0] == '4' || code == "503")
		}
		var sts []int
		for st := range h.seen[op.ID] {
			sts = append(sts, st)
		}
		sort.Ints(sts)
		t.Logf("%-20s %-6s %-50s %v", op.ID, op.Method, op.Path, sts)
		if !ok {
			t.Errorf("coverage: no success response of %s (%s %s) was checked", op.ID, op.Method, op.Path)
		}
		if errDocumented && !bad {
			t.Errorf("coverage: no error response of %s (%s %s) was checked", op.ID, op.Method, op.Path)
		}
	}
}

func TestOpenAPIServedDocument(t *testing.T) {
	s := oaLoad(t)
	h := oaNewServer(t, s)
	r := h.do(t, oaCall{Method: "GET", Path: "/v1/openapi.json", Want: 200})
	if !bytes.Equal(r.Raw, OpenAPI()) {
		t.Error("GET /v1/openapi.json differs from the embedded openapi.json")
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
	}
}

func TestOpenAPIConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	s := oaLoad(t)
	h := oaNewServer(t, s)
	admin := h.admin
	now := time.Now().UTC()
	rfc := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }

	// Operations.
	h.do(t, oaCall{Method: "GET", Path: "/healthz", Want: 200})
	h.do(t, oaCall{Method: "GET", Path: "/readyz", Want: 200})
	h.do(t, oaCall{Method: "GET", Path: "/v1/openapi.json", Want: 200})
	h.do(t, oaCall{Method: "GET", Path: "/metrics", Want: 200})

	// API keys and authentication.
	newKey := func(principal string, roles ...string) string {
		r := h.do(t, oaCall{Method: "POST", Path: "/v1/auth/keys", Key: admin,
			Body: map[string]any{"principal": principal, "roles": roles}, Want: 201})
		return r.str("key")
	}
	svc := newKey("svc-1", "service")
	sec := newKey("sec-1", "security")
	dpo := newKey("dpo-1", "dpo")
	legal1 := newKey("legal-1", "legal")
	legal2 := newKey("legal-2", "legal")
	aud := newKey("aud-1", "auditor")
	keyBody := map[string]any{"principal": "x-1", "roles": []string{"service"}}
	h.do(t, oaCall{Method: "POST", Path: "/v1/auth/keys", Body: keyBody, Want: 401, WantCode: "UNAUTHORIZED"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/auth/keys", Key: "fvk_not-a-real-key", Body: keyBody, Want: 401, WantCode: "UNAUTHORIZED"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/auth/keys", Key: svc, Body: keyBody, Want: 403, WantCode: "FORBIDDEN"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/auth/keys", Key: admin, Body: map[string]any{"principal": "x-1", "roles": []string{}},
		BadBody: true, Want: 400, WantCode: "INVALID_REQUEST"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/auth/keys", Key: admin, Body: map[string]any{"principal": "x-1", "roles": []string{"wizard"}},
		Want: 400, WantCode: "INVALID_REQUEST"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/auth/keys", Key: admin, Raw: []byte(`{"principal":`), BadBody: true,
		Want: 400, WantCode: "MALFORMED_JSON"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/auth/keys", Key: admin, Body: map[string]any{"principal": "x-1", "roles": []string{"service"}, "admin": true},
		BadBody: true, Want: 400, WantCode: "MALFORMED_JSON"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/auth/keys", Key: admin, Body: keyBody, ContentType: "text/plain",
		Want: 400, WantCode: "UNSUPPORTED_MEDIA_TYPE"})
	r := h.do(t, oaCall{Method: "GET", Path: "/healthz", Header: map[string]string{"X-Request-Id": "oa-test-1"}, Want: 200})
	if got := r.Header.Get("X-Request-Id"); got != "oa-test-1" {
		t.Errorf("X-Request-Id %q, want the caller's", got)
	}

	// Subjects.
	h.do(t, oaCall{Method: "PUT", Path: "/v1/subjects/u1", Key: svc, Body: map[string]any{"type": "data_subject", "birth_date": "1990-04-01"}, Want: 201})
	h.do(t, oaCall{Method: "PUT", Path: "/v1/subjects/u1", Key: svc, Body: map[string]any{"type": "data_subject", "birth_date": "1990-04-01",
		"married": true, "capable_of_consent": true}, Want: 200})
	h.do(t, oaCall{Method: "PUT", Path: "/v1/subjects/ec1", Key: svc, Body: map[string]any{"type": "third_party", "linked_to": "u1"}, Want: 201})
	for _, id := range []string{"u2", "u3"} {
		h.do(t, oaCall{Method: "PUT", Path: "/v1/subjects/" + id, Key: svc, Body: map[string]any{"type": "data_subject", "birth_date": "1985-01-31"}, Want: 201})
	}
	h.do(t, oaCall{Method: "PUT", Path: "/v1/subjects/u9", Key: svc, Body: map[string]any{"birth_date": "1990-01-01"}, BadBody: true,
		Want: 400, WantCode: "INVALID_SUBJECT"})
	h.do(t, oaCall{Method: "PUT", Path: "/v1/subjects/u1", Key: svc, Body: map[string]any{"type": "third_party", "linked_to": "u2"},
		Want: 400, WantCode: "INVALID_SUBJECT"})
	h.do(t, oaCall{Method: "PUT", Path: "/v1/subjects/u1", Key: sec, Body: map[string]any{"type": "data_subject"}, Want: 403, WantCode: "FORBIDDEN"})
	h.do(t, oaCall{Method: "GET", Path: "/v1/subjects/u1", Key: svc, Want: 200})
	h.do(t, oaCall{Method: "GET", Path: "/v1/subjects/ghost", Key: svc, Want: 404, WantCode: "SUBJECT_NOT_FOUND"})
	h.do(t, oaCall{Method: "GET", Path: "/v1/subjects/a%20b", Key: svc, Want: 400, WantCode: "INVALID_SUBJECT"})
	h.do(t, oaCall{Method: "GET", Path: "/v1/subjects/u1", Key: sec, Want: 403, WantCode: "FORBIDDEN"})

	// Tokenise.
	r = h.do(t, oaCall{Method: "POST", Path: "/v1/tokenize", Key: svc, Body: map[string]any{"items": []map[string]any{
		{"category": "contact.phone", "value": "081-234-5678", "subject": "u1"},
		{"category": "govid.th_national_id", "value": "1-1037-02071-83-8", "subject": "u1", "keep_last4": true, "deterministic": false},
		{"category": "contact.email", "value": "Somchai@Example.COM", "subject": "u1", "keep_domain": true},
		{"category": "identity.name", "value": "สมชาย ใจดี", "subject": "u1", "expires_at": rfc(24 * time.Hour)},
		{"category": "third_party.emergency_contact", "value": "Malee +66 81 111 2222", "subject": "ec1"},
		{"category": "contact.phone", "value": "+66 89 999 0000", "subject": "u2"},
	}}, Want: 200})
	phone, nid, email, ec, phone2 := r.str("items", 0, "token"), r.str("items", 1, "token"), r.str("items", 2, "token"),
		r.str("items", 4, "token"), r.str("items", 5, "token")
	r = h.do(t, oaCall{Method: "POST", Path: "/v1/tokenize", Key: svc, Body: map[string]any{"items": []map[string]any{
		{"category": "contact.phone", "value": "081-234-5678", "subject": "u1"},
	}}, Want: 200})
	if r.str("items", 0, "token") != phone {
		t.Error("a deterministic phone token changed")
	}
	bad := []map[string]any{{"category": "contact.phone", "value": "0812345679", "subject": "u1"}, {"category": "nope", "value": "x", "subject": "u1"}}
	h.do(t, oaCall{Method: "POST", Path: "/v1/tokenize", Key: svc, Body: map[string]any{"items": bad}, BadBody: true, Want: 400, WantCode: "INVALID_ITEMS"})
	r = h.do(t, oaCall{Method: "POST", Path: "/v1/tokenize", Key: svc, Body: map[string]any{"items": bad, "partial_success": true}, BadBody: true, Want: 200})
	if r.str("items", 1, "error", "code") != "UNKNOWN_CATEGORY" {
		t.Errorf("partial_success: %s", oaShort(r.Raw))
	}
	h.do(t, oaCall{Method: "POST", Path: "/v1/tokenize", Key: svc, Body: map[string]any{"items": []any{}}, BadBody: true, Want: 400, WantCode: "EMPTY_BATCH"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/tokenize", Key: sec, Body: map[string]any{"items": bad[:1]}, Want: 403, WantCode: "FORBIDDEN"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/tokenize", Key: svc, Body: map[string]any{"items": []map[string]any{
		{"category": "identity.name", "value": strings.Repeat("a", 70<<10), "subject": "u1"}}}, Want: 413, WantCode: "BODY_TOO_LARGE"})

	// Consents.
	grant := func(subject string, cats, purposes []string) map[string]any {
		return map[string]any{"subject": subject, "granted_by": []map[string]any{{"party": "subject", "id": subject, "verified": true}},
			"categories": cats, "purposes": purposes, "recipients": []map[string]any{{"id": "crm", "country": "TH"}},
			"notice_version": "2020-09-15", "collection_method": "in_app", "language": "th", "channel": "in_app"}
	}
	r = h.do(t, oaCall{Method: "POST", Path: "/v1/consents", Key: svc, Body: grant("u1", []string{"contact.phone"}, []string{"marketing"}), Want: 201})
	consentID := r.str("id")
	r = h.do(t, oaCall{Method: "POST", Path: "/v1/consents", Key: svc, Body: grant("u1", []string{"contact.email"}, []string{"service_notices"}), Want: 201})
	consent2 := r.str("id")
	h.do(t, oaCall{Method: "POST", Path: "/v1/consents", Key: svc, Body: grant("ghost", []string{"contact.phone"}, []string{"marketing"}),
		Want: 404, WantCode: "SUBJECT_NOT_FOUND"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/consents", Key: svc, Body: grant("u1", []string{}, []string{"marketing"}), BadBody: true,
		Want: 400, WantCode: "INVALID_CONSENT"})
	h.do(t, oaCall{Method: "GET", Path: "/v1/consents/" + consentID, Key: svc, Want: 200})
	h.do(t, oaCall{Method: "GET", Path: "/v1/consents/c_missing", Key: svc, Want: 404, WantCode: "CONSENT_NOT_FOUND"})
	h.do(t, oaCall{Method: "GET", Path: "/v1/consents/a%20b", Key: svc, Want: 400, WantCode: "INVALID_REQUEST"})
	h.do(t, oaCall{Method: "GET", Path: "/v1/consents/" + consentID, Key: sec, Want: 403, WantCode: "FORBIDDEN"})

	// Detokenise.
	det := func(purpose, ground, ref, reveal string, tokens ...string) map[string]any {
		b := map[string]any{"purpose": purpose, "ground": map[string]any{"type": ground, "ref": ref},
			"recipient": map[string]any{"id": "crm", "country": "TH"}, "tokens": tokens}
		if reveal != "" {
			b["reveal"] = reveal
		}
		return b
	}
	r = h.do(t, oaCall{Method: "POST", Path: "/v1/detokenize", Key: svc, Body: det("marketing", "consent", consentID, "full", phone, nid), Want: 200})
	if r.str("items", 0, "value") != "+66812345678" || r.str("items", 1, "denied", "code") == "" {
		t.Errorf("detokenize: %s", oaShort(r.Raw))
	}
	h.do(t, oaCall{Method: "POST", Path: "/v1/detokenize", Key: svc, Body: det("marketing", "consent", consentID, "partial", phone), Want: 200})
	h.do(t, oaCall{Method: "POST", Path: "/v1/detokenize", Key: svc, Body: det("marketing", "consent", consentID, "", phone, phone), Want: 200})
	h.do(t, oaCall{Method: "POST", Path: "/v1/detokenize", Key: svc, Body: det("marketing", "consent", consentID, "full", "tok_nope_1", "tok_nope_2"),
		Want: 404, WantCode: "TOKEN_UNKNOWN"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/detokenize", Key: svc, Body: det("marketing", "consent", consentID, "full", nid, ec), Want: 403})
	h.do(t, oaCall{Method: "POST", Path: "/v1/detokenize", Key: svc, Body: det("", "consent", consentID, "full", phone), BadBody: true,
		Want: 400, WantCode: "MISSING_PURPOSE"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/detokenize", Key: svc, Body: det("marketing", "consent", consentID, "everything", phone), BadBody: true,
		Want: 400, WantCode: "INVALID_REVEAL"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/detokenize", Key: svc, Body: det("marketing", "consent", consentID, "full"), BadBody: true,
		Want: 400, WantCode: "EMPTY_BATCH"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/detokenize", Key: svc, Body: det("bogus_purpose", "consent", consentID, "full", phone), BadBody: true,
		Want: 403, WantCode: "PURPOSE_UNKNOWN"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/detokenize", Key: sec, Body: det("marketing", "consent", consentID, "full", phone), Want: 403, WantCode: "FORBIDDEN"})

	// Withdrawal takes effect on the next call.
	r = h.do(t, oaCall{Method: "POST", Path: "/v1/consents/" + consentID + "/withdraw", Key: svc, Body: map[string]any{"channel": "in_app"}, Want: 200})
	if r.str("status") != "ConsentWithdrawn" {
		t.Errorf("withdraw: %s", oaShort(r.Raw))
	}
	h.do(t, oaCall{Method: "POST", Path: "/v1/detokenize", Key: svc, Body: det("marketing", "consent", consentID, "full", phone),
		Want: 403, WantCode: "CONSENT_WITHDRAWN"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/consents/" + consentID + "/withdraw", Key: svc, Body: map[string]any{"channel": "in_app"}, Want: 409, WantCode: "ALREADY_WITHDRAWN"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/consents/" + consent2 + "/withdraw", Key: svc, Body: map[string]any{"colour": "red"}, BadBody: true,
		Want: 400, WantCode: "MALFORMED_JSON"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/consents/" + consent2 + "/withdraw", Key: svc, Body: map[string]any{"actor": "u1", "channel": "email"}, Want: 200})
	h.do(t, oaCall{Method: "POST", Path: "/v1/consents/c_missing/withdraw", Key: svc, Body: map[string]any{"channel": "in_app"}, Want: 404, WantCode: "CONSENT_NOT_FOUND"})

	// Evidence.
	r = h.do(t, oaCall{Method: "POST", Path: "/v1/evidence", Key: legal1, Body: map[string]any{"kind": "legal_case", "subjects": []string{"u1", "u2"},
		"categories": []string{"contact.phone"}, "purposes": []string{"dispute"}, "valid_from": rfc(-time.Hour), "valid_until": rfc(90 * 24 * time.Hour),
		"attributes": map[string]string{"reference": "case-42", "status": "open"}}, Want: 201})
	caseID := r.str("id")
	h.do(t, oaCall{Method: "POST", Path: "/v1/evidence", Key: legal1, Body: map[string]any{"kind": "court_order"}, BadBody: true,
		Want: 400, WantCode: "INVALID_EVIDENCE"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/evidence", Key: legal1, Body: map[string]any{"kind": "authority_instrument", "subjects": []string{"u1"}},
		Want: 400, WantCode: "INVALID_EVIDENCE"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/evidence", Key: svc, Body: map[string]any{"kind": "contract"}, Want: 403, WantCode: "FORBIDDEN"})
	h.do(t, oaCall{Method: "GET", Path: "/v1/evidence/" + caseID, Key: dpo, Want: 200})
	h.do(t, oaCall{Method: "GET", Path: "/v1/evidence/e_missing", Key: dpo, Want: 404, WantCode: "EVIDENCE_NOT_FOUND"})
	h.do(t, oaCall{Method: "GET", Path: "/v1/evidence/" + caseID, Key: svc, Want: 403, WantCode: "FORBIDDEN"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/evidence/" + caseID + "/approve", Key: legal1, Want: 200})
	h.do(t, oaCall{Method: "POST", Path: "/v1/evidence/" + caseID + "/approve", Key: legal1, Want: 409, WantCode: "ALREADY_APPROVED"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/evidence/" + caseID + "/approve", Key: legal2, Want: 200})
	h.do(t, oaCall{Method: "POST", Path: "/v1/evidence/e_missing/approve", Key: legal2, Want: 404, WantCode: "EVIDENCE_NOT_FOUND"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/detokenize", Key: legal1, Body: det("dispute", "legal_claims", caseID, "full", phone, nid)})
	r = h.do(t, oaCall{Method: "POST", Path: "/v1/evidence", Key: legal1, Body: map[string]any{"kind": "contract", "subjects": []string{"u1"}}, Want: 201})
	contractID := r.str("id")
	h.do(t, oaCall{Method: "POST", Path: "/v1/evidence/" + contractID + "/revoke", Key: legal1, Want: 200})
	h.do(t, oaCall{Method: "POST", Path: "/v1/evidence/" + contractID + "/revoke", Key: legal1, Want: 409, WantCode: "INVALID_TRANSITION"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/evidence/" + contractID + "/approve", Key: legal2, Want: 409, WantCode: "INVALID_TRANSITION"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/evidence/e_missing/revoke", Key: legal1, Want: 404, WantCode: "EVIDENCE_NOT_FOUND"})

	// Subject lifecycle.
	sub := func(id, action string) string { return "/v1/subjects/" + id + "/" + action }
	r = h.do(t, oaCall{Method: "POST", Path: sub("u1", "suspend"), Key: dpo, Body: map[string]any{"detected_at": rfc(-time.Hour), "reason": "document mismatch"}, Want: 200})
	if r.str("state") != "suspended_pending_evidence" {
		t.Errorf("suspend: %s", oaShort(r.Raw))
	}
	h.do(t, oaCall{Method: "POST", Path: sub("u1", "suspend"), Key: dpo, Want: 409, WantCode: "INVALID_TRANSITION"})
	h.do(t, oaCall{Method: "POST", Path: sub("u1", "proof"), Key: dpo, Body: map[string]any{"received_at": rfc(-time.Minute)}, Want: 200})
	h.do(t, oaCall{Method: "POST", Path: sub("u1", "proof"), Key: dpo, Want: 409, WantCode: "INVALID_TRANSITION"})
	h.do(t, oaCall{Method: "POST", Path: sub("u1", "reinstate"), Key: dpo, Want: 200})
	h.do(t, oaCall{Method: "POST", Path: sub("u1", "reinstate"), Key: dpo, Want: 409, WantCode: "INVALID_TRANSITION"})
	h.do(t, oaCall{Method: "POST", Path: sub("u3", "suspend"), Key: dpo, Body: map[string]any{"detected_at": rfc(time.Hour)}, Want: 400, WantCode: "INVALID_SUBJECT"})
	h.do(t, oaCall{Method: "POST", Path: sub("u3", "suspend"), Key: dpo, Body: map[string]any{"detected_at": rfc(-20 * 24 * time.Hour)}, Want: 200})
	h.do(t, oaCall{Method: "POST", Path: sub("u3", "proof"), Key: dpo, Body: map[string]any{}, Want: 409, WantCode: "DEADLINE_PASSED"})
	h.do(t, oaCall{Method: "POST", Path: sub("ghost", "suspend"), Key: dpo, Want: 404, WantCode: "SUBJECT_NOT_FOUND"})
	h.do(t, oaCall{Method: "POST", Path: sub("u1", "suspend"), Key: sec, Want: 403, WantCode: "FORBIDDEN"})
	h.do(t, oaCall{Method: "POST", Path: sub("u1", "restrict"), Key: dpo, Body: map[string]any{"reason": "accuracy check", "categories": []string{"contact.email"}}, Want: 200})
	h.do(t, oaCall{Method: "POST", Path: sub("u1", "restrict"), Key: dpo, Want: 409, WantCode: "INVALID_TRANSITION"})
	h.do(t, oaCall{Method: "POST", Path: sub("u1", "restrict"), Key: dpo, Body: map[string]any{"categories": []string{"contact.fax"}}, BadBody: true,
		Want: 400, WantCode: "UNKNOWN_CATEGORY"})
	h.do(t, oaCall{Method: "POST", Path: sub("u1", "unrestrict"), Key: dpo, Want: 200})
	h.do(t, oaCall{Method: "POST", Path: sub("u1", "unrestrict"), Key: dpo, Want: 409, WantCode: "INVALID_TRANSITION"})
	h.do(t, oaCall{Method: "POST", Path: sub("u1", "objection"), Key: dpo, Body: map[string]any{"purpose": "analytics"}, Want: 200})
	h.do(t, oaCall{Method: "POST", Path: sub("u1", "objection"), Key: dpo, Want: 200})
	h.do(t, oaCall{Method: "POST", Path: sub("u1", "objection"), Key: dpo, Body: map[string]any{"purpose": "gossip"}, BadBody: true,
		Want: 400, WantCode: "INVALID_REQUEST"})

	// Legal holds, retention, erasure.
	hold := map[string]any{"categories": []string{"contact.phone"}, "ref": caseID, "until": rfc(30 * 24 * time.Hour)}
	r = h.do(t, oaCall{Method: "POST", Path: sub("u2", "legal-holds"), Key: legal1, Body: hold, Want: 201})
	holdID := r.str("legal_holds", 0, "id")
	h.do(t, oaCall{Method: "POST", Path: sub("u2", "legal-holds"), Key: legal1,
		Body: map[string]any{"categories": []string{"contact.phone"}, "ref": "e_missing", "until": rfc(time.Hour)}, Want: 404, WantCode: "EVIDENCE_NOT_FOUND"})
	h.do(t, oaCall{Method: "POST", Path: sub("u2", "legal-holds"), Key: legal1,
		Body: map[string]any{"categories": []string{"contact.phone"}, "ref": caseID, "until": rfc(-time.Hour)}, Want: 400, WantCode: "INVALID_SUBJECT"})
	h.do(t, oaCall{Method: "POST", Path: sub("u2", "legal-holds"), Key: legal1, Body: map[string]any{"ref": caseID}, BadBody: true, Want: 400})
	h.do(t, oaCall{Method: "POST", Path: sub("u2", "retention"), Key: dpo, Body: map[string]any{"category": "criminal_record", "reason": "vetting"}, Want: 200})
	h.do(t, oaCall{Method: "POST", Path: sub("u2", "retention"), Key: dpo, Body: map[string]any{"category": "contact.email", "shred_at": rfc(365 * 24 * time.Hour)}, Want: 200})
	h.do(t, oaCall{Method: "POST", Path: sub("u2", "retention"), Key: dpo, Body: map[string]any{"category": "contact.email"}, Want: 400, WantCode: "INVALID_REQUEST"})
	h.do(t, oaCall{Method: "POST", Path: sub("u2", "erase"), Key: dpo, Body: map[string]any{"categories": []string{"contact.phone"}, "trigger": "s33_request"},
		Want: 409, WantCode: "LEGAL_HOLD"})
	h.do(t, oaCall{Method: "POST", Path: sub("u2", "erase"), Key: dpo, Body: map[string]any{"trigger": "whim"}, BadBody: true, Want: 400, WantCode: "INVALID_REQUEST"})
	h.do(t, oaCall{Method: "POST", Path: sub("u2", "erase"), Key: svc, Body: map[string]any{"trigger": "s33_request"}, Want: 403, WantCode: "FORBIDDEN"})
	h.do(t, oaCall{Method: "DELETE", Path: sub("u2", "legal-holds/") + holdID, Key: legal1, Want: 200})
	h.do(t, oaCall{Method: "DELETE", Path: sub("u2", "legal-holds/") + holdID, Key: legal1, Want: 404, WantCode: "NOT_FOUND"})
	r = h.do(t, oaCall{Method: "POST", Path: sub("u2", "erase"), Key: dpo, Body: map[string]any{"trigger": "s33_request", "approver": "dpo-2"}, Want: 200})
	if r.str("subject_state") != "erased" {
		t.Errorf("erase: %s", oaShort(r.Raw))
	}
	h.do(t, oaCall{Method: "POST", Path: sub("u2", "erase"), Key: dpo, Body: map[string]any{"trigger": "s33_request"}, Want: 409, WantCode: "INVALID_TRANSITION"})
	h.do(t, oaCall{Method: "POST", Path: sub("ghost", "erase"), Key: dpo, Body: map[string]any{"trigger": "other"}, Want: 404, WantCode: "SUBJECT_NOT_FOUND"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/detokenize", Key: legal1, Body: det("dispute", "legal_claims", caseID, "full", phone2),
		Want: 403, WantCode: "TOKEN_ERASED"})
	h.do(t, oaCall{Method: "GET", Path: sub("u2", "erasures"), Key: dpo, Want: 200})
	h.do(t, oaCall{Method: "GET", Path: sub("u2", "erasures"), Key: sec, Want: 403, WantCode: "FORBIDDEN"})
	h.do(t, oaCall{Method: "GET", Path: sub("u1", "access-report"), Key: dpo, Want: 200})
	h.do(t, oaCall{Method: "GET", Path: sub("u2", "access-report"), Key: aud, Want: 200})
	h.do(t, oaCall{Method: "GET", Path: sub("u1", "access-report"), Key: svc, Want: 403, WantCode: "FORBIDDEN"})
	h.do(t, oaCall{Method: "GET", Path: sub("a%20b", "access-report"), Key: dpo, Want: 400, WantCode: "INVALID_SUBJECT"})

	// Keys.
	h.do(t, oaCall{Method: "GET", Path: "/v1/keys", Key: sec, Want: 200})
	h.do(t, oaCall{Method: "GET", Path: "/v1/keys", Key: svc, Want: 403, WantCode: "FORBIDDEN"})
	r = h.do(t, oaCall{Method: "POST", Path: "/v1/keys/contact.phone/rotate", Key: sec, Want: 200})
	if r.str("category") != "contact.phone" {
		t.Errorf("rotate: %s", oaShort(r.Raw))
	}
	h.do(t, oaCall{Method: "POST", Path: "/v1/keys/contact.fax/rotate", Key: sec, Want: 404, WantCode: "UNKNOWN_CATEGORY"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/keys/contact.phone/config", Key: sec, Body: map[string]any{"auto_rotate_period": "720h"}, Want: 200})
	h.do(t, oaCall{Method: "POST", Path: "/v1/keys/contact.phone/config", Key: sec, Body: map[string]any{"auto_rotate_period": "soon"},
		Want: 400, WantCode: "INVALID_REQUEST"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/keys/contact.phone/versions/1/disable", Key: sec, Want: 409, WantCode: "KEY_VERSION_IN_USE"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/keys/contact.phone/versions/x/disable", Key: sec, Want: 400, WantCode: "INVALID_REQUEST"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/keys/contact.phone/versions/99/disable", Key: sec, Want: 404, WantCode: "UNKNOWN_KEY_VERSION"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/keys/rewrap", Key: sec, Body: map[string]any{"rate": -1}, BadBody: true, Want: 400, WantCode: "INVALID_REQUEST"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/keys/rewrap", Key: sec, Body: map[string]any{"category": "contact.fax"}, BadBody: true,
		Want: 404, WantCode: "UNKNOWN_CATEGORY"})
	r = h.do(t, oaCall{Method: "POST", Path: "/v1/keys/rewrap", Key: sec, Body: map[string]any{"category": "contact.phone"}, Want: 202})
	jobID := r.str("id")
	deadline := time.Now().Add(20 * time.Second)
	for {
		r = h.do(t, oaCall{Method: "GET", Path: "/v1/jobs/" + jobID, Key: sec, Want: 200})
		if r.str("state") != vault.JobRunning || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.str("state") != vault.JobDone {
		t.Errorf("rewrap job: %s", oaShort(r.Raw))
	}
	h.do(t, oaCall{Method: "POST", Path: "/v1/keys/contact.phone/versions/1/disable", Key: sec, Want: 200})
	h.do(t, oaCall{Method: "POST", Path: "/v1/keys/contact.phone/versions/1/enable", Key: sec, Want: 200})
	h.do(t, oaCall{Method: "GET", Path: "/v1/jobs/j_missing", Key: sec, Want: 404, WantCode: "JOB_NOT_FOUND"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/keys/kek/rotate", Key: sec, Want: 200})
	h.do(t, oaCall{Method: "POST", Path: "/v1/keys/kek/rotate", Key: svc, Want: 403, WantCode: "FORBIDDEN"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/detokenize", Key: svc, Body: det("service_notices", "consent", consent2, "full", email), Want: 403})

	// Deleting keys.
	h.do(t, oaCall{Method: "DELETE", Path: "/v1/auth/keys/aud-1", Key: admin, Want: 200})
	h.do(t, oaCall{Method: "DELETE", Path: "/v1/auth/keys/aud-1", Key: admin, Want: 404, WantCode: "NOT_FOUND"})
	h.do(t, oaCall{Method: "DELETE", Path: "/v1/auth/keys/svc-1", Key: svc, Want: 403, WantCode: "FORBIDDEN"})
	h.do(t, oaCall{Method: "GET", Path: "/v1/keys", Key: aud, Want: 401, WantCode: "UNAUTHORIZED"})

	// Unavailable: the audit log first (nothing is released), then the store.
	if err := h.alog.Close(); err != nil {
		t.Fatal(err)
	}
	h.do(t, oaCall{Method: "POST", Path: "/v1/detokenize", Key: legal1, Body: det("dispute", "legal_claims", caseID, "full", phone),
		Want: 503, WantCode: "AUDIT_UNAVAILABLE"})
	h.do(t, oaCall{Method: "POST", Path: "/v1/consents", Key: svc, Body: grant("u1", []string{"contact.phone"}, []string{"support"}),
		Want: 503, WantCode: "AUDIT_UNAVAILABLE"})
	if err := h.st.Close(); err != nil {
		t.Fatal(err)
	}
	h.do(t, oaCall{Method: "GET", Path: "/readyz", Want: 503, WantCode: "STORE_UNAVAILABLE"})

	h.checkCoverage(t)
}
