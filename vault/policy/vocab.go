package policy

// Purposes, in the order of pdpa-model §2.3 (the model's P-codes).
const (
	PurposeIdentityVerification   = "identity_verification"    // P-IDV
	PurposeProviderVetting        = "provider_vetting"         // P-VETTING
	PurposeServiceDelivery        = "service_delivery"         // P-SERVICE
	PurposePayment                = "payment"                  // P-PAYMENT
	PurposeSupport                = "support"                  // P-SUPPORT
	PurposeServiceNotices         = "service_notices"          // P-NOTIFY
	PurposeMarketing              = "marketing"                // P-MKT
	PurposeAnalytics              = "analytics"                // P-ANALYTICS
	PurposePartnerFinancialOffers = "partner_financial_offers" // P-PARTNER-FIN
	PurposePartnerInsuranceOffers = "partner_insurance_offers" // P-PARTNER-HEALTHINS
	PurposeCorporateTransaction   = "corporate_transaction"    // P-CORP
	PurposeEmergency              = "emergency"                // P-EMERGENCY
	PurposePublicHealth           = "public_health"            // P-PUBLIC-HEALTH
	PurposeFraudAML               = "fraud_aml"                // P-FRAUD-AML
	PurposeLegalAuthority         = "legal_authority"          // P-LEGAL-AUTH
	PurposeDispute                = "dispute"                  // P-DISPUTE
	PurposeHarmPrevention         = "harm_prevention"          // P-INCITEMENT
	PurposeAccountIntegrity       = "account_integrity"        // P-INTEGRITY
	PurposeDataSubjectRequest     = "data_subject_request"     // P-DSR
)

// Purposes lists every purpose in model order.
var Purposes = []string{
	PurposeIdentityVerification, PurposeProviderVetting, PurposeServiceDelivery, PurposePayment,
	PurposeSupport, PurposeServiceNotices, PurposeMarketing, PurposeAnalytics,
	PurposePartnerFinancialOffers, PurposePartnerInsuranceOffers, PurposeCorporateTransaction,
	PurposeEmergency, PurposePublicHealth, PurposeFraudAML, PurposeLegalAuthority, PurposeDispute,
	PurposeHarmPrevention, PurposeAccountIntegrity, PurposeDataSubjectRequest,
}

// Grounds (pdpa-model §2.4.1).
const (
	GroundConsent             = "consent"
	GroundContract            = "contract"
	GroundLegalObligation     = "legal_obligation"
	GroundAuthorityInstrument = "authority_instrument"
	GroundVitalInterest       = "vital_interest"
	GroundPublicTask          = "public_task"
	GroundLegitimateInterest  = "legitimate_interest"
	GroundResearchStatistics  = "research_statistics"
	GroundLegalClaims         = "legal_claims"
	GroundMadePublic          = "made_public"
	GroundDataSubjectRequest  = "data_subject_request"
)

// Grounds lists every ground.
var Grounds = []string{
	GroundConsent, GroundContract, GroundLegalObligation, GroundAuthorityInstrument,
	GroundVitalInterest, GroundPublicTask, GroundLegitimateInterest, GroundResearchStatistics,
	GroundLegalClaims, GroundMadePublic, GroundDataSubjectRequest,
}

// Evidence kinds (POST /v1/evidence).
const (
	KindContract            = "contract"
	KindAuthorityInstrument = "authority_instrument"
	KindLIA                 = "lia"
	KindIncident            = "incident"
	KindDSR                 = "dsr"
	KindResearchProtocol    = "research_protocol"
	KindLegalCase           = "legal_case"
	KindMandate             = "mandate"
	KindStatute             = "statute"
	KindTransferSafeguard   = "transfer_safeguard"
	KindMadePublic          = "made_public"
)

// EvidenceKinds lists every evidence kind.
var EvidenceKinds = []string{
	KindContract, KindAuthorityInstrument, KindLIA, KindIncident, KindDSR, KindResearchProtocol,
	KindLegalCase, KindMandate, KindStatute, KindTransferSafeguard, KindMadePublic,
}

