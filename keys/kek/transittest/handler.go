package transittest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Capabilities, as in Vault ACL policies.
const (
	capCreate = "create"
	capRead   = "read"
	capUpdate = "update"
	capDelete = "delete"
	capList   = "list"
)

// request is one authenticated API request, as a route sees it.
type request struct {
	op    string // capRead, capUpdate (create or update), capDelete, capList
	path  string
	data  map[string]json.RawMessage
	token *token
}

// route is what a path resolves to. A nil handler means the operation is
// not supported there (405). exists, when set, is the existence check that
// turns an update of a missing item into a create, for the ACL.
type route struct {
	read   func(*request) reply
	write  func(*request) reply
	del    func(*request) reply
	exists func() bool
}

// handle runs with s.mu held.
func (s *Server) handle(r *http.Request, path string, body []byte) reply {
	if path == "sys/health" {
		return s.health()
	}
	if s.sealed {
		return errorReply(http.StatusServiceUnavailable, "Vault is sealed")
	}
	tok := s.authenticate(r.Header)
	if tok == nil {
		return permissionDenied()
	}
	data, err := parseBody(body)
	if err != nil {
		return badRequest("failed to parse JSON input: " + err.Error())
	}
	var op string
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		op = capRead
		if v := r.URL.Query().Get("list"); v == "true" || v == "1" {
			op = capList
		}
	case http.MethodPost, http.MethodPut:
		op = capUpdate
	case http.MethodDelete:
		op = capDelete
	case "LIST":
		op = capList
	default:
		return unsupportedOperation()
	}
	req := &request{op: op, path: path, data: data, token: tok}

	rt := s.route(path)
	capability := op
	if op == capUpdate && rt != nil && rt.exists != nil && !rt.exists() {
		capability = capCreate
	}
	if !s.allowed(tok, path, capability) {
		return permissionDenied()
	}
	if rt == nil {
		return noHandler(path)
	}
	var h func(*request) reply
	switch op {
	case capRead:
		h = rt.read
	case capUpdate:
		h = rt.write
	case capDelete:
		h = rt.del
	}
	if h == nil {
		return unsupportedOperation()
	}
	return h(req)
}

// route resolves a path (without /v1/) to its handlers, or nil.
func (s *Server) route(path string) *route {
	switch {
	case path == "auth/token/lookup-self":
		return &route{read: s.lookupSelf, write: s.lookupSelf}
	case path == "auth/token/renew-self":
		return &route{write: s.renewSelf}
	case strings.HasPrefix(path, "sys/mounts/"):
		return s.mountRoute(strings.Trim(strings.TrimPrefix(path, "sys/mounts/"), "/"))
	case strings.HasPrefix(path, "sys/policies/acl/"):
		return s.policyRoute(strings.TrimPrefix(path, "sys/policies/acl/"))
	}
	// The longest mount that prefixes the path.
	var best string
	for m := range s.mounts {
		if strings.HasPrefix(path, m+"/") && len(m) > len(best) {
			best = m
		}
	}
	if best == "" {
		return nil
	}
	return s.mounts[best].route(strings.TrimPrefix(path, best+"/"))
}

// parseBody decodes a JSON object body; an empty body or null is no data.
func parseBody(body []byte) (map[string]json.RawMessage, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || string(body) == "null" {
		return nil, nil
	}
	var data map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&data); err != nil {
		return nil, err
	}
	return data, nil
}

// Field getters, with Vault's weak typing: a number may be sent as a string
// and a string as a number.

var errFieldType = errors.New("wrong type")

func (r *request) has(k string) bool {
	raw, ok := r.data[k]
	return ok && string(raw) != "null"
}

func (r *request) str(k string) (string, bool, error) {
	return rawString(r.data[k])
}

func rawString(raw json.RawMessage) (string, bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), true, nil
	}
	return "", false, errFieldType
}

func (r *request) int(k string) (int, bool, error) {
	return rawInt(r.data[k])
}

func rawInt(raw json.RawMessage) (int, bool, error) {
	s, ok, err := rawString(raw)
	if !ok || err != nil {
		return 0, ok, err
	}
	if s == "" {
		return 0, true, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, false, errFieldType
	}
	return n, true, nil
}

func (r *request) bool(k string) (bool, bool, error) {
	raw := r.data[k]
	if len(raw) == 0 || string(raw) == "null" {
		return false, false, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		return b, true, nil
	}
	s, _, err := rawString(raw)
	if err != nil {
		return false, false, err
	}
	b, err = strconv.ParseBool(s)
	if err != nil {
		return false, false, errFieldType
	}
	return b, true, nil
}

// duration reads a Vault duration: seconds as a number, or a Go duration
// string ("24h", "30s").
func (r *request) duration(k string) (time.Duration, bool, error) {
	s, ok, err := r.str(k)
	if !ok || err != nil {
		return 0, ok, err
	}
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, true, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, false, errFieldType
	}
	return d, true, nil
}

func fieldError(k string, err error) reply {
	return badRequest(fmt.Sprintf("error converting input for field %q: %v", k, err))
}
