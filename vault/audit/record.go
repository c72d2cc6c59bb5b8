package audit

import (
	"context"
	"time"
)

// Ref is the keyed HMAC of an identifier (subject id, token, evidence id,
// on-behalf-of user), hex-encoded and truncated. It is the only form in which
// identifiers reach an audit record: a Ref is stable for one audit key, so a
// data-subject access report can find a subject's records, but it does not
// reveal the identifier to someone who reads the log without the key.
type Ref string

// Record types.
const (
	TypeDecision = "decision" // a detokenise decision (allow or deny)
	TypeAdmin    = "admin"    // an administrative action
)

// Decision outcomes.
const (
	Allow       = "ALLOW"
	AllowMasked = "ALLOW_MASKED"
	Deny        = "DENY"
)

// Record is one audit entry. It never holds a plaintext value, a token or a
// subject id in clear: those travel as Refs. Chain fields are set by the Log.
//
// Fields follow pdpa-model §2.7.
type Record struct {
	// Chain, set by Log.Append.
	Seq      uint64 `json:"seq"`
	Node     string `json:"node"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`

	Type       string    `json:"type"`
	Time       time.Time `json:"ts_utc"`
	TimeICT    string    `json:"ts_ict,omitempty"`
	DecisionID string    `json:"decision_id,omitempty"`
	RequestID  string    `json:"request_id,omitempty"`

	PolicyVersion string `json:"policy_version,omitempty"`
	PolicySHA256  string `json:"policy_sha256,omitempty"`

	// Who.
	Principal  string   `json:"requester_principal,omitempty"`
	Roles      []string `json:"requester_roles,omitempty"`
	OnBehalfOf Ref      `json:"on_behalf_of,omitempty"`
	Client     Ref      `json:"client,omitempty"`

	// Why.
	Purpose       string    `json:"purpose_code,omitempty"`
	Ground        *Ground   `json:"ground,omitempty"`
	Recipient     *Party    `json:"recipient,omitempty"`
	TransferBasis *Ground   `json:"transfer_basis,omitempty"`
	Reveal        string    `json:"reveal_level,omitempty"`
	Evidence      *Snapshot `json:"evidence,omitempty"`

	// Outcome.
	Decision string   `json:"decision,omitempty"`
	Reasons  []string `json:"reason_codes,omitempty"`
	Released int      `json:"fields_released"`
	Items    []Item   `json:"items,omitempty"`
	Alerts   []string `json:"alerts,omitempty"`

	// Administrative actions.
	Action  string            `json:"action,omitempty"` // e.g. consent.grant, key.rotate
	Target  Ref               `json:"target,omitempty"` // subject, consent or evidence ref
	Subject Ref               `json:"subject_ref,omitempty"`
	Details map[string]string `json:"details,omitempty"` // never values or ids in clear
}

// Ground is the legal ground as presented and resolved.
type Ground struct {
	Type    string `json:"type"`
	IRI     string `json:"dpv_iri,omitempty"`
	Section string `json:"pdpa_section,omitempty"`
	Ref     Ref    `json:"ref,omitempty"`
}

// Party is a recipient. Recipient ids are organisations, not data subjects,
// and are kept in clear.
type Party struct {
	ID      string `json:"entity"`
	Country string `json:"country,omitempty"`
}

// Snapshot is the evidence as it stood at decision time.
type Snapshot struct {
	Kind          string    `json:"kind"`
	Ref           Ref       `json:"ref"`
	Status        string    `json:"status,omitempty"`
	NoticeVersion string    `json:"notice_version,omitempty"`
	RecordSHA256  string    `json:"record_sha256,omitempty"`
	Authority     string    `json:"authority,omitempty"`
	Expires       time.Time `json:"expires,omitzero"`
	Approvals     []string  `json:"approvals,omitempty"`
}

// Item is the outcome for one token of a decision.
type Item struct {
	Token       Ref    `json:"token_ref"`
	Subject     Ref    `json:"subject_ref,omitempty"`
	SubjectType string `json:"subject_type,omitempty"`
	AgeBand     string `json:"subject_age_band,omitempty"`
	Category    string `json:"category,omitempty"`
	Tier        string `json:"tier,omitempty"`
	Decision    string `json:"decision"`
	Reason      string `json:"reason,omitempty"`
}

// Appender commits audit records. Append returns nil only once the record is
// durable in the sink and chained; the vault releases no plaintext before
// that. Append is safe for concurrent use; concurrent appends are group
// committed.
type Appender interface {
	Append(ctx context.Context, rec *Record) error
}