// Transfer basis types (pdpa-model §2.4.1, cross-border check).
const (
	TransferAdequacy                  = "adequacy"
	TransferBCR                       = "bcr"
	TransferSafeguards                = "safeguards"
	TransferLaw                       = "law"
	TransferConsent                   = "consent"
	TransferContractWithSubject       = "contract_with_subject"
	TransferContractInSubjectInterest = "contract_in_subject_interest"
	TransferVital                     = "vital"
	TransferSubstantialPublicInterest = "substantial_public_interest"
)

// Reveal levels.
const (
	RevealFull    = "full"
	RevealPartial = "partial"
	RevealMasked  = "masked"
)

// Decisions.
const (
	Allow       = "ALLOW"
	AllowMasked = "ALLOW_MASKED"
	Deny        = "DENY"
)

// Reason codes. Stable strings: clients branch on them.
const (
	CodeRoleNotPermitted             = "ROLE_NOT_PERMITTED"
	CodeTokenUnknown                 = "TOKEN_UNKNOWN"
	CodeTokenErased                  = "TOKEN_ERASED"
	CodeTokenExpired                 = "TOKEN_EXPIRED"
	CodeCategoryMismatch             = "CATEGORY_MISMATCH"
	CodeSubjectUnknown               = "SUBJECT_UNKNOWN"
	CodeSubjectErased                = "SUBJECT_ERASED"
	CodeAccountSuspended             = "ACCOUNT_SUSPENDED"
	CodeSubjectRestricted            = "SUBJECT_RESTRICTED"
	CodeErasurePending               = "ERASURE_PENDING"
	CodeObjectionUpheld              = "OBJECTION_UPHELD"
	CodePurposeUnknown               = "PURPOSE_UNKNOWN"
	CodeGroundUnknown                = "GROUND_UNKNOWN"
	CodeGroundNotSupported           = "GROUND_NOT_SUPPORTED"
	CodeGroundNotPermittedForPurpose = "GROUND_NOT_PERMITTED_FOR_PURPOSE"
	CodeGroundNotPermittedForTier    = "GROUND_NOT_PERMITTED_FOR_TIER"
	CodeEvidenceNotFound             = "EVIDENCE_NOT_FOUND"
	CodeEvidenceKindMismatch         = "EVIDENCE_KIND_MISMATCH"
	CodeEvidenceNotApproved          = "EVIDENCE_NOT_APPROVED"
	CodeEvidenceRevoked              = "EVIDENCE_REVOKED"
	CodeEvidenceNotYetValid          = "EVIDENCE_NOT_YET_VALID"
	CodeEvidenceExpired              = "EVIDENCE_EXPIRED"
	CodeEvidenceScope                = "EVIDENCE_SCOPE"
	CodeConsentNotFound              = "CONSENT_NOT_FOUND"
	CodeSubjectMismatch              = "SUBJECT_MISMATCH"
	CodeConsentWithdrawn             = "CONSENT_WITHDRAWN"
	CodeConsentExpired               = "CONSENT_EXPIRED"
	CodeConsentBundledInvalid        = "CONSENT_BUNDLED_INVALID"
	CodePurposeNotCovered            = "PURPOSE_NOT_COVERED"
	CodeCategoryNotCovered           = "CATEGORY_NOT_COVERED"
	CodeRecipientNotCovered          = "RECIPIENT_NOT_COVERED"
	CodeExplicitConsentRequired      = "EXPLICIT_CONSENT_REQUIRED"
	CodeGuardianConsentRequired      = "GUARDIAN_CONSENT_REQUIRED"
	CodeSubjectAgeUnknown            = "SUBJECT_AGE_UNKNOWN"
	CodeContractInactive             = "CONTRACT_INACTIVE"
	CodeInstrumentExpired            = "INSTRUMENT_EXPIRED"
	CodeInstrumentScope              = "INSTRUMENT_SCOPE"
	CodeInstrumentNotVerified        = "INSTRUMENT_NOT_VERIFIED"
	CodeVitalCategoryNotAllowed      = "VITAL_CATEGORY_NOT_ALLOWED"
	CodeIncidentClosed               = "INCIDENT_CLOSED"
	CodeDSRRequesterMismatch         = "DSR_REQUESTER_MISMATCH"
	CodeDSRNotVerified               = "DSR_NOT_VERIFIED"
	CodeThirdPartySubject            = "THIRD_PARTY_SUBJECT"
	CodeTransferBasisMissing         = "TRANSFER_BASIS_MISSING"
	CodeTransferBasisInvalid         = "TRANSFER_BASIS_INVALID"
	CodeRevealNotPermitted           = "REVEAL_NOT_PERMITTED"
	CodeRetentionExpired             = "RETENTION_EXPIRED"
	CodeAuditUnavailable             = "AUDIT_UNAVAILABLE"
	CodeStoreUnavailable             = "STORE_UNAVAILABLE"

	// Added with the decision engine.

	// CodePurposeNotEnabled: the purpose is known but switched off in the
	// policy (public_health and corporate_transaction by default).
	CodePurposeNotEnabled = "PURPOSE_NOT_ENABLED"
	// CodeRevealUnknown: the reveal level is not full, partial or masked.
	CodeRevealUnknown = "REVEAL_UNKNOWN"
	// CodeSubjectConsentRequired: the consent lacks the subject's own
	// grant (an adult, or a minor of 10-19 with a guardian, s.20).
	CodeSubjectConsentRequired = "SUBJECT_CONSENT_REQUIRED"
	// CodeConsentNotYetGiven: the consent's granted_at is after the
	// decision time.
	CodeConsentNotYetGiven = "CONSENT_NOT_YET_GIVEN"
	// CodeConsentInvalidated: the consent carries an INVALIDATED event.
	CodeConsentInvalidated = "CONSENT_INVALIDATED"
)

