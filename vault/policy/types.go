package policy

import (
	"time"

	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// Evidence is a registered record behind a non-consent ground (a contract, an
// authority instrument, an LIA, an incident, a DSR ticket, ...). The vault
// looks it up by the ground's ref: it never takes the caller's word.
type Evidence struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	Subjects   []string  `json:"subjects,omitempty"`
	Categories []string  `json:"categories,omitempty"`
	Purposes   []string  `json:"purposes,omitempty"`
	ValidFrom  time.Time `json:"valid_from,omitzero"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
	// Attributes are kind-specific: authority, jurisdiction, reference,
	// statute, s26_item, subject_incapable_of_consent, requester,
	// document_sha256, ...
	Attributes map[string]string `json:"attributes,omitempty"`
	Approvals  []Approval        `json:"approvals,omitempty"`
	CreatedBy  string            `json:"created_by"`
	// CreatedByRoles are the creator's roles when the record was
	// registered; an incident counts only if opened by the emergency role.
	CreatedByRoles []string  `json:"created_by_roles,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	RevokedAt      time.Time `json:"revoked_at,omitzero"`
	RevokedBy      string    `json:"revoked_by,omitempty"`
}

// Approval is one approval of an evidence record.
type Approval struct {
	Principal string    `json:"principal"`
	Roles     []string  `json:"roles"`
	At        time.Time `json:"at"`
}

// Ground is a ground (or a transfer basis) as the caller presents it.
type Ground struct {
	Type string `json:"type"`
	Ref  string `json:"ref,omitempty"`
}

// Recipient is who will receive the data.
type Recipient struct {
	ID      string `json:"id"`
	Country string `json:"country,omitempty"`
}

// Request is the caller's side of a detokenise decision, shared by every
// token of the batch.
type Request struct {
	Principal string
	Roles     []string
	// OnBehalfOf is the human or subject the call is made for (the DSR
	// requester, for instance).
	OnBehalfOf    string
	Purpose       string
	Ground        Ground
	Recipient     *Recipient
	TransferBasis *Ground
	Reveal        string
	CategoryHint  string
}

// TokenFacts is what the vault's own records say about one token. It is
// authoritative; the caller's claims are checked against it.
type TokenFacts struct {
	Found bool
	// Erased: the token was erased (crypto-shredded). It wins over Found:
	// a tombstone without a row (Found false, Erased true) decides
	// TOKEN_ERASED.
	Erased   bool
	Expired  bool
	Category *tokenizer.Category
	Subject  string
}

// Input is everything one decision needs. The vault gathers it (in batched
// store reads) and the engine decides without I/O.
type Input struct {
	Now     time.Time
	Request *Request
	Token   TokenFacts
	// Subject is the token's subject record, nil when not registered.
	Subject *subject.Subject
	// Linked is the account holder a third-party subject is linked to, if any.
	Linked *subject.Subject
	// Consent is the record named by a consent ground's ref, nil if absent.
	Consent *consent.Consent
	// Evidence is the record named by a non-consent ground's ref, nil if absent.
	Evidence *Evidence
	// TransferConsent / TransferEvidence are the records named by the
	// transfer basis ref, when one is given.
	TransferConsent  *consent.Consent
	TransferEvidence *Evidence
}

// Outcome is the engine's answer for one token.
type Outcome struct {
	Decision string // Allow, AllowMasked or Deny
	Code     string // reason code when denied
	Message  string // human-readable, never a value or an identifier
	// Reveal is the effective reveal level (may be lower than requested).
	Reveal string
	// GroundIRI and Section describe the ground for the audit record.
	GroundIRI string
	Section   string
	// Alerts raised by this decision (for example "dpo" for authority
	// instruments, "incident" for vital interest). The slice is shared
	// between outcomes: read it, never modify it.
	Alerts []string
}
