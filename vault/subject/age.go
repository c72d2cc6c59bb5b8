package subject

import (
	"slices"
	"time"
)

// ICT is Asia/Bangkok (UTC+7). Thailand has no daylight-saving time, so a
// fixed zone is exact and no tzdata is needed.
var ICT = time.FixedZone("ICT", 7*3600)

// dateLayout is the birth-date and calendar-date format.
const dateLayout = "2006-01-02"

// parseYMD parses a strict YYYY-MM-DD calendar date without allocating
// (Decide computes ages per token).
func parseYMD(s string) (y int, m time.Month, d int, ok bool) {
	if len(s) != len(dateLayout) || s[4] != '-' || s[7] != '-' {
		return 0, 0, 0, false
	}
	num := func(b string) (int, bool) {
		n := 0
		for i := 0; i < len(b); i++ {
			c := b[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	yy, ok1 := num(s[0:4])
	mm, ok2 := num(s[5:7])
	dd, ok3 := num(s[8:10])
	if !ok1 || !ok2 || !ok3 || mm < 1 || mm > 12 || dd < 1 || dd > daysIn(time.Month(mm), yy) {
		return 0, 0, 0, false
	}
	return yy, time.Month(mm), dd, true
}

func daysIn(m time.Month, y int) int {
	switch m {
	case time.February:
		if isLeap(y) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// parseDate parses a strict YYYY-MM-DD date as midnight ICT.
func parseDate(s string) (time.Time, bool) {
	y, m, d, ok := parseYMD(s)
	if !ok {
		return time.Time{}, false
	}
	return time.Date(y, m, d, 0, 0, 0, 0, ICT), true
}

// Age returns the subject's age in completed years at now, counted in
// Asia/Bangkok calendar days (a person turns n at 00:00 ICT on the n-th
// birthday), and false when the birth date is unknown or malformed.
//
// A person born on 29 February turns a year older on 1 March in common
// years [Inference: CCC s.193/5 ends a period in years on the day before
// the corresponding date, and on the last day of the month when there is
// no such date; the later reading keeps a minor a minor for one more day].
func Age(s *Subject, now time.Time) (int, bool) {
	if s == nil {
		return 0, false
	}
	by, bm, bd, ok := parseYMD(s.BirthDate)
	if !ok {
		return 0, false
	}
	y, m, d := now.In(ICT).Date()
	if bm == time.February && bd == 29 && !isLeap(y) {
		bm, bd = time.March, 1
	}
	age := y - by
	if m < bm || (m == bm && d < bd) {
		age--
	}
	if age < 0 {
		return 0, false
	}
	return age, true
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// AgeBandAt returns the coarse age band at now (pdpa-model §2.5; named
// AgeBandAt because [AgeBand] is the type): "<10",
// "10-19", ">=20", or AgeUnknown. It is the age from the birth date only:
// a married minor is sui juris (CCC s.20) and consents alone, but the band
// stays "10-19"; the consent rules take Married into account
// (consent.GuardianRule), so the audit record shows the real band.
func AgeBandAt(s *Subject, now time.Time) AgeBand {
	age, ok := Age(s, now)
	switch {
	case !ok:
		return AgeUnknown
	case age < 10:
		return AgeUnder10
	case age < 20:
		return Age10To19
	default:
		return AgeAdult
	}
}

// SuiJuris reports whether the subject may consent alone under s.20: of
// age (20 or over) or married (CCC s.20), and not declared incapable. The
// second result is false when the birth date is unknown and the subject is
// not married, so the answer cannot be known.
func SuiJuris(s *Subject, now time.Time) (sui, known bool) {
	if s == nil {
		return false, false
	}
	if s.CapableOfConsent != nil && !*s.CapableOfConsent {
		return false, true
	}
	switch AgeBandAt(s, now) {
	case AgeAdult:
		return true, true
	case AgeUnder10:
		return false, true
	case Age10To19:
		return s.Married, true
	default:
		if s.Married {
			return true, true
		}
		return false, false
	}
}

// Incapable reports whether the subject is recorded as incapable of giving
// consent (an incompetent person).
func Incapable(s *Subject) bool {
	return s != nil && s.CapableOfConsent != nil && !*s.CapableOfConsent
}

// CategoryHeld reports whether cat is under a legal hold in force at now.
func CategoryHeld(s *Subject, cat string, now time.Time) bool {
	if s == nil {
		return false
	}
	for i := range s.LegalHolds {
		h := &s.LegalHolds[i]
		if (h.Until.IsZero() || now.Before(h.Until)) && slices.Contains(h.Categories, cat) {
			return true
		}
	}
	return false
}

// CategoryErased reports whether cat was shredded for this subject (or the
// whole subject was erased).
func CategoryErased(s *Subject, cat string) bool {
	if s == nil {
		return false
	}
	return s.State == Erased || slices.Contains(s.ErasedCategories, cat)
}

// CategoryRestricted reports whether cat is restricted under s.34, either
// because the whole subject is or because the category is.
func CategoryRestricted(s *Subject, cat string) bool {
	if s == nil {
		return false
	}
	if s.State == Restricted {
		return true
	}
	return s.Restriction != nil && slices.Contains(s.Restriction.Categories, cat)
}

// RetentionDue reports whether a retention timer for cat has run out at now.
func RetentionDue(s *Subject, cat string, now time.Time) bool {
	if s == nil {
		return false
	}
	for i := range s.Retention {
		r := &s.Retention[i]
		if r.Category == cat && !now.Before(r.ShredAt) {
			return true
		}
	}
	return false
}

// ObjectionUpheld reports whether an s.32 objection upheld at or before now
// covers purpose: an objection for that purpose or for every purpose ("").
func ObjectionUpheld(s *Subject, purpose string, now time.Time) bool {
	if s == nil {
		return false
	}
	for i := range s.Objections {
		o := &s.Objections[i]
		if !now.Before(o.UpheldAt) && (o.Purpose == "" || o.Purpose == purpose) {
			return true
		}
	}
	return false
}

// AnyObjectionUpheld reports whether any s.32 objection was upheld at or
// before now. Direct marketing is blocked by any of them.
func AnyObjectionUpheld(s *Subject, now time.Time) bool {
	if s == nil {
		return false
	}
	for i := range s.Objections {
		if !now.Before(s.Objections[i].UpheldAt) {
			return true
		}
	}
	return false
}
