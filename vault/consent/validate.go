package consent

import (
	"errors"
	"slices"
	"strconv"

	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// ErrInvalid is wrapped by every validation error (a *FieldError).
var ErrInvalid = errors.New("consent: invalid")

// FieldError names the invalid field of a consent record and why. Its
// message never contains the field's value (a list entry is named by its
// index).
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "consent: " + e.Field + ": " + e.Reason }

// Unwrap returns [ErrInvalid].
func (e *FieldError) Unwrap() error { return ErrInvalid }

func fieldErr(field, reason string) error { return &FieldError{Field: field, Reason: reason} }

func indexed(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

// purposeCodes mirrors policy.Purposes (the policy package imports this
// one, so it cannot be imported here); a test keeps the two in step.
var purposeCodes = [...]string{
	"identity_verification", "provider_vetting", "service_delivery", "payment",
	"support", "service_notices", "marketing", "analytics",
	"partner_financial_offers", "partner_insurance_offers", "corporate_transaction",
	"emergency", "public_health", "fraud_aml", "legal_authority", "dispute",
	"harm_prevention", "account_integrity", "data_subject_request",
}

// purposeVetting is the only purpose a criminal-record consent may name
// (PDPC criminal-record Notification, pdpa-model §1.1).
const purposeVetting = "provider_vetting"

// KnownPurposes returns the purpose codes a consent may name (the same as
// policy.Purposes).
func KnownPurposes() []string { return slices.Clone(purposeCodes[:]) }

// KnownPurpose reports whether p is a purpose code.
func KnownPurpose(p string) bool { return slices.Contains(purposeCodes[:], p) }

// KnownMethod reports whether m is a collection method (valid or not as
// consent: see [CountsAsConsent]).
func KnownMethod(m string) bool {
	switch m {
	case MethodInApp, MethodWebForm, MethodPaper, MethodTOSAcceptance, MethodContinuedUse, MethodDeemed:
		return true
	}
	return false
}

// validID reports whether id can name a record: 1 to 128 printable ASCII
// bytes without spaces or '/'.
func validID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= 0x20 || c >= 0x7f || c == '/' {
			return false
		}
	}
	return true
}

func validSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func validLanguage(s string) bool {
	if len(s) < 2 || len(s) > 3 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

// Validate checks a consent record as granted (POST /v1/consents, after the
// vault set id and granted_at). It checks: subject and (if set) id are
// record ids; granted_by is non-empty, names known parties (the subject at most
// once, each guardian once), a guardian has an id, a subject grantor's id (if given) is the
// subject; categories and purposes are non-empty, known and without
// duplicates; a T2 or T2+ category needs explicit consent and separate
// wording (pdpa-model §2.5), and a criminal-record consent may name only
// the vetting purpose; recipients have ids and valid countries, without
// duplicates; destinations are ISO 3166-1 alpha-2 codes without duplicates;
// informed_of_inadequacy needs explicit consent and destinations (s.28(2));
// notice_version is set; collection_method is known; expires_at, when set,
// is after granted_at; hashes are lower-case SHA-256 hex; events have known
// types and times. Errors are *FieldError values wrapping [ErrInvalid].
//
// A record with a tos_acceptance, continued_use or deemed collection method
// is valid as a record (it is kept for history) but never counts as
// consent: see [CountsAsConsent].
func Validate(c *Consent) error {
	if c == nil {
		return fieldErr("consent", "missing")
	}
	if c.ID != "" && !validID(c.ID) {
		return fieldErr("id", "must be 1 to 128 printable ASCII characters without spaces or '/'")
	}
	if !validID(c.Subject) {
		return fieldErr("subject", "required: a subject id")
	}
	if err := validateGrantors(c); err != nil {
		return err
	}
	if len(c.Categories) == 0 {
		return fieldErr("categories", "required: at least one category")
	}
	sensitive, criminal := false, false
	for i, name := range c.Categories {
		cat, ok := tokenizer.Lookup(name)
		if !ok {
			return fieldErr(indexed("categories", i), "unknown category")
		}
		if slices.Contains(c.Categories[:i], name) {
			return fieldErr(indexed("categories", i), "duplicate entry")
		}
		switch cat.Tier {
		case tokenizer.T2:
			sensitive = true
		case tokenizer.T2Plus:
			sensitive, criminal = true, true
		}
	}
	if len(c.Purposes) == 0 {
		return fieldErr("purposes", "required: at least one purpose")
	}
	for i, p := range c.Purposes {
		if !KnownPurpose(p) {
			return fieldErr(indexed("purposes", i), "unknown purpose")
		}
		if slices.Contains(c.Purposes[:i], p) {
			return fieldErr(indexed("purposes", i), "duplicate entry")
		}
		if criminal && p != purposeVetting {
			return fieldErr(indexed("purposes", i), "a criminal-record consent may name only provider_vetting")
		}
	}
	if sensitive && !c.Explicit {
		return fieldErr("explicit", "must be true for a T2 or T2+ (s.26) category")
	}
	for i, r := range c.Recipients {
		if !validID(r.ID) {
			return fieldErr(indexed("recipients", i)+".id", "required: a recipient id")
		}
		if r.Country != "" && !ValidCountry(r.Country) {
			return fieldErr(indexed("recipients", i)+".country", "must be an ISO 3166-1 alpha-2 code in upper case")
		}
		for _, x := range c.Recipients[:i] {
			if x.ID == r.ID {
				return fieldErr(indexed("recipients", i), "duplicate entry")
			}
		}
	}
	for i, d := range c.Destinations {
		if !ValidCountry(d) {
			return fieldErr(indexed("destinations", i), "must be an ISO 3166-1 alpha-2 code in upper case")
		}
		if slices.Contains(c.Destinations[:i], d) {
			return fieldErr(indexed("destinations", i), "duplicate entry")
		}
	}
	if c.InformedOfInadequacy {
		if len(c.Destinations) == 0 {
			return fieldErr("informed_of_inadequacy", "needs the destinations the subject was told about")
		}
		if !c.Explicit {
			return fieldErr("informed_of_inadequacy", "a transfer consent (s.28(2)) must be explicit")
		}
	}
	if c.NoticeVersion == "" {
		return fieldErr("notice_version", "required")
	}
	if c.NoticeSHA256 != "" && !validSHA256Hex(c.NoticeSHA256) {
		return fieldErr("notice_sha256", "must be 64 lower-case hex digits")
	}
	if c.EvidenceSHA256 != "" && !validSHA256Hex(c.EvidenceSHA256) {
		return fieldErr("evidence_sha256", "must be 64 lower-case hex digits")
	}
	if c.Language != "" && !validLanguage(c.Language) {
		return fieldErr("language", "must be an ISO 639 code in lower case (th, en)")
	}
	if c.CollectionMethod == "" {
		return fieldErr("collection_method", "required")
	}
	if !KnownMethod(c.CollectionMethod) {
		return fieldErr("collection_method", "unknown collection method")
	}
	switch subject.AgeBand(c.SubjectAgeBandAtGrant) {
	case subject.AgeUnknown, subject.AgeUnder10, subject.Age10To19, subject.AgeAdult:
	default:
		return fieldErr("subject_age_band_at_grant", "must be <10, 10-19 or >=20")
	}
	if c.GrantedAt.IsZero() {
		return fieldErr("granted_at", "required")
	}
	if !c.ExpiresAt.IsZero() && !c.ExpiresAt.After(c.GrantedAt) {
		return fieldErr("expires_at", "must be after granted_at")
	}
	for i, e := range c.Events {
		switch e.Type {
		case EventGiven, EventRenewed, EventWithdrawn, EventExpired, EventInvalidated:
		default:
			return fieldErr(indexed("events", i)+".type", "unknown event type")
		}
		if e.At.IsZero() {
			return fieldErr(indexed("events", i)+".at", "required")
		}
	}
	return nil
}

func validateGrantors(c *Consent) error {
	if len(c.GrantedBy) == 0 {
		return fieldErr("granted_by", "required: the subject, a guardian, or both")
	}
	for i, g := range c.GrantedBy {
		f := indexed("granted_by", i)
		switch g.Party {
		case PartySubject:
			if g.ID != "" && g.ID != c.Subject {
				return fieldErr(f+".id", "a subject grantor must be the consent's subject")
			}
		case PartyGuardian:
			if !validID(g.ID) {
				return fieldErr(f+".id", "required for a guardian")
			}
			if g.ID == c.Subject {
				return fieldErr(f+".id", "a guardian cannot be the subject")
			}
			if g.Verified && g.VerificationRef == "" {
				return fieldErr(f+".verification_ref", "required for a verified guardian (the document check)")
			}
		case "":
			return fieldErr(f+".party", "required (subject or guardian)")
		default:
			return fieldErr(f+".party", "must be subject or guardian")
		}
		for _, x := range c.GrantedBy[:i] {
			if x.Party == g.Party && (g.Party == PartySubject || x.ID == g.ID) {
				return fieldErr(f, "duplicate entry")
			}
		}
	}
	return nil
}
