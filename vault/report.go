package vault

import (
	"context"
	"slices"
	"time"

	"github.com/fieldvault/fieldvault/vault/audit"
)

// AccessReportEntry is one decision about a subject's data, as the subject
// may see it (s.30): who (principal and roles), when, why (purpose), on what
// ground, and the outcome for the subject's tokens. Tokens and evidence
// identifiers are not shown.
type AccessReportEntry struct {
	Time       time.Time `json:"time"`
	DecisionID string    `json:"decision_id,omitempty"`
	Principal  string    `json:"principal"`
	Roles      []string  `json:"roles,omitempty"`
	Purpose    string    `json:"purpose,omitempty"`
	Ground     string    `json:"ground,omitempty"`
	GroundIRI  string    `json:"ground_iri,omitempty"`
	Section    string    `json:"pdpa_section,omitempty"`
	Recipient  string    `json:"recipient,omitempty"`
	Country    string    `json:"recipient_country,omitempty"`
	Categories []string  `json:"categories,omitempty"`
	Allowed    int       `json:"fields_released"`
	Denied     int       `json:"fields_denied"`
	Reasons    []string  `json:"reason_codes,omitempty"`
	// Action is set for administrative actions about the subject (consent
	// granted or withdrawn, suspension, erasure, ...).
	Action string `json:"action,omitempty"`
	// Node is the replica whose audit chain holds the record.
	Node string `json:"node,omitempty"`
}

// AuditChains returns the audit chains a data-subject access report reads,
// by node: one for a file log (this replica's), one per replica that has
// written to a shared Redis stream log.
type AuditChains func(ctx context.Context) (map[string]audit.Source, error)

// AccessReport is the data-subject access report.
type AccessReport struct {
	SubjectRef  audit.Ref           `json:"subject_ref"`
	GeneratedAt time.Time           `json:"generated_at"`
	Node        string              `json:"node"`
	Nodes       []string            `json:"nodes"`
	Entries     []AccessReportEntry `json:"entries"`
}

// AccessReport returns every decision and administrative action about a
// subject recorded in the audit chains of every replica, oldest first.
// Audit records outlive erasure, so the report is available for erased
// subjects too. If any chain cannot be read, no report is returned
// (AUDIT_UNAVAILABLE): an incomplete report would mislead the subject.
func (v *Vault) AccessReport(ctx context.Context, p *Principal, id string) (*AccessReport, error) {
	if !v.authz.Can(p, OpAccessReport) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not read access reports")
	}
	if !validSubjectID(id) {
		return nil, errorf(KindInvalid, CodeInvalidSubject, "invalid subject id")
	}
	if v.chains == nil {
		return nil, errorf(KindUnavailable, CodeAuditUnavailable, "this server has no readable audit source")
	}
	chains, err := v.chains(ctx)
	if err != nil {
		return nil, wrapErr(KindUnavailable, CodeAuditUnavailable, "the audit chains could not be listed", err)
	}
	ref := v.audit.Ref(id)
	rep := &AccessReport{SubjectRef: ref, GeneratedAt: v.now().UTC(), Node: v.node, Nodes: []string{}, Entries: []AccessReportEntry{}}
	for node := range chains {
		rep.Nodes = append(rep.Nodes, node)
	}
	slices.Sort(rep.Nodes)
	for _, node := range rep.Nodes {
		if err := v.reportChain(ctx, rep, node, chains[node], ref); err != nil {
			return nil, wrapErr(KindUnavailable, CodeAuditUnavailable, "the audit chain of node "+node+" could not be read", err)
		}
	}
	// Each chain is in time order; merge them (stable: a chain's own order
	// is kept for equal times).
	slices.SortStableFunc(rep.Entries, func(a, b AccessReportEntry) int { return a.Time.Compare(b.Time) })
	return rep, nil
}

// reportChain appends the entries about ref in one node's chain.
func (v *Vault) reportChain(ctx context.Context, rep *AccessReport, node string, src audit.Source, ref audit.Ref) error {
	return audit.ForSubject(ctx, src, ref, func(r *audit.Record) error {
		e := AccessReportEntry{Time: r.Time, DecisionID: r.DecisionID, Principal: r.Principal, Roles: r.Roles,
			Purpose: r.Purpose, Action: r.Action, Node: node}
		if r.Type == audit.TypeAdmin {
			e.Principal = r.Details["by"]
		}
		if r.Ground != nil {
			e.Ground, e.GroundIRI, e.Section = r.Ground.Type, r.Ground.IRI, r.Ground.Section
		}
		if r.Recipient != nil {
			e.Recipient, e.Country = r.Recipient.ID, r.Recipient.Country
		}
		for _, it := range r.Items {
			if it.Subject != ref {
				continue
			}
			if it.Category != "" && !slices.Contains(e.Categories, it.Category) {
				e.Categories = append(e.Categories, it.Category)
			}
			if it.Decision == audit.Deny {
				e.Denied++
				if it.Reason != "" && !slices.Contains(e.Reasons, it.Reason) {
					e.Reasons = append(e.Reasons, it.Reason)
				}
			} else {
				e.Allowed++
			}
		}
		rep.Entries = append(rep.Entries, e)
		return nil
	})
}
