package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The tests run in deploy/; the repository root is "..".
const repoRoot = ".."

// readYAMLDocs decodes every document of a (possibly multi-document) YAML
// file. yaml.v3 rejects duplicate keys, which Kubernetes and compose would
// silently resolve to the last one.
func readYAMLDocs(t *testing.T, path string) []any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := decodeYAMLDocs(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return docs
}

func decodeYAMLDocs(data []byte) ([]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []any
	for {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if doc != nil { // an empty document (a trailing ---)
			docs = append(docs, doc)
		}
	}
}

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	docs := readYAMLDocs(t, path)
	if len(docs) != 1 {
		t.Fatalf("%s: %d YAML documents, want 1", path, len(docs))
	}
	m, ok := docs[0].(map[string]any)
	if !ok {
		t.Fatalf("%s: top level is %T, want a mapping", path, docs[0])
	}
	return m
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if dec.More() {
		t.Fatalf("%s: trailing data after the JSON object", path)
	}
	return m
}

// filesUnder lists the files under dir (relative to deploy/) whose names end
// in one of exts, sorted.
func filesUnder(t *testing.T, dir string, exts ...string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		for _, e := range exts {
			if strings.HasSuffix(d.Name(), e) {
				out = append(out, path)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// get walks maps (by string key) and lists (by int index); nil when absent.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k < 0 || k >= len(l) {
				return nil
			}
			v = l[k]
		default:
			panic(fmt.Sprintf("get: bad path element %T", p))
		}
	}
	return v
}

func getMap(v any, path ...any) map[string]any {
	m, _ := get(v, path...).(map[string]any)
	return m
}

func getList(v any, path ...any) []any {
	l, _ := get(v, path...).([]any)
	return l
}

// getStr returns a scalar as a string ("" when absent).
func getStr(v any, path ...any) string {
	switch s := get(v, path...).(type) {
	case nil:
		return ""
	case string:
		return s
	case json.Number:
		return s.String()
	default:
		return fmt.Sprint(s)
	}
}

func getInt(t *testing.T, v any, path ...any) int {
	t.Helper()
	switch n := get(v, path...).(type) {
	case int:
		return n
	case json.Number:
		i, err := strconv.Atoi(n.String())
		if err != nil {
			t.Fatalf("%v: %v", path, err)
		}
		return i
	case nil:
		t.Fatalf("%v: missing", path)
	}
	t.Fatalf("%v: %v is not an integer", path, get(v, path...))
	return 0
}

func strList(v any) []string {
	var out []string
	for _, x := range getList(v) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// subset reports whether every key of sel is in labels with the same value.
func subset(sel, labels map[string]any) bool {
	if len(sel) == 0 {
		return false // an empty selector selects everything: never what we mean here
	}
	for k, v := range sel {
		if lv, ok := labels[k]; !ok || fmt.Sprint(lv) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}

// serveFlags parses cmd/fieldvault/config.go and returns the names of the
// flags of `fieldvault serve` (fs.StringVar(&c.X, "name", ...), fs.String(
// "name", ...), ...).
func serveFlags(t *testing.T) map[string]bool {
	t.Helper()
	path := filepath.Join(repoRoot, "cmd", "fieldvault", "config.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); !ok || id.Name != "fs" {
			return true
		}
		idx := 0
		if strings.HasSuffix(sel.Sel.Name, "Var") {
			idx = 1
		}
		if len(call.Args) <= idx {
			return true
		}
		if lit, ok := call.Args[idx].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			name, err := strconv.Unquote(lit.Value)
			if err == nil {
				flags[name] = true
			}
		}
		return true
	})
	if len(flags) < 10 || !flags["listen"] || !flags["node"] {
		t.Fatalf("found only %d serve flags in %s: %v (did the flag code change shape?)", len(flags), path, flags)
	}
	return flags
}

// envName is cmd/fieldvault's flag-to-environment mapping.
func envName(flag string) string {
	return "FIELDVAULT_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// checkEnvNames reports FIELDVAULT_* variables that no serve flag reads.
func checkEnvNames(t *testing.T, where string, names []string) {
	t.Helper()
	valid := map[string]bool{}
	for f := range serveFlags(t) {
		valid[envName(f)] = true
	}
	for _, n := range names {
		if strings.HasPrefix(n, "FIELDVAULT_") && !valid[n] {
			t.Errorf("%s: %s is not the environment variable of any `fieldvault serve` flag", where, n)
		}
	}
}
