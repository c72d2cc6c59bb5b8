// Package subject holds the data-subject record and its lifecycle: type (data
// subject or third party), age and capacity (PDPA s.20), the seed §4.6
// suspension with its 15-day evidence window counted in Asia/Bangkok,
// restriction (s.34), objections (s.32), legal holds and erasure.
//
// The package is pure: every function that depends on time takes "now".
//
// # Lifecycle
//
//	ACTIVE --Suspend--> SUSPENDED_PENDING_EVIDENCE --ProofReceived--> EVIDENCE_UNDER_REVIEW
//	SUSPENDED_PENDING_EVIDENCE, EVIDENCE_UNDER_REVIEW --Reinstate--> ACTIVE
//	ACTIVE --Restrict--> RESTRICTED --Unrestrict--> ACTIVE
//	ACTIVE, SUSPENDED_*, EVIDENCE_UNDER_REVIEW, RESTRICTED --MarkErasurePending--> ERASURE_PENDING
//	ERASURE_PENDING --MarkErased (no legal hold in force)--> ERASED
//
// A call in the wrong state returns [ErrInvalidTransition]; any call on an
// ERASED subject returns [ErrErased]. Objections, legal holds, retention
// timers and per-category erasure and restriction apply in any live state.
//
// # Time
//
// Ages and the evidence window are counted in Asia/Bangkok calendar days
// ([ICT], a fixed UTC+7 zone: Thailand has no daylight-saving time, so no
// tzdata is needed). The deadline is 23:59:59.999999999 ICT on the 15th day
// after the day of detection [Inference; CCC s.193/3 Memory].
//
// # Inference-level choices
//
//   - Someone born on 29 February turns a year older on 1 March in common
//     years (the later reading: a minor stays a minor one day longer).
//   - A subject's type cannot change after registration.
//   - A restriction with categories restricts only them and leaves the
//     state ACTIVE; without, the whole subject is RESTRICTED.
//   - When two retention timers exist for a category, the earlier wins.
//   - An incapable subject (capable_of_consent false) is not sui juris at
//     any age.
package subject

import "time"

// Type is the subject type.
type Type string

const (
	DataSubject Type = "data_subject"
	ThirdParty  Type = "third_party"
)

// State is the lifecycle state of a subject (pdpa-model §2.6).
type State string

const (
	Active                   State = "active"
	SuspendedPendingEvidence State = "suspended_pending_evidence"
	EvidenceUnderReview      State = "evidence_under_review"
	Restricted               State = "restricted"
	ErasurePending           State = "erasure_pending"
	Erased                   State = "erased"
)

// AgeBand is the coarse age kept for the minors rule: "<10", "10-19", ">=20",
// or "" when the birth date is unknown.
type AgeBand string

const (
	AgeUnder10 AgeBand = "<10"
	Age10To19  AgeBand = "10-19"
	AgeAdult   AgeBand = ">=20"
	AgeUnknown AgeBand = ""
)

// Subject is the vault's record of one subject. It holds no personal values:
// the birth date is needed for the s.20 minors rule and is the one attribute
// kept in clear (the model stores an age band in clear, §2.2).
type Subject struct {
	ID   string `json:"id"`
	Type Type   `json:"type"`
	// BirthDate is YYYY-MM-DD, or "" when unknown.
	BirthDate string `json:"birth_date,omitempty"`
	// Married makes a minor sui juris (CCC s.20).
	Married bool `json:"married,omitempty"`
	// CapableOfConsent is false for an incompetent person; vital-interest
	// access to s.26 data depends on it. Nil means capable.
	CapableOfConsent *bool `json:"capable_of_consent,omitempty"`
	// LinkedTo is the account holder a third party was given by.
	LinkedTo string `json:"linked_to,omitempty"`

	State      State     `json:"state"`
	StateSince time.Time `json:"state_since"`

	Suspension  *Suspension  `json:"suspension,omitempty"`
	Objections  []Objection  `json:"objections,omitempty"`
	LegalHolds  []LegalHold  `json:"legal_holds,omitempty"`
	Restriction *Restriction `json:"restriction,omitempty"`
	// ErasedCategories are categories shredded while the subject lives on.
	ErasedCategories []string `json:"erased_categories,omitempty"`
	// Retention timers per category (for example the criminal record, six
	// months after the vetting decision).
	Retention []Retention `json:"retention,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Suspension is the seed §4.6 state: false data was found; the subject has
// until Deadline to send proof.
type Suspension struct {
	DetectedAt      time.Time `json:"detected_at"`
	Deadline        time.Time `json:"deadline"`
	Reason          string    `json:"reason,omitempty"`
	ProofReceivedAt time.Time `json:"proof_received_at,omitzero"`
}

// Objection is an upheld s.32 objection. Purpose "" means every purpose
// based on legitimate interest or public task; direct marketing is always
// blocked once any objection is upheld.
type Objection struct {
	Purpose  string    `json:"purpose,omitempty"`
	UpheldAt time.Time `json:"upheld_at"`
}

// Restriction is the s.34 state. With no Categories it restricts the whole
// subject (State is Restricted); with Categories it restricts only those,
// and the subject keeps its state (pdpa-model §2.6: RESTRICTED can be kept
// per (subject, category)).
type Restriction struct {
	Reason     string    `json:"reason,omitempty"`
	Since      time.Time `json:"since"`
	Categories []string  `json:"categories,omitempty"`
}

// LegalHold keeps categories from erasure while a case or instrument needs
// them.
type LegalHold struct {
	ID         string    `json:"id"`
	Categories []string  `json:"categories"`
	Ref        string    `json:"ref"` // evidence id
	Until      time.Time `json:"until"`
	CreatedAt  time.Time `json:"created_at"`
}

// Retention is a timer after which a category of this subject is shredded.
type Retention struct {
	Category string    `json:"category"`
	ShredAt  time.Time `json:"shred_at"`
	Reason   string    `json:"reason,omitempty"`
}
