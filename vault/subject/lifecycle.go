package subject

import (
	"errors"
	"slices"
	"time"
)

// Sentinel errors of the lifecycle functions.
var (
	// ErrInvalidTransition: the call is not allowed in the subject's
	// current state (suspending a suspended subject, reinstating an active
	// one, ...).
	ErrInvalidTransition = errors.New("subject: invalid state transition")
	// ErrErased: the subject was erased; nothing can change it any more.
	ErrErased = errors.New("subject: erased")
	// ErrDeadlinePassed: proof arrived after the seed §4.6 deadline.
	ErrDeadlinePassed = errors.New("subject: evidence deadline passed")
	// ErrLegalHold: a category (or the whole subject) cannot be erased
	// while a legal hold covers it.
	ErrLegalHold = errors.New("subject: under legal hold")
)

// EvidenceWindowDays is the seed §4.6 evidence window.
const EvidenceWindowDays = 15

// New returns a new ACTIVE subject with the profile fields of p (id, type,
// birth_date, married, capable_of_consent, linked_to), after [Validate].
// Every other field of p is ignored.
func New(p Subject, now time.Time) (*Subject, error) {
	s := &Subject{
		ID:               p.ID,
		Type:             p.Type,
		BirthDate:        p.BirthDate,
		Married:          p.Married,
		CapableOfConsent: cloneBool(p.CapableOfConsent),
		LinkedTo:         p.LinkedTo,
	}
	if err := Validate(s, now); err != nil {
		return nil, err
	}
	s.State = Active
	s.StateSince = now
	s.CreatedAt = now
	s.UpdatedAt = now
	return s, nil
}

// Update applies the profile fields of p to s (a PUT on an existing
// subject). The type cannot change: a data subject turned third party (or
// back) would change which grounds reach its data.
func Update(s *Subject, p Subject, now time.Time) error {
	if s.State == Erased {
		return ErrErased
	}
	if p.Type != s.Type {
		return fieldErr("type", "cannot change once registered")
	}
	next := *s
	next.BirthDate = p.BirthDate
	next.Married = p.Married
	next.CapableOfConsent = cloneBool(p.CapableOfConsent)
	next.LinkedTo = p.LinkedTo
	if err := Validate(&next, now); err != nil {
		return err
	}
	next.UpdatedAt = now
	*s = next
	return nil
}

func cloneBool(b *bool) *bool {
	if b == nil {
		return nil
	}
	v := *b
	return &v
}

func setState(s *Subject, st State, now time.Time) {
	s.State = st
	s.StateSince = now
	s.UpdatedAt = now
}

// live returns ErrErased for an erased subject and ErrInvalidTransition for
// a record whose state is not a known one.
func live(s *Subject) error {
	if s.State == Erased {
		return ErrErased
	}
	if !validState(s.State) {
		return ErrInvalidTransition
	}
	return nil
}

// SuspensionDeadline returns the end of the seed §4.6 evidence window for a
// detection at detectedAt: 23:59:59.999999999 ICT on the 15th day counted
// from the day after detection (the day of detection is not counted, CCC
// s.193/3 [Memory]). If nonWorking is not nil and reports the last day as a
// holiday, the deadline moves to the end of the next working day (CCC
// s.193/8 [Memory]; a policy switch, off by default). nonWorking receives
// midnight ICT of the day.
func SuspensionDeadline(detectedAt time.Time, nonWorking func(day time.Time) bool) time.Time {
	y, m, d := detectedAt.In(ICT).Date()
	last := time.Date(y, m, d+EvidenceWindowDays, 0, 0, 0, 0, ICT)
	if nonWorking != nil {
		// Bounded: no calendar has a year of consecutive holidays.
		for i := 0; i < 366 && nonWorking(last); i++ {
			last = last.AddDate(0, 0, 1)
		}
	}
	return last.Add(24*time.Hour - time.Nanosecond)
}

// Suspend moves an ACTIVE subject to SUSPENDED_PENDING_EVIDENCE (seed
// §4.6): false data was detected at detectedAt (not after now); the subject
// has until [SuspensionDeadline] to send proof.
func Suspend(s *Subject, now, detectedAt time.Time, reason string) error {
	return SuspendWithCalendar(s, now, detectedAt, reason, nil)
}

// SuspendWithCalendar is [Suspend] with the holiday extension: nonWorking
// reports the days on which the deadline cannot fall (see
// [SuspensionDeadline]); nil disables the extension.
func SuspendWithCalendar(s *Subject, now, detectedAt time.Time, reason string, nonWorking func(day time.Time) bool) error {
	if err := live(s); err != nil {
		return err
	}
	if s.State != Active {
		return ErrInvalidTransition
	}
	if detectedAt.IsZero() {
		return fieldErr("detected_at", "required")
	}
	if detectedAt.After(now) {
		return fieldErr("detected_at", "is in the future")
	}
	s.Suspension = &Suspension{
		DetectedAt: detectedAt,
		Deadline:   SuspensionDeadline(detectedAt, nonWorking),
		Reason:     reason,
	}
	setState(s, SuspendedPendingEvidence, now)
	return nil
}

