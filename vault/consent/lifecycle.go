package consent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
)

// Lifecycle errors.
var (
	// ErrAlreadyWithdrawn: the consent was already withdrawn.
	ErrAlreadyWithdrawn = errors.New("consent: already withdrawn")
	// ErrInvalidated: the consent was invalidated; there is nothing left to
	// withdraw.
	ErrInvalidated = errors.New("consent: invalidated")
)

// Status returns the DPV consent status at now:
//
//   - [StatusInvalid] once an INVALIDATED event is at or before now;
//   - [StatusWithdrawn] once a WITHDRAWN event is at or before now;
//   - [StatusExpired] from expires_at on (now >= expires_at);
//   - [StatusUnknown] before granted_at;
//   - [StatusRenewed] after a RENEWED event, else [StatusGiven].
//
// Only the last two allow processing. Status says nothing about the
// collection method: see [CountsAsConsent].
func Status(c *Consent, now time.Time) string {
	renewed := false
	withdrawn := false
	for i := range c.Events {
		e := &c.Events[i]
		if now.Before(e.At) {
			continue
		}
		switch e.Type {
		case EventInvalidated:
			return StatusInvalid
		case EventWithdrawn:
			withdrawn = true
		case EventRenewed:
			renewed = true
		}
	}
	switch {
	case withdrawn:
		return StatusWithdrawn
	case !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt):
		return StatusExpired
	case now.Before(c.GrantedAt):
		return StatusUnknown
	case renewed:
		return StatusRenewed
	}
	return StatusGiven
}

// Active reports whether the status at now allows processing
// (ConsentGiven or RenewedConsentGiven).
func Active(c *Consent, now time.Time) bool {
	switch Status(c, now) {
	case StatusGiven, StatusRenewed:
		return true
	}
	return false
}

// Withdraw appends a WITHDRAWN event at now by actor through channel (the
// in-app toggle, or support entering an email with its ticket reference).
// From now on [Status] is ConsentWithdrawn. A second withdrawal returns
// [ErrAlreadyWithdrawn] and changes nothing. The caller persists the
// record before answering, so that no later decision can see the consent
// as given (pdpa-model §2.5).
func Withdraw(c *Consent, now time.Time, actor, channel string) error {
	for _, e := range c.Events {
		switch e.Type {
		case EventWithdrawn:
			return ErrAlreadyWithdrawn
		case EventInvalidated:
			return ErrInvalidated
		}
	}
	if actor == "" {
		return fieldErr("actor", "required")
	}
	if channel == "" {
		return fieldErr("channel", "required")
	}
	c.Events = append(c.Events, Event{Type: EventWithdrawn, At: now, Actor: actor, Channel: channel})
	return nil
}

// CountsAsConsent reports whether the record's collection method can
// satisfy a consent ground at all: in_app, web_form and paper can;
// tos_acceptance, continued_use, deemed (seed §1, §4.5, §10, §4.3) and any
// unknown method cannot (s.19 ¶2–¶4, pdpa-model §2.3).
func CountsAsConsent(c *Consent) bool {
	switch c.CollectionMethod {
	case MethodInApp, MethodWebForm, MethodPaper:
		return true
	}
	return false
}

// Covers reports whether the record lists the purpose and the category.
func Covers(c *Consent, purpose, category string) bool {
	return slices.Contains(c.Purposes, purpose) && slices.Contains(c.Categories, category)
}

// CoversRecipient reports whether the record lists the recipient: same id,
// and, when the record names the recipient's country, the same country.
func CoversRecipient(c *Consent, id, country string) bool {
	for _, r := range c.Recipients {
		if r.ID == id {
			return r.Country == "" || strings.EqualFold(r.Country, country)
		}
	}
	return false
}

// CoversTransfer reports whether the record can serve as an s.28(2)
// transfer consent to country: explicit, informed of the destination's
// inadequacy, and listing the destination.
func CoversTransfer(c *Consent, country string) bool {
	if !c.Explicit || !c.InformedOfInadequacy || country == "" {
		return false
	}
	for _, d := range c.Destinations {
		if strings.EqualFold(d, country) {
			return true
		}
	}
	return false
}

