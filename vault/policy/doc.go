// Package policy is fieldvault's decision engine: which purpose, ground and
// evidence may reveal which category of data, under Thailand's PDPA as
// modelled in pdpa-model.md. It is pure: no I/O, and the clock comes in
// with every [Input].
//
// # Policy and engine
//
// A [Policy] is data: the purpose table (for each purpose, the grounds
// that may serve it, the tiers each ground may unlock and the most it may
// reveal), the switches, the allowlists and the role names. [Default] is
// the model's policy; [Load] reads a policy file ([Policy.Marshal] writes
// one) and [Policy.SHA256] identifies it in audit records. [New] validates
// a policy and compiles it into an [Engine], whose [Engine.Decide] decides
// one token.
//
// # The floor
//
// The law sets a floor that no policy can lower; [Policy.Validate] (run by
// Load and New) rejects a policy that would:
//   - permit a ground at a tier pdpa-model §2.4.2 forbids: contract,
//     legitimate interest, vital interest (except T2 when the subject is
//     incapable), public task, research or made_public beyond their
//     columns. T1 is the seed §4.2 promise: relax it with the
//     notice_elevated_tier switch, not by listing T1;
//   - let consent reach a criminal record (T2+) for any purpose but
//     provider_vetting, or a contract reach T1 outside payment (and only
//     for card and bank data);
//   - release research_statistics output other than masked;
//   - serve another purpose by the data_subject_request ground;
//   - widen the vital allowlist beyond T0 (or T2 for the incapable-only
//     list), the subject-state lists, the third-party purposes, or the
//     contract T1 categories beyond the model's;
//   - accept authority instruments with fewer than two approvals, or
//     LIAs, DSRs, research protocols, mandates and made-public records
//     with none;
//   - lengthen the incident window past 24 h, the criminal-record
//     retention past 6 months or the DSR window past 30 days.
//
// # Order of checks
//
// Decide applies pdpa-model §2.4.3 steps 2 to 9; the first failing check
// decides. Step 1 (the role's permission for the category) and steps 10-11
// (audit, release) are the vault's.
//
//  2. Token: TOKEN_UNKNOWN, TOKEN_ERASED, TOKEN_EXPIRED, CATEGORY_MISMATCH.
//  3. Subject: SUBJECT_UNKNOWN; TOKEN_ERASED (subject or category shredded);
//     ACCOUNT_SUSPENDED (and ROLE_NOT_PERMITTED for account_integrity
//     without the integrity role); ERASURE_PENDING; SUBJECT_RESTRICTED;
//     RETENTION_EXPIRED; OBJECTION_UPHELD.
//  4. Static policy: PURPOSE_UNKNOWN, GROUND_UNKNOWN, PURPOSE_NOT_ENABLED,
//     REVEAL_UNKNOWN, GROUND_NOT_PERMITTED_FOR_PURPOSE,
//     VITAL_CATEGORY_NOT_ALLOWED, GROUND_NOT_PERMITTED_FOR_TIER (for consent:
//     PURPOSE_NOT_COVERED).
//  5. Evidence for the ground (pdpa-model §2.4.1).
//  6. Minors (consent only): GUARDIAN_CONSENT_REQUIRED,
//     SUBJECT_CONSENT_REQUIRED, SUBJECT_AGE_UNKNOWN.
//  7. Third parties: THIRD_PARTY_SUBJECT.
//  8. Cross-border: TRANSFER_BASIS_MISSING, TRANSFER_BASIS_INVALID.
//  9. Reveal: the lower of the requested level and the ground's maximum;
//     ALLOW when full, ALLOW_MASKED otherwise.
//
// # What the vault puts in Input
//
//   - Now: the decision time. Request: the caller's request; OnBehalfOf is
//     the human the call is made for, compared with a DSR's requester.
//   - Token: from the vault's own token row (never the caller's claim).
//   - Subject: the record of Token.Subject (nil when not registered);
//     Linked: for a third party, the record of Subject.LinkedTo.
//   - Consent: for ground "consent", the consent record named by
//     Ground.Ref. Evidence: for every other ground, the evidence record
//     named by Ground.Ref. The kind must match: contract → contract,
//     legal_obligation → statute, authority_instrument →
//     authority_instrument, vital_interest → incident, public_task →
//     mandate, legitimate_interest → lia, research_statistics →
//     research_protocol, legal_claims → legal_case, made_public →
//     made_public, data_subject_request → dsr.
//   - TransferConsent (transfer basis "consent") or TransferEvidence (any
//     other type: adequacy, bcr, safeguards → transfer_safeguard; law →
//     statute; contract_* → contract; vital → incident;
//     substantial_public_interest → mandate), named by TransferBasis.Ref.
//
// A record that is not found is nil; a nil record denies
// (CONSENT_NOT_FOUND, EVIDENCE_NOT_FOUND, TRANSFER_BASIS_INVALID).
//
// # Inference-level choices
//
// The model leaves these open; each is marked [Inference] and should be
// confirmed by Thai counsel where it bears on the law.
//
//   - Consent at a tier the purpose's consent row does not list denies with
//     PURPOSE_NOT_COVERED, not GROUND_NOT_PERMITTED_FOR_TIER: §3 T-14b
//     expects PURPOSE_NOT_COVERED for a criminal-record consent used for
//     marketing.
//   - Under vital interest the allowlist replaces the tier check, so T1
//     and T2+ categories deny with VITAL_CATEGORY_NOT_ALLOWED (§3 T-25a).
//   - An erased subject, or a shredded category, denies with TOKEN_ERASED
//     (§3 T-35), whether or not the token row is marked; SUBJECT_ERASED is
//     not used. Every decision needs a registered subject.
//   - An empty reveal level means masked (§2.1 rule 7).
//   - Evidence scope lists: empty means "any" only where a record is not
//     about particular subjects or purposes. Subjects must be listed for
//     contract, authority_instrument, incident, dsr, legal_case and
//     made_public (empty = any for lia, statute, mandate,
//     research_protocol); categories must be listed for every kind but dsr
//     (the subject's own data: all) and incident (the vital allowlist
//     bounds it); purposes must be listed for contract, lia and statute.
//     An LIA covers every listed (purpose, category) pair.
//   - An incident about an account holder also covers the third parties
//     linked to that account holder (T-23: the emergency contact).
//   - The incapable-only vital categories (health, disability) need the
//     incident's subject_incapable_of_consent attribute or a subject
//     record with capable_of_consent false.
//   - An incident is usable for 24 h (vital_incident_validity_hours) from
//     valid_from, else created_at, and only if opened by the emergency
//     role (Evidence.CreatedByRoles). A DSR without valid_until is usable
//     for 30 days from its opening.
//   - A DSR requester who is not the subject needs a verified link: a
//     representative for anyone, a guardian only for a minor (not sui
//     juris) or an incapable subject.
//   - A criminal-record consent is usable for criminal_record_retention_
//     months after granted_at (RETENTION_EXPIRED), on top of the subject's
//     retention timer; a due timer denies every ground except the legal-
//     hold grounds on a held category.
//   - An upheld s.32 objection (for the purpose, or "" for all) blocks
//     legitimate interest, public task and research_statistics; any
//     upheld objection blocks marketing under every ground.
//   - Under transfer_require_consent, adequacy, BCRs, safeguards and the
//     two contract exceptions are insufficient: only an explicit transfer
//     consent (listing the destination, informed of inadequacy, covering
//     the category) or the statutory derogations (law, vital with the
//     subject unable to consent, substantial public interest) pass. A
//     recipient without a country is treated as abroad; a foreign
//     authority instrument's jurisdiction is a destination.
//   - An incapable adult consents through a verified guardian
//     (custodian), like a child under 10. A guardian-only consent for a
//     subject of 10 or over denies with SUBJECT_CONSENT_REQUIRED.
//   - Alerts are raised on allowed decisions only (instrument: dpo;
//     vital interest: incident; legal claims: legal).
//   - account_integrity also accepts consent (§3 T-33b uses one);
//     corporate_transaction is disabled by default ("no detokenising");
//     made_public serves no purpose by default; analytics takes
//     research_statistics (masked); harm_prevention takes vital interest
//     at T0 only; service_delivery reveals at most partial.
//   - The integrity role is required for account_integrity only while the
//     subject is suspended or under review.
//   - A third party's data reaches a DSR only when the third party is the
//     requester (OnBehalfOf), not a representative.
//   - A policy file is read over the defaults; lists that the model bounds
//     may only narrow; category_tiers may only raise a tier.
//   - IRIs for the s.26(5) items: (a) A9-2-h, (b) A9-2-i, (c) A9-2-b,
//     (d) A9-2-j, (e) A9-2-g; the DSR ground is dpv:DataSubjectRight.
//   - With holiday_extension on, Saturdays and Sundays are non-working
//     days besides the listed holidays.
package policy
