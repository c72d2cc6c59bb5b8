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
}

// AccessReport is the data-subject access report.
type AccessReport struct {
	SubjectRef  audit.Ref           `json:"subject_ref"`
	GeneratedAt time.Time           `json:"generated_at"`
	Node        string              `json:"node"`
	Entries     []AccessReportEntry `json:"entries"`
}

// AccessReport returns every decision and administrative action about a
// subject recorded in this replica's audit chain. Audit records outlive
// erasure, so the report is available for erased subjects too.
func (v *Vault) AccessReport(ctx context.Context, p *Principal, id string) (*AccessReport, error) {
	if !v.authz.Can(p, OpAccessReport) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not read access reports")
	}
	if !validSubjectID(id) {
		return nil, errorf(KindInvalid, CodeInvalidSubject, "invalid subject id")
	}
	if v.auditSrc == nil {
		return nil, errorf(KindUnavailable, CodeAuditUnavailable, "this server has no readable audit source")
	}
	ref := v.audit.Ref(id)
	rep := &AccessReport{SubjectRef: ref, GeneratedAt: v.now().UTC(), Node: v.node, Entries: []AccessReportEntry{}}
	err := audit.ForSubject(ctx, v.auditSrc, ref, func(r *audit.Record) error {
		e := AccessReportEntry{Time: r.Time, DecisionID: r.DecisionID, Principal: r.Principal, Roles: r.Roles,
			Purpose: r.Purpose, Action: r.Action}
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
	if err != nil {
		return nil, wrapErr(KindUnavailable, CodeAuditUnavailable, "the audit log could not be read", err)
	}
	return rep, nil
}