// Hash returns the hex SHA-256 of the canonical record, for the audit
// snapshot: the JSON encoding of the record with every time in UTC, and
// categories, purposes, destinations and recipients sorted (their order
// carries no meaning); granted_by and events keep their order. Two records
// that differ only in list order or time zone have the same hash.
func Hash(c *Consent) string {
	x := *c
	x.GrantedAt = x.GrantedAt.UTC()
	x.ExpiresAt = x.ExpiresAt.UTC()
	x.Categories = sortedCopy(c.Categories)
	x.Purposes = sortedCopy(c.Purposes)
	x.Destinations = sortedCopy(c.Destinations)
	if c.Recipients != nil {
		x.Recipients = slices.Clone(c.Recipients)
		slices.SortFunc(x.Recipients, func(a, b Recipient) int {
			if n := strings.Compare(a.ID, b.ID); n != 0 {
				return n
			}
			return strings.Compare(a.Country, b.Country)
		})
	}
	if c.Events != nil {
		x.Events = slices.Clone(c.Events)
		for i := range x.Events {
			x.Events[i].At = x.Events[i].At.UTC()
		}
	}
	b, err := json.Marshal(&x)
	if err != nil {
		// Consent has only strings, bools, times and slices of them;
		// only an out-of-range time (year > 9999) fails to encode.
		b = []byte("consent: unencodable record: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func sortedCopy(xs []string) []string {
	if xs == nil {
		return nil
	}
	ys := slices.Clone(xs)
	slices.Sort(ys)
	return ys
}

// ExpiryRules are the default expiries applied at grant time when the
// request gives none (pdpa-model §2.5).
type ExpiryRules struct {
	// Months is the default life of a consent naming any of Purposes.
	Months   int
	Purposes []string
	// CriminalRecordMonths bounds a criminal-record (vetting) consent: it
	// "lasts until the retention timer ends" and the timer runs for this
	// many months after the vetting decision.
	CriminalRecordMonths int
}

// DefaultExpiryRules are the model's defaults: 24 months for marketing and
// partner consents [Inference, §2.5], and 6 months for a criminal-record
// consent (the draft Notification's retention [S12c]).
func DefaultExpiryRules() ExpiryRules {
	return ExpiryRules{
		Months:               24,
		Purposes:             []string{"marketing", "partner_financial_offers", "partner_insurance_offers"},
		CriminalRecordMonths: 6,
	}
}

// DefaultExpiry returns the expiry the rules give a record without one,
// counted from granted_at (the earliest applicable rule wins), and false
// when no rule applies or the record already has an expiry.
//
// A criminal-record consent gets granted_at + CriminalRecordMonths: the
// vetting decision (which starts the retention timer) cannot precede the
// consent, so this never outlives the timer by more than the time the
// decision took [Inference].
func DefaultExpiry(c *Consent, r ExpiryRules) (time.Time, bool) {
	if !c.ExpiresAt.IsZero() || c.GrantedAt.IsZero() {
		return time.Time{}, false
	}
	var exp time.Time
	if r.Months > 0 {
		for _, p := range c.Purposes {
			if slices.Contains(r.Purposes, p) {
				exp = c.GrantedAt.AddDate(0, r.Months, 0)
				break
			}
		}
	}
	if r.CriminalRecordMonths > 0 && slices.Contains(c.Categories, categoryCriminalRecord) {
		if t := c.GrantedAt.AddDate(0, r.CriminalRecordMonths, 0); exp.IsZero() || t.Before(exp) {
			exp = t
		}
	}
	return exp, !exp.IsZero()
}

// ApplyDefaultExpiry sets ExpiresAt from [DefaultExpiry] when the record
// has none, and reports whether it did.
func ApplyDefaultExpiry(c *Consent, r ExpiryRules) bool {
	exp, ok := DefaultExpiry(c, r)
	if ok {
		c.ExpiresAt = exp
	}
	return ok
}

const categoryCriminalRecord = "criminal_record"