// DeadlinePassed reports whether a suspended subject's evidence window has
// closed at now without proof. The vault may then choose erasure (the seed
// only "reserves the right"): see [MarkErasurePending].
func DeadlinePassed(s *Subject, now time.Time) bool {
	return s.State == SuspendedPendingEvidence && s.Suspension != nil && now.After(s.Suspension.Deadline)
}

// ProofReceived records the proof the subject sent in (seed §4.6) at
// receivedAt and moves the subject to EVIDENCE_UNDER_REVIEW; the account
// stays suspended until [Reinstate] or [MarkErasurePending]. Proof received
// after the deadline returns [ErrDeadlinePassed].
func ProofReceived(s *Subject, now, receivedAt time.Time) error {
	if err := live(s); err != nil {
		return err
	}
	if s.State != SuspendedPendingEvidence || s.Suspension == nil {
		return ErrInvalidTransition
	}
	if receivedAt.IsZero() {
		return fieldErr("received_at", "required")
	}
	if receivedAt.After(now) {
		return fieldErr("received_at", "is in the future")
	}
	if receivedAt.Before(s.Suspension.DetectedAt) {
		return fieldErr("received_at", "is before the detection")
	}
	if receivedAt.After(s.Suspension.Deadline) {
		return ErrDeadlinePassed
	}
	s.Suspension.ProofReceivedAt = receivedAt
	setState(s, EvidenceUnderReview, now)
	return nil
}

// Reinstate ends a suspension (the proof was accepted): the subject becomes
// ACTIVE again. The corrected data is re-tokenised by the caller (s.35,
// s.36).
func Reinstate(s *Subject, now time.Time) error {
	if err := live(s); err != nil {
		return err
	}
	if s.State != SuspendedPendingEvidence && s.State != EvidenceUnderReview {
		return ErrInvalidTransition
	}
	s.Suspension = nil
	setState(s, Active, now)
	return nil
}

// Restrict applies an s.34 restriction. With no categories the whole
// subject becomes RESTRICTED; with categories only those are restricted and
// the state stays ACTIVE. Only an ACTIVE subject without a restriction can
// be restricted.
func Restrict(s *Subject, now time.Time, reason string, categories []string) error {
	if err := live(s); err != nil {
		return err
	}
	if s.State != Active || s.Restriction != nil {
		return ErrInvalidTransition
	}
	if err := checkList("categories", categories); err != nil {
		return err
	}
	s.Restriction = &Restriction{Reason: reason, Since: now, Categories: slices.Clone(categories)}
	if len(categories) == 0 {
		setState(s, Restricted, now)
	} else {
		s.UpdatedAt = now
	}
	return nil
}

// Unrestrict lifts an s.34 restriction.
func Unrestrict(s *Subject, now time.Time) error {
	if err := live(s); err != nil {
		return err
	}
	switch {
	case s.State == Restricted:
		s.Restriction = nil
		setState(s, Active, now)
	case s.Restriction != nil:
		s.Restriction = nil
		s.UpdatedAt = now
	default:
		return ErrInvalidTransition
	}
	return nil
}

// UpholdObjection records an upheld s.32 objection for purpose ("" for
// every purpose based on legitimate interest or public task). Upholding the
// same objection twice changes nothing.
func UpholdObjection(s *Subject, now time.Time, purpose string) error {
	if err := live(s); err != nil {
		return err
	}
	for _, o := range s.Objections {
		if o.Purpose == purpose {
			return nil
		}
	}
	s.Objections = append(s.Objections, Objection{Purpose: purpose, UpheldAt: now})
	s.UpdatedAt = now
	return nil
}

// AddLegalHold adds a legal hold (a case or an authority instrument needs
// the data): its categories are kept out of erasure until h.Until, which
// must be after now. h.ID, h.Ref and h.Categories are required.
func AddLegalHold(s *Subject, now time.Time, h LegalHold) error {
	if err := live(s); err != nil {
		return err
	}
	switch {
	case h.ID == "":
		return fieldErr("id", "required")
	case h.Ref == "":
		return fieldErr("ref", "required (the evidence id of the case or instrument)")
	case len(h.Categories) == 0:
		return fieldErr("categories", "required")
	case !h.Until.After(now):
		return fieldErr("until", "must be after now")
	}
	if err := checkList("categories", h.Categories); err != nil {
		return err
	}
	for _, x := range s.LegalHolds {
		if x.ID == h.ID {
			return fieldErr("id", "already used by another hold")
		}
	}
	h.Categories = slices.Clone(h.Categories)
	h.CreatedAt = now
	s.LegalHolds = append(s.LegalHolds, h)
	s.UpdatedAt = now
	return nil
}

