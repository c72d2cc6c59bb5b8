package transittest

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl"
	"github.com/hashicorp/hcl/hcl/ast"
)

// builtinPolicies are there from the start, as in Vault. "root" is handled
// by the token itself.
var builtinPolicies = map[string]string{
	"default": `
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self"  { capabilities = ["update"] }
path "auth/token/revoke-self" { capabilities = ["update"] }
path "sys/capabilities-self"  { capabilities = ["update"] }
`,
}

var knownCapabilities = []string{capCreate, capRead, capUpdate, capDelete, capList, "sudo", "deny", "patch"}

// policy is a parsed ACL policy.
type policy struct {
	name  string
	src   string
	rules []rule
}

// rule is one path block. A pattern may end in "*" (prefix match) and use
// "+" for exactly one path segment.
type rule struct {
	pattern string
	caps    []string
}

func (r rule) glob() bool {
	return strings.HasSuffix(r.pattern, "*") || strings.Contains(r.pattern, "+")
}

// literalPrefix is the part of the pattern before its first wildcard; the
// longest wins among matching globs.
func (r rule) literalPrefix() int {
	i := strings.IndexAny(r.pattern, "*+")
	if i < 0 {
		return len(r.pattern)
	}
	return i
}

func (r rule) matches(path string) bool {
	pat := r.pattern
	prefix := strings.HasSuffix(pat, "*")
	pat = strings.TrimSuffix(pat, "*")
	ps, xs := strings.Split(pat, "/"), strings.Split(path, "/")
	for i, seg := range ps {
		if i >= len(xs) {
			return false
		}
		last := i == len(ps)-1
		switch {
		case seg == "+":
			if xs[i] == "" {
				return false
			}
		case last && prefix:
			return strings.HasPrefix(xs[i], seg)
		case seg != xs[i]:
			return false
		}
	}
	return prefix || len(ps) == len(xs)
}

// parsePolicy parses a policy in Vault's HCL: path blocks with a
// capabilities list. Unknown keys are refused, as Vault refuses them.
func parsePolicy(name, src string) (*policy, error) {
	root, err := hcl.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("failed to parse policy: %v", err)
	}
	list, ok := root.Node.(*ast.ObjectList)
	if !ok {
		return nil, fmt.Errorf("failed to parse policy: does not contain a root object")
	}
	for _, item := range list.Items {
		if len(item.Keys) == 0 || item.Keys[0].Token.Value() != "path" {
			return nil, fmt.Errorf("failed to parse policy: invalid key %q", item.Keys[0].Token.Text)
		}
		obj, ok := item.Val.(*ast.ObjectType)
		if !ok {
			return nil, fmt.Errorf("failed to parse policy: path block is not an object")
		}
		for _, field := range obj.List.Items {
			switch k := field.Keys[0].Token.Value(); k {
			case "capabilities", "allowed_parameters", "denied_parameters", "required_parameters", "min_wrapping_ttl", "max_wrapping_ttl", "policy":
			default:
				return nil, fmt.Errorf("failed to parse policy: invalid key %q on path", k)
			}
		}
	}
	var decoded struct {
		Paths []struct {
			Pattern      string   `hcl:",key"`
			Capabilities []string `hcl:"capabilities"`
			Policy       string   `hcl:"policy"`
		} `hcl:"path"`
	}
	if err := hcl.DecodeObject(&decoded, root); err != nil {
		return nil, fmt.Errorf("failed to parse policy: %v", err)
	}
	p := &policy{name: name, src: src}
	for _, pb := range decoded.Paths {
		pat := strings.TrimPrefix(pb.Pattern, "/")
		if i := strings.Index(pat, "*"); i >= 0 && i != len(pat)-1 {
			return nil, fmt.Errorf("failed to parse policy: path %q: the glob character * may only end a path", pb.Pattern)
		}
		caps := slices.Clone(pb.Capabilities)
		switch pb.Policy { // the legacy shorthand
		case "":
		case "deny":
			caps = append(caps, "deny")
		case "read":
			caps = append(caps, capRead, capList)
		case "write":
			caps = append(caps, capCreate, capRead, capUpdate, capDelete, capList)
		default:
			return nil, fmt.Errorf("failed to parse policy: path %q: invalid policy %q", pb.Pattern, pb.Policy)
		}
		for _, c := range caps {
			if !slices.Contains(knownCapabilities, c) {
				return nil, fmt.Errorf("failed to parse policy: path %q: invalid capability %q", pb.Pattern, c)
			}
		}
		p.rules = append(p.rules, rule{pattern: pat, caps: caps})
	}
	return p, nil
}

