// Package consent holds consent records and their lifecycle (pdpa-model §2.5):
// granting with validation, withdrawal as an append-only event, status at a
// given time, and the s.20 guardian rule for minors.
//
// The package is pure: every function that depends on time takes "now".
//
// # Inference-level choices
//
//   - A T2 or T2+ category can only be granted with explicit consent, and a
//     criminal-record consent may name only provider_vetting; Validate
//     refuses other records at grant time (the engine checks again).
//   - informed_of_inadequacy needs explicit consent and at least one
//     destination (the s.28(2) transfer consent is explicit, per [S11a]).
//   - Several guardians may grant (both parents); one suffices. A guardian
//     counts only when verified with a verification_ref.
//   - Status gives INVALIDATED precedence over WITHDRAWN over EXPIRED; a
//     record is ConsentUnknown before its granted_at.
//   - A criminal-record consent without an expiry gets granted_at plus the
//     criminal-record retention (6 months), the earliest of the rules.
//   - A consent recipient without a country matches the recipient id in
//     any country.
package consent

import "time"

// Collection methods. The last three are stored for history but never count
// as consent (pdpa-model §2.3).
const (
	MethodInApp         = "in_app"
	MethodWebForm       = "web_form"
	MethodPaper         = "paper"
	MethodTOSAcceptance = "tos_acceptance"
	MethodContinuedUse  = "continued_use"
	MethodDeemed        = "deemed"
)

// Parties that grant consent.
const (
	PartySubject  = "subject"
	PartyGuardian = "guardian"
)

// Status values are DPV consent-status names.
const (
	StatusGiven     = "ConsentGiven"
	StatusRenewed   = "RenewedConsentGiven"
	StatusWithdrawn = "ConsentWithdrawn"
	StatusExpired   = "ConsentExpired"
	StatusInvalid   = "ConsentInvalidated"
	// StatusUnknown is the status of a record before its granted_at (a
	// record dated in the future): not consent yet.
	StatusUnknown = "ConsentUnknown"
)

// Event types (ISO/IEC TS 27560 event section).
const (
	EventGiven       = "GIVEN"
	EventRenewed     = "RENEWED"
	EventWithdrawn   = "WITHDRAWN"
	EventExpired     = "EXPIRED"
	EventInvalidated = "INVALIDATED"
)

// Consent is one consent record. Records are never erased with the subject's
// data: they are the controller's proof.
type Consent struct {
	ID        string    `json:"id"`
	Subject   string    `json:"subject"`
	GrantedBy []Grantor `json:"granted_by"`
	// Explicit is consent_type = EXPLICIT (needed for T2 and T2+ and for
	// transfers to inadequate destinations).
	Explicit             bool        `json:"explicit"`
	Categories           []string    `json:"categories"`
	Purposes             []string    `json:"purposes"`
	Recipients           []Recipient `json:"recipients,omitempty"`
	Destinations         []string    `json:"destinations,omitempty"`
	InformedOfInadequacy bool        `json:"informed_of_inadequacy,omitempty"`
	NoticeVersion        string      `json:"notice_version"`
	NoticeSHA256         string      `json:"notice_sha256,omitempty"`
	Language             string      `json:"language,omitempty"`
	CollectionMethod     string      `json:"collection_method"`
	EvidenceSHA256       string      `json:"evidence_sha256,omitempty"`
	// SubjectAgeBandAtGrant is recorded when the consent is granted.
	SubjectAgeBandAtGrant string    `json:"subject_age_band_at_grant,omitempty"`
	GrantedAt             time.Time `json:"granted_at"`
	ExpiresAt             time.Time `json:"expires_at,omitzero"`
	Events                []Event   `json:"events"`
}

// Grantor is one party who gave the consent.
type Grantor struct {
	Party           string `json:"party"` // subject | guardian
	ID              string `json:"id,omitempty"`
	Verified        bool   `json:"verified"`
	Relationship    string `json:"relationship,omitempty"`
	VerificationRef string `json:"verification_ref,omitempty"`
}

// Recipient is an organisation the data may be disclosed to.
type Recipient struct {
	ID      string `json:"id"`
	Country string `json:"country,omitempty"`
}

// Event is an append-only lifecycle event.
type Event struct {
	Type    string    `json:"type"` // GIVEN, RENEWED, WITHDRAWN, EXPIRED, INVALIDATED
	At      time.Time `json:"at"`
	Actor   string    `json:"actor,omitempty"`
	Channel string    `json:"channel,omitempty"`
}
