package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/subject"
)

func (c *Client) subjectCall(ctx context.Context, id, action string, body any) (*subject.Subject, error) {
	var out subject.Subject
	if body == nil {
		body = struct{}{}
	}
	if err := c.do(ctx, http.MethodPost, "/v1/subjects/"+url.PathEscape(id)+"/"+action, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Suspend suspends a subject pending evidence (seed §4.6).
func (c *Client) Suspend(ctx context.Context, id string, req *vault.SuspendRequest) (*subject.Subject, error) {
	return c.subjectCall(ctx, id, "suspend", req)
}

// ReceiveProof records the proof a suspended subject sent in.
func (c *Client) ReceiveProof(ctx context.Context, id string, req *vault.ProofRequest) (*subject.Subject, error) {
	return c.subjectCall(ctx, id, "proof", req)
}

// Reinstate ends a suspension.
func (c *Client) Reinstate(ctx context.Context, id string) (*subject.Subject, error) {
	return c.subjectCall(ctx, id, "reinstate", nil)
}

// Restrict restricts a subject (s.34).
func (c *Client) Restrict(ctx context.Context, id string, req *vault.RestrictRequest) (*subject.Subject, error) {
	return c.subjectCall(ctx, id, "restrict", req)
}

// Unrestrict lifts a restriction.
func (c *Client) Unrestrict(ctx context.Context, id string) (*subject.Subject, error) {
	return c.subjectCall(ctx, id, "unrestrict", nil)
}

// UpholdObjection records an upheld s.32 objection.
func (c *Client) UpholdObjection(ctx context.Context, id string, req *vault.ObjectionRequest) (*subject.Subject, error) {
	return c.subjectCall(ctx, id, "objection", req)
}

// AddLegalHold adds a legal hold.
func (c *Client) AddLegalHold(ctx context.Context, id string, req *vault.LegalHoldRequest) (*subject.Subject, error) {
	return c.subjectCall(ctx, id, "legal-holds", req)
}

// ReleaseLegalHold removes a legal hold.
func (c *Client) ReleaseLegalHold(ctx context.Context, id, hold string) (*subject.Subject, error) {
	var out subject.Subject
	if err := c.do(ctx, http.MethodDelete, "/v1/subjects/"+url.PathEscape(id)+"/legal-holds/"+url.PathEscape(hold), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetRetention starts a retention timer.
func (c *Client) SetRetention(ctx context.Context, id string, req *vault.RetentionRequest) (*subject.Subject, error) {
	return c.subjectCall(ctx, id, "retention", req)
}

// Erase crypto-shreds a subject (or some of its categories).
func (c *Client) Erase(ctx context.Context, id string, req *vault.EraseRequest) (*vault.ErasureCertificate, error) {
	var out vault.ErasureCertificate
	if err := c.do(ctx, http.MethodPost, "/v1/subjects/"+url.PathEscape(id)+"/erase", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ErasureCertificates lists a subject's erasure certificates.
func (c *Client) ErasureCertificates(ctx context.Context, id string) ([]*vault.ErasureCertificate, error) {
	var out struct {
		Erasures []*vault.ErasureCertificate `json:"erasures"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/subjects/"+url.PathEscape(id)+"/erasures", nil, &out); err != nil {
		return nil, err
	}
	return out.Erasures, nil
}

// AccessReport returns the data-subject access report.
func (c *Client) AccessReport(ctx context.Context, id string) (*vault.AccessReport, error) {
	var out vault.AccessReport
	if err := c.do(ctx, http.MethodGet, "/v1/subjects/"+url.PathEscape(id)+"/access-report", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateEvidence registers evidence.
func (c *Client) CreateEvidence(ctx context.Context, req *vault.CreateEvidenceRequest) (*policy.Evidence, error) {
	var out policy.Evidence
	if err := c.do(ctx, http.MethodPost, "/v1/evidence", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetEvidence reads an evidence record.
func (c *Client) GetEvidence(ctx context.Context, id string) (*policy.Evidence, error) {
	var out policy.Evidence
	if err := c.do(ctx, http.MethodGet, "/v1/evidence/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ApproveEvidence approves an evidence record as the caller.
func (c *Client) ApproveEvidence(ctx context.Context, id string) (*policy.Evidence, error) {
	var out policy.Evidence
	if err := c.do(ctx, http.MethodPost, "/v1/evidence/"+url.PathEscape(id)+"/approve", struct{}{}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeEvidence revokes an evidence record.
func (c *Client) RevokeEvidence(ctx context.Context, id string) (*policy.Evidence, error) {
	var out policy.Evidence
	if err := c.do(ctx, http.MethodPost, "/v1/evidence/"+url.PathEscape(id)+"/revoke", struct{}{}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