// capabilities returns what tok may do on path: the capabilities of the
// exact rules for it if any, else of the matching glob with the longest
// literal prefix, merged across the token's policies.
func (s *Server) capabilities(tok *token, path string) map[string]bool {
	var exact, globs []rule
	for _, name := range tok.policies {
		p := s.policies[name]
		if p == nil {
			continue
		}
		for _, r := range p.rules {
			switch {
			case !r.glob() && r.pattern == path:
				exact = append(exact, r)
			case r.glob() && r.matches(path):
				globs = append(globs, r)
			}
		}
	}
	chosen := exact
	if len(chosen) == 0 && len(globs) > 0 {
		sort.SliceStable(globs, func(i, j int) bool { return globs[i].literalPrefix() > globs[j].literalPrefix() })
		best := globs[0].literalPrefix()
		for _, r := range globs {
			if r.literalPrefix() == best {
				chosen = append(chosen, r)
			}
		}
	}
	caps := make(map[string]bool)
	for _, r := range chosen {
		for _, c := range r.caps {
			caps[c] = true
		}
	}
	return caps
}

func (s *Server) allowed(tok *token, path, capability string) bool {
	if tok.root {
		return true
	}
	caps := s.capabilities(tok, path)
	return !caps["deny"] && caps[capability]
}

// SetPolicy writes an ACL policy in Vault's HCL, as PUT
// sys/policies/acl/<name> does.
func (s *Server) SetPolicy(name, src string) error {
	name = strings.ToLower(name)
	if name == "root" {
		return fmt.Errorf("cannot update %q policy", name)
	}
	p, err := parsePolicy(name, src)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policies[name] = p
	return nil
}

// Policy returns the source of a stored policy and whether it exists.
func (s *Server) Policy(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.policies[strings.ToLower(name)]
	if p == nil {
		return "", false
	}
	return p.src, true
}

func (s *Server) policyRoute(name string) *route {
	name = strings.ToLower(name)
	if name == "" || strings.Contains(name, "/") {
		return nil
	}
	return &route{
		read: func(*request) reply {
			p := s.policies[name]
			if p == nil {
				return errorReply(http.StatusNotFound)
			}
			return okReply(map[string]string{"name": name, "policy": p.src})
		},
		write: func(r *request) reply {
			if name == "root" {
				return badRequest(`cannot update "root" policy`)
			}
			src, ok, err := r.str("policy")
			if err != nil {
				return fieldError("policy", err)
			}
			if !ok || src == "" {
				return badRequest("'policy' parameter not supplied or empty")
			}
			p, err := parsePolicy(name, src)
			if err != nil {
				return badRequest(err.Error())
			}
			s.policies[name] = p
			return noContent()
		},
		del: func(*request) reply {
			if name == "root" || name == "default" {
				return badRequest(fmt.Sprintf("cannot delete %q policy", name))
			}
			delete(s.policies, name)
			return noContent()
		},
		exists: func() bool { return s.policies[name] != nil },
	}
}

// TokenOptions configures CreateToken.
type TokenOptions struct {
	// Policies names the token's ACL policies. "default" is added unless
	// NoDefaultPolicy is set.
	Policies        []string
	NoDefaultPolicy bool
	// TTL is how long the token lives; 0 means it never expires.
	TTL time.Duration
	// Period makes a periodic token: every renewal resets its TTL to Period.
	Period time.Duration
	// ExplicitMaxTTL caps the token's life across renewals; 0 means none.
	ExplicitMaxTTL time.Duration
	// Renewable allows renew-self.
	Renewable bool
}

// token is a token's state.
type token struct {
	id, accessor   string
	root           bool
	policies       []string
	created        time.Time
	creationTTL    time.Duration
	period         time.Duration
	explicitMaxTTL time.Duration
	expire         time.Time // zero: never
	renewable      bool
	lastRenewal    time.Time
}

func newRootToken(id string) *token {
	return &token{id: id, accessor: randomHex(12), root: true, policies: []string{"root"}, created: time.Now()}
}

// CreateToken makes a token and returns its ID.
func (s *Server) CreateToken(o TokenOptions) string {
	now := time.Now()
	t := &token{
		id:             "hvs." + randomHex(12),
		accessor:       randomHex(12),
		created:        now,
		creationTTL:    o.TTL,
		period:         o.Period,
		explicitMaxTTL: o.ExplicitMaxTTL,
		renewable:      o.Renewable,
	}
	if o.Period > 0 {
		t.creationTTL = o.Period
	}
	if t.creationTTL > 0 {
		t.expire = now.Add(t.creationTTL)
	}
	set := map[string]bool{}
	for _, p := range o.Policies {
		set[strings.ToLower(p)] = true
	}
	if !o.NoDefaultPolicy {
		set["default"] = true
	}
	if set["root"] {
		t.root = true
	}
	for p := range set {
		t.policies = append(t.policies, p)
	}
	sort.Strings(t.policies)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[t.id] = t
	return t.id
}