// ReleaseLegalHold removes the hold with the given id.
func ReleaseLegalHold(s *Subject, now time.Time, id string) error {
	if err := live(s); err != nil {
		return err
	}
	i := slices.IndexFunc(s.LegalHolds, func(h LegalHold) bool { return h.ID == id })
	if i < 0 {
		return fieldErr("id", "no such hold")
	}
	s.LegalHolds = slices.Delete(s.LegalHolds, i, i+1)
	s.UpdatedAt = now
	return nil
}

// MarkErasurePending schedules erasure (the §4.6 deadline passed, or proof
// was rejected, an s.33 request accepted or retention expired). The
// PDPC's 2024 Notification gives 90 days; the interim state makes the data
// inaccessible except to data-subject requests and legal holds.
func MarkErasurePending(s *Subject, now time.Time) error {
	if err := live(s); err != nil {
		return err
	}
	switch s.State {
	case Active, SuspendedPendingEvidence, EvidenceUnderReview, Restricted:
	default:
		return ErrInvalidTransition
	}
	setState(s, ErasurePending, now)
	return nil
}

// HeldCategories returns the categories under a legal hold in force at now.
func HeldCategories(s *Subject, now time.Time) []string {
	var out []string
	for _, h := range s.LegalHolds {
		if h.Until.IsZero() || now.Before(h.Until) {
			for _, c := range h.Categories {
				if !slices.Contains(out, c) {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// MarkErased records that the subject's key material was destroyed: the
// subject becomes ERASED, for good. It must be ERASURE_PENDING and no legal
// hold may be in force ([ErrLegalHold]): erase the other categories with
// [EraseCategories] instead and keep the subject pending.
func MarkErased(s *Subject, now time.Time) error {
	if err := live(s); err != nil {
		return err
	}
	if s.State != ErasurePending {
		return ErrInvalidTransition
	}
	if len(HeldCategories(s, now)) > 0 {
		return ErrLegalHold
	}
	setState(s, Erased, now)
	return nil
}

// EraseCategories records that the subject's key material for these
// categories was destroyed (shredding by category: the face template after
// verification, the criminal record after retention, ...). A category
// under a legal hold returns [ErrLegalHold] and nothing is recorded.
func EraseCategories(s *Subject, now time.Time, categories []string) error {
	if err := live(s); err != nil {
		return err
	}
	if len(categories) == 0 {
		return fieldErr("categories", "required")
	}
	if err := checkList("categories", categories); err != nil {
		return err
	}
	for _, c := range categories {
		if CategoryHeld(s, c, now) {
			return ErrLegalHold
		}
	}
	for _, c := range categories {
		if !slices.Contains(s.ErasedCategories, c) {
			s.ErasedCategories = append(s.ErasedCategories, c)
		}
	}
	s.UpdatedAt = now
	return nil
}

// AddRetention sets a retention timer: r.Category is to be shredded at
// r.ShredAt. If a timer already exists for the category, the earlier of the
// two is kept: a retention period is never extended silently
// [Inference: data minimisation].
func AddRetention(s *Subject, now time.Time, r Retention) error {
	if err := live(s); err != nil {
		return err
	}
	if r.Category == "" {
		return fieldErr("category", "required")
	}
	if r.ShredAt.IsZero() {
		return fieldErr("shred_at", "required")
	}
	for i := range s.Retention {
		if s.Retention[i].Category == r.Category {
			if r.ShredAt.Before(s.Retention[i].ShredAt) {
				s.Retention[i] = r
				s.UpdatedAt = now
			}
			return nil
		}
	}
	s.Retention = append(s.Retention, r)
	s.UpdatedAt = now
	return nil
}

// DueRetention returns the retention timers that have run out at now, for
// categories not yet erased and not under a legal hold in force: the
// categories the erasure job should shred now.
func DueRetention(s *Subject, now time.Time) []Retention {
	if s.State == Erased {
		return nil
	}
	var out []Retention
	for _, r := range s.Retention {
		if !now.Before(r.ShredAt) && !slices.Contains(s.ErasedCategories, r.Category) && !CategoryHeld(s, r.Category, now) {
			out = append(out, r)
		}
	}
	return out
}

// checkList rejects empty and duplicate entries.
func checkList(field string, xs []string) error {
	for i, x := range xs {
		if x == "" {
			return fieldErr(field, "has an empty entry")
		}
		if slices.Contains(xs[:i], x) {
			return fieldErr(field, "has a duplicate entry")
		}
	}
	return nil
}