// Alerts an Outcome may carry.
const (
	AlertDPO      = "dpo"      // authority instruments (pdpa-model §2.4.1)
	AlertIncident = "incident" // vital interest: review within 72 h
	AlertLegal    = "legal"    // legal claims
)

// Evidence attributes the engine reads (Evidence.Attributes). Boolean
// attributes are true only when exactly "true".
const (
	// AttrS26Item is the s.26(5) sub-item ("a".."e") a statute, mandate or
	// research protocol maps to; needed for T2 data.
	AttrS26Item = "s26_item"
	// AttrRequiresCriminalRecordCheck marks a statute that requires the
	// criminal-record check (needed for T2+ under legal_obligation).
	AttrRequiresCriminalRecordCheck = "requires_criminal_record_check"
	// AttrSubjectIncapable marks an incident whose subject cannot consent
	// (s.26(1)): unlocks the incapable-only vital categories.
	AttrSubjectIncapable = "subject_incapable_of_consent"
	// AttrStatus is an incident's or case's status; "closed" closes it.
	AttrStatus = "status"
	// AttrRequester is the DSR requester (compared with
	// Request.OnBehalfOf).
	AttrRequester = "requester"
	// AttrRequesterLink is "guardian" or "representative" when the DSR
	// requester is not the subject; AttrRequesterLinkVerified must then be
	// "true".
	AttrRequesterLink         = "requester_link"
	AttrRequesterLinkVerified = "requester_link_verified"
	// AttrJurisdiction is an authority instrument's jurisdiction (ISO
	// 3166 alpha-2); a foreign one needs a transfer basis.
	AttrJurisdiction = "jurisdiction"
	// AttrMechanism is a transfer_safeguard's mechanism: adequacy, bcr or
	// safeguards (the transfer basis type it serves).
	AttrMechanism = "mechanism"
	// AttrDestinations lists the countries (comma-separated ISO 3166
	// alpha-2) a transfer_safeguard covers.
	AttrDestinations = "destinations"
)