// RevokeToken revokes a token: it gets 403 from then on.
func (s *Server) RevokeToken(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, id)
}

// authenticate returns the live token named by the request, or nil.
func (s *Server) authenticate(h http.Header) *token {
	id := h.Get("X-Vault-Token")
	if id == "" {
		if a := h.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			id = strings.TrimPrefix(a, "Bearer ")
		}
	}
	t := s.tokens[id]
	if t == nil {
		return nil
	}
	if !t.expire.IsZero() && !time.Now().Before(t.expire) {
		delete(s.tokens, id)
		return nil
	}
	return t
}

type lookupData struct {
	Accessor        string            `json:"accessor"`
	CreationTime    int64             `json:"creation_time"`
	CreationTTL     int64             `json:"creation_ttl"`
	DisplayName     string            `json:"display_name"`
	EntityID        string            `json:"entity_id"`
	ExpireTime      *string           `json:"expire_time"`
	ExplicitMaxTTL  int64             `json:"explicit_max_ttl"`
	ID              string            `json:"id"`
	IssueTime       string            `json:"issue_time"`
	LastRenewal     *string           `json:"last_renewal,omitempty"`
	LastRenewalTime *int64            `json:"last_renewal_time,omitempty"`
	Meta            map[string]string `json:"meta"`
	NumUses         int               `json:"num_uses"`
	Orphan          bool              `json:"orphan"`
	Path            string            `json:"path"`
	Period          *int64            `json:"period,omitempty"`
	Policies        []string          `json:"policies"`
	Renewable       bool              `json:"renewable"`
	TTL             int64             `json:"ttl"`
	Type            string            `json:"type"`
}

func (s *Server) lookupSelf(r *request) reply {
	t := r.token
	d := lookupData{
		Accessor:       t.accessor,
		CreationTime:   t.created.Unix(),
		CreationTTL:    int64(t.creationTTL / time.Second),
		DisplayName:    "token",
		ExplicitMaxTTL: int64(t.explicitMaxTTL / time.Second),
		ID:             t.id,
		IssueTime:      t.created.UTC().Format(time.RFC3339Nano),
		Orphan:         true,
		Path:           "auth/token/create",
		Policies:       t.policies,
		Renewable:      t.renewable,
		Type:           "service",
	}
	if !t.expire.IsZero() {
		e := t.expire.UTC().Format(time.RFC3339Nano)
		d.ExpireTime = &e
		d.TTL = int64(time.Until(t.expire) / time.Second)
	}
	if !t.lastRenewal.IsZero() {
		lr := t.lastRenewal.UTC().Format(time.RFC3339Nano)
		lrt := t.lastRenewal.Unix()
		d.LastRenewal, d.LastRenewalTime = &lr, &lrt
	}
	if t.period > 0 {
		p := int64(t.period / time.Second)
		d.Period = &p
	}
	return okReply(d)
}

type authData struct {
	ClientToken    string            `json:"client_token"`
	Accessor       string            `json:"accessor"`
	Policies       []string          `json:"policies"`
	TokenPolicies  []string          `json:"token_policies"`
	Metadata       map[string]string `json:"metadata"`
	LeaseDuration  int64             `json:"lease_duration"`
	Renewable      bool              `json:"renewable"`
	EntityID       string            `json:"entity_id"`
	TokenType      string            `json:"token_type"`
	Orphan         bool              `json:"orphan"`
	MFARequirement any               `json:"mfa_requirement"`
	NumUses        int               `json:"num_uses"`
}

func (s *Server) renewSelf(r *request) reply {
	t := r.token
	if !t.renewable || t.expire.IsZero() {
		return badRequest("lease is not renewable")
	}
	inc, _, err := r.duration("increment")
	if err != nil {
		return fieldError("increment", err)
	}
	now := time.Now()
	ttl := t.creationTTL
	switch {
	case t.period > 0:
		ttl = t.period
	case inc > 0:
		ttl = inc
	}
	expire := now.Add(ttl)
	if t.explicitMaxTTL > 0 {
		if limit := t.created.Add(t.explicitMaxTTL); expire.After(limit) {
			expire = limit
		}
	}
	t.expire, t.lastRenewal = expire, now
	return reply{status: http.StatusOK, body: envelope{
		RequestID: newUUID(),
		Auth: authData{
			ClientToken:   t.id,
			Accessor:      t.accessor,
			Policies:      t.policies,
			TokenPolicies: t.policies,
			LeaseDuration: int64(expire.Sub(now) / time.Second),
			Renewable:     true,
			TokenType:     "service",
			Orphan:        true,
		},
	}}
}
