package vault

import (
	"fmt"
	"slices"
	"sort"

	"github.com/fieldvault/fieldvault/tokenizer"
)

// Operations a role may be allowed.
const (
	OpTokenize        = "tokenize"
	OpDetokenize      = "detokenize"
	OpSubjectRead     = "subject.read"
	OpSubjectWrite    = "subject.write"
	OpSubjectErase    = "subject.erase"
	OpConsentRead     = "consent.read"
	OpConsentWrite    = "consent.write"
	OpEvidenceRead    = "evidence.read"
	OpEvidenceWrite   = "evidence.write"
	OpEvidenceApprove = "evidence.approve"
	OpAccessReport    = "subject.access_report"
	OpKeysRead        = "keys.read"
	OpKeysRotate      = "keys.rotate"
	OpAuditRead       = "audit.read"
	OpAPIKeys         = "apikeys.admin"
)

// Operations lists every operation.
var Operations = []string{
	OpTokenize, OpDetokenize, OpSubjectRead, OpSubjectWrite, OpSubjectErase,
	OpConsentRead, OpConsentWrite, OpEvidenceRead, OpEvidenceWrite, OpEvidenceApprove,
	OpAccessReport, OpKeysRead, OpKeysRotate, OpAuditRead, OpAPIKeys,
}

// Role is what one role may do: operations, and for tokenize/detokenize, the
// categories (by name, "*" for all) and the highest tier it may detokenise.
type Role struct {
	Operations []string `json:"operations"`
	Categories []string `json:"categories,omitempty"`
	// MaxTier limits detokenisation by tier: "T0", "T1", "T2" or "T2+"
	// (default "T2+", every tier).
	MaxTier string `json:"max_tier,omitempty"`
}

// Roles maps role names to their permissions.
type Roles map[string]Role

// DefaultRoles are the built-in roles of DESIGN.md. Deployments add their
// own (for example "crm-sender" allowed detokenize on contact.* only).
func DefaultRoles() Roles {
	all := []string{"*"}
	return Roles{
		"admin": {Operations: slices.Clone(Operations), Categories: all},
		"service": {Operations: []string{OpTokenize, OpDetokenize, OpSubjectRead, OpSubjectWrite,
			OpConsentRead, OpConsentWrite}, Categories: all},
		"security": {Operations: []string{OpKeysRead, OpKeysRotate, OpAuditRead}},
		"dpo": {Operations: []string{OpSubjectRead, OpSubjectWrite, OpSubjectErase, OpConsentRead,
			OpConsentWrite, OpEvidenceRead, OpEvidenceWrite, OpEvidenceApprove, OpAccessReport, OpAuditRead}},
		"legal": {Operations: []string{OpDetokenize, OpSubjectRead, OpSubjectWrite, OpEvidenceRead,
			OpEvidenceWrite, OpEvidenceApprove, OpConsentRead}, Categories: all},
		"auditor":      {Operations: []string{OpAuditRead, OpAccessReport, OpKeysRead, OpSubjectRead, OpConsentRead, OpEvidenceRead}},
		"emergency":    {Operations: []string{OpDetokenize, OpEvidenceWrite, OpEvidenceRead, OpSubjectRead}, Categories: all},
		"trust-safety": {Operations: []string{OpDetokenize, OpSubjectRead, OpSubjectWrite, OpEvidenceRead}, Categories: all},
	}
}

// Validate checks role definitions.
func (rs Roles) Validate() error {
	known := make(map[string]bool, len(Operations))
	for _, op := range Operations {
		known[op] = true
	}
	names := make([]string, 0, len(rs))
	for n := range rs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := rs[n]
		if n == "" {
			return fmt.Errorf("role with an empty name")
		}
		for _, op := range r.Operations {
			if !known[op] {
				return fmt.Errorf("role %q: unknown operation %q", n, op)
			}
		}
		for _, c := range r.Categories {
			if c == "*" {
				continue
			}
			if _, ok := tokenizer.Lookup(c); !ok {
				return fmt.Errorf("role %q: unknown category %q", n, c)
			}
		}
		if r.MaxTier != "" {
			if _, err := tokenizer.ParseTier(r.MaxTier); err != nil {
				return fmt.Errorf("role %q: %v", n, err)
			}
		}
	}
	return nil
}

// Principal is an authenticated caller.
type Principal struct {
	Name  string
	Roles []string
}

// authorizer answers permission questions for principals.
type authorizer struct {
	roles Roles
}

// Can reports whether p may perform op at all.
func (a *authorizer) Can(p *Principal, op string) bool {
	for _, rn := range p.Roles {
		if r, ok := a.roles[rn]; ok && slices.Contains(r.Operations, op) {
			return true
		}
	}
	return false
}

// CanCategory reports whether p may perform op (tokenize or detokenize) on
// cat. For detokenize the role's MaxTier also applies.
func (a *authorizer) CanCategory(p *Principal, op string, cat *tokenizer.Category) bool {
	for _, rn := range p.Roles {
		r, ok := a.roles[rn]
		if !ok || !slices.Contains(r.Operations, op) {
			continue
		}
		if !slices.Contains(r.Categories, "*") && !slices.Contains(r.Categories, cat.Name) {
			continue
		}
		if op == OpDetokenize && r.MaxTier != "" {
			if t, err := tokenizer.ParseTier(r.MaxTier); err == nil && cat.Tier > t {
				continue
			}
		}
		return true
	}
	return false
}
