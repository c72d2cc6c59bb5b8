package subject_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fieldvault/fieldvault/vault/subject"
)

var ict = subject.ICT

func at(y int, m time.Month, d, hh, mm, ss, ns int) time.Time {
	return time.Date(y, m, d, hh, mm, ss, ns, ict)
}

var now = at(2025, 6, 1, 10, 0, 0, 0)

func TestValidate(t *testing.T) {
	cases := []struct {
		name  string
		s     subject.Subject
		field string // "" = valid
	}{
		{"adult", subject.Subject{ID: "u1", Type: subject.DataSubject, BirthDate: "1990-04-01"}, ""},
		{"no birth date", subject.Subject{ID: "u1", Type: subject.DataSubject}, ""},
		{"born today", subject.Subject{ID: "u1", Type: subject.DataSubject, BirthDate: "2025-06-01"}, ""},
		{"third party", subject.Subject{ID: "ec1", Type: subject.ThirdParty, LinkedTo: "u1"}, ""},
		{"empty id", subject.Subject{Type: subject.DataSubject}, "id"},
		{"id with slash", subject.Subject{ID: "a/b", Type: subject.DataSubject}, "id"},
		{"id too long", subject.Subject{ID: strings.Repeat("x", 129), Type: subject.DataSubject}, "id"},
		{"no type", subject.Subject{ID: "u1"}, "type"},
		{"bad type", subject.Subject{ID: "u1", Type: "robot"}, "type"},
		{"birth date format", subject.Subject{ID: "u1", Type: subject.DataSubject, BirthDate: "01/04/1990"}, "birth_date"},
		{"birth date short month", subject.Subject{ID: "u1", Type: subject.DataSubject, BirthDate: "1990-4-01"}, "birth_date"},
		{"birth date not a day", subject.Subject{ID: "u1", Type: subject.DataSubject, BirthDate: "2023-02-29"}, "birth_date"},
		{"birth date tomorrow", subject.Subject{ID: "u1", Type: subject.DataSubject, BirthDate: "2025-06-02"}, "birth_date"},
		{"birth date 1899", subject.Subject{ID: "u1", Type: subject.DataSubject, BirthDate: "1899-12-31"}, "birth_date"},
		{"third party unlinked", subject.Subject{ID: "ec1", Type: subject.ThirdParty}, "linked_to"},
		{"third party linked to itself", subject.Subject{ID: "ec1", Type: subject.ThirdParty, LinkedTo: "ec1"}, "linked_to"},
		{"third party linked to a bad id", subject.Subject{ID: "ec1", Type: subject.ThirdParty, LinkedTo: "a b"}, "linked_to"},
		{"data subject linked", subject.Subject{ID: "u1", Type: subject.DataSubject, LinkedTo: "u2"}, "linked_to"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := subject.Validate(&c.s, now)
			if c.field == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var fe *subject.FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("Validate = %v, want a FieldError on %q", err, c.field)
			}
			if !errors.Is(err, subject.ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid")
			}
			for _, v := range []string{c.s.BirthDate, c.s.LinkedTo} {
				if len(v) > 2 && strings.Contains(err.Error(), v) {
					t.Errorf("error %q echoes a value", err)
				}
			}
		})
	}
	// The future is judged in ICT: 2025-06-02 starts at 17:00 UTC on 06-01.
	s := subject.Subject{ID: "u1", Type: subject.DataSubject, BirthDate: "2025-06-02"}
	if err := subject.Validate(&s, time.Date(2025, 6, 1, 16, 59, 59, 0, time.UTC)); err == nil {
		t.Error("born 2025-06-02 accepted at 23:59:59 ICT on 06-01")
	}
	if err := subject.Validate(&s, time.Date(2025, 6, 1, 17, 0, 0, 0, time.UTC)); err != nil {
		t.Errorf("born 2025-06-02 refused at 00:00 ICT on 06-02: %v", err)
	}
}

func TestNewAndUpdate(t *testing.T) {
	s, err := subject.New(subject.Subject{ID: "u1", Type: subject.DataSubject, BirthDate: "1990-04-01", State: subject.Erased}, now)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != subject.Active || !s.StateSince.Equal(now) || !s.CreatedAt.Equal(now) {
		t.Fatalf("New = %+v", s)
	}
	if _, err := subject.New(subject.Subject{ID: "u1"}, now); !errors.Is(err, subject.ErrInvalid) {
		t.Fatalf("New without type = %v", err)
	}
	later := now.Add(time.Hour)
	if err := subject.Update(s, subject.Subject{Type: subject.DataSubject, Married: true}, later); err != nil {
		t.Fatal(err)
	}
	if !s.Married || s.BirthDate != "" || !s.UpdatedAt.Equal(later) || s.ID != "u1" {
		t.Fatalf("Update = %+v", s)
	}
	if err := subject.Update(s, subject.Subject{Type: subject.ThirdParty, LinkedTo: "u2"}, later); err == nil {
		t.Fatal("type change accepted")
	}
	if err := subject.Update(s, subject.Subject{Type: subject.DataSubject, BirthDate: "2099-01-01"}, later); err == nil || s.BirthDate != "" {
		t.Fatalf("invalid update applied: %v, %+v", err, s)
	}
}

func TestSuspensionDeadline(t *testing.T) {
	cases := []struct {
		detected, want time.Time
	}{
		{at(2025, 3, 1, 10, 0, 0, 0), at(2025, 3, 16, 23, 59, 59, 999999999)},
		{at(2025, 3, 1, 0, 0, 0, 0), at(2025, 3, 16, 23, 59, 59, 999999999)},
		{at(2025, 3, 1, 23, 59, 59, 0), at(2025, 3, 16, 23, 59, 59, 999999999)},
		// 17:30 UTC on 03-01 is 00:30 ICT on 03-02: the ICT date counts.
		{time.Date(2025, 3, 1, 17, 30, 0, 0, time.UTC), at(2025, 3, 17, 23, 59, 59, 999999999)},
		{time.Date(2025, 3, 1, 16, 59, 59, 0, time.UTC), at(2025, 3, 16, 23, 59, 59, 999999999)},
		// Across a month end and a leap day.
		{at(2024, 2, 20, 8, 0, 0, 0), at(2024, 3, 6, 23, 59, 59, 999999999)},
		{at(2025, 12, 25, 8, 0, 0, 0), at(2026, 1, 9, 23, 59, 59, 999999999)},
	}
	for _, c := range cases {
		got := subject.SuspensionDeadline(c.detected, nil)
		if !got.Equal(c.want) {
			t.Errorf("SuspensionDeadline(%v) = %v, want %v", c.detected, got.In(ict), c.want)
		}
	}
	// Holiday extension: 2025-03-16 is a Sunday; 03-17 declared a holiday.
	nonWorking := func(d time.Time) bool {
		wd := d.In(ict).Weekday()
		return wd == time.Saturday || wd == time.Sunday || d.In(ict).Format("2006-01-02") == "2025-03-17"
	}
	if got, want := subject.SuspensionDeadline(at(2025, 3, 1, 10, 0, 0, 0), nonWorking), at(2025, 3, 18, 23, 59, 59, 999999999); !got.Equal(want) {
		t.Errorf("with holidays = %v, want %v", got.In(ict), want)
	}
}

func TestSuspensionWindow(t *testing.T) {
	detected := at(2025, 3, 1, 10, 0, 0, 0)
	lastSecond := at(2025, 3, 16, 23, 59, 59, 0)
	firstAfter := at(2025, 3, 17, 0, 0, 0, 0)
	newSuspended := func() *subject.Subject {
		s, err := subject.New(subject.Subject{ID: "u4", Type: subject.DataSubject}, detected)
		if err != nil {
			t.Fatal(err)
		}
		if err := subject.Suspend(s, detected.Add(time.Hour), detected, "false ID"); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := newSuspended()
	if s.State != subject.SuspendedPendingEvidence || s.Suspension == nil || s.Suspension.Reason != "false ID" {
		t.Fatalf("Suspend = %+v", s)
	}
	if subject.DeadlinePassed(s, lastSecond) || !subject.DeadlinePassed(s, firstAfter) {
		t.Fatal("DeadlinePassed wrong at the boundary")
	}
	if err := subject.ProofReceived(s, lastSecond, lastSecond); err != nil {
		t.Fatalf("proof at the last second: %v", err)
	}
	if s.State != subject.EvidenceUnderReview || !s.Suspension.ProofReceivedAt.Equal(lastSecond) {
		t.Fatalf("after proof: %+v", s)
	}
	s = newSuspended()
	if err := subject.ProofReceived(s, firstAfter, firstAfter); !errors.Is(err, subject.ErrDeadlinePassed) {
		t.Fatalf("proof at the first second after = %v", err)
	}
	if s.State != subject.SuspendedPendingEvidence {
		t.Fatalf("late proof changed the state: %v", s.State)
	}
	if err := subject.ProofReceived(s, firstAfter, firstAfter.Add(time.Hour)); err == nil {
		t.Fatal("proof received in the future accepted")
	}
	if err := subject.ProofReceived(s, firstAfter, detected.Add(-time.Hour)); err == nil {
		t.Fatal("proof before detection accepted")
	}
	if err := subject.Suspend(s, firstAfter, detected, ""); !errors.Is(err, subject.ErrInvalidTransition) {
		t.Fatalf("second suspension = %v", err)
	}
	s2, _ := subject.New(subject.Subject{ID: "u5", Type: subject.DataSubject}, now)
	if err := subject.Suspend(s2, now, now.Add(time.Second), ""); err == nil {
		t.Fatal("detection in the future accepted")
	}
}

func TestTransitions(t *testing.T) {
	fresh := func() *subject.Subject {
		s, err := subject.New(subject.Subject{ID: "u1", Type: subject.DataSubject, BirthDate: "1990-01-01"}, now)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := fresh()
	if err := subject.Reinstate(s, now); !errors.Is(err, subject.ErrInvalidTransition) {
		t.Fatalf("Reinstate active = %v", err)
	}
	if err := subject.Suspend(s, now, now, ""); err != nil {
		t.Fatal(err)
	}
	if err := subject.Reinstate(s, now); err != nil || s.State != subject.Active || s.Suspension != nil {
		t.Fatalf("Reinstate = %v, %+v", err, s)
	}

	if err := subject.Unrestrict(s, now); !errors.Is(err, subject.ErrInvalidTransition) {
		t.Fatalf("Unrestrict unrestricted = %v", err)
	}
	if err := subject.Restrict(s, now, "accuracy", nil); err != nil || s.State != subject.Restricted {
		t.Fatalf("Restrict = %v, %v", err, s.State)
	}
	if !subject.CategoryRestricted(s, "health") {
		t.Fatal("whole-subject restriction does not cover a category")
	}
	if err := subject.Restrict(s, now, "again", nil); !errors.Is(err, subject.ErrInvalidTransition) {
		t.Fatalf("Restrict twice = %v", err)
	}
	if err := subject.Suspend(s, now, now, ""); !errors.Is(err, subject.ErrInvalidTransition) {
		t.Fatalf("Suspend restricted = %v", err)
	}
	if err := subject.Unrestrict(s, now); err != nil || s.State != subject.Active {
		t.Fatalf("Unrestrict = %v, %v", err, s.State)
	}
	if err := subject.Restrict(s, now, "claim", []string{"health", "health"}); err == nil {
		t.Fatal("duplicate categories accepted")
	}
	if err := subject.Restrict(s, now, "claim", []string{"health"}); err != nil || s.State != subject.Active {
		t.Fatalf("category Restrict = %v, %v", err, s.State)
	}
	if !subject.CategoryRestricted(s, "health") || subject.CategoryRestricted(s, "contact.phone") {
		t.Fatal("category restriction wrong")
	}
	if err := subject.Unrestrict(s, now); err != nil || s.Restriction != nil {
		t.Fatalf("category Unrestrict = %v", err)
	}

	if err := subject.UpholdObjection(s, now, "marketing"); err != nil {
		t.Fatal(err)
	}
	if err := subject.UpholdObjection(s, now.Add(time.Hour), "marketing"); err != nil || len(s.Objections) != 1 {
		t.Fatalf("objection twice: %v, %d", err, len(s.Objections))
	}
	if !subject.ObjectionUpheld(s, "marketing", now) || subject.ObjectionUpheld(s, "analytics", now) ||
		subject.ObjectionUpheld(s, "marketing", now.Add(-time.Second)) {
		t.Fatal("ObjectionUpheld wrong")
	}

	// Legal holds and erasure.
	hold := subject.LegalHold{ID: "H1", Categories: []string{"govid.th_national_id"}, Ref: "ORD-1", Until: at(2026, 1, 1, 0, 0, 0, 0)}
	for _, bad := range []subject.LegalHold{
		{Categories: hold.Categories, Ref: "r", Until: hold.Until},
		{ID: "H", Categories: hold.Categories, Until: hold.Until},
		{ID: "H", Ref: "r", Until: hold.Until},
		{ID: "H", Categories: hold.Categories, Ref: "r", Until: now},
	} {
		if err := subject.AddLegalHold(s, now, bad); !errors.Is(err, subject.ErrInvalid) {
			t.Errorf("AddLegalHold(%+v) = %v", bad, err)
		}
	}
	if err := subject.AddLegalHold(s, now, hold); err != nil {
		t.Fatal(err)
	}
	if err := subject.AddLegalHold(s, now, hold); err == nil {
		t.Fatal("same hold id twice accepted")
	}
	if !subject.CategoryHeld(s, "govid.th_national_id", now) || subject.CategoryHeld(s, "govid.th_national_id", hold.Until) {
		t.Fatal("CategoryHeld wrong at the hold's end")
	}
	if err := subject.EraseCategories(s, now, []string{"health", "govid.th_national_id"}); !errors.Is(err, subject.ErrLegalHold) || len(s.ErasedCategories) != 0 {
		t.Fatalf("EraseCategories held = %v, %v", err, s.ErasedCategories)
	}
	if err := subject.EraseCategories(s, now, []string{"health"}); err != nil || !subject.CategoryErased(s, "health") {
		t.Fatalf("EraseCategories = %v", err)
	}
	if err := subject.MarkErased(s, now); !errors.Is(err, subject.ErrInvalidTransition) {
		t.Fatalf("MarkErased active = %v", err)
	}
	if err := subject.MarkErasurePending(s, now); err != nil || s.State != subject.ErasurePending {
		t.Fatalf("MarkErasurePending = %v", err)
	}
	if err := subject.MarkErased(s, now); !errors.Is(err, subject.ErrLegalHold) {
		t.Fatalf("MarkErased under hold = %v", err)
	}
	if err := subject.ReleaseLegalHold(s, now, "H1"); err != nil {
		t.Fatal(err)
	}
	if err := subject.MarkErased(s, now); err != nil || s.State != subject.Erased {
		t.Fatalf("MarkErased = %v, %v", err, s.State)
	}
	if !subject.CategoryErased(s, "contact.phone") {
		t.Fatal("an erased subject's categories are not erased")
	}
	for name, f := range map[string]func() error{
		"Suspend":            func() error { return subject.Suspend(s, now, now, "") },
		"Reinstate":          func() error { return subject.Reinstate(s, now) },
		"Restrict":           func() error { return subject.Restrict(s, now, "", nil) },
		"Unrestrict":         func() error { return subject.Unrestrict(s, now) },
		"UpholdObjection":    func() error { return subject.UpholdObjection(s, now, "") },
		"AddLegalHold":       func() error { return subject.AddLegalHold(s, now, hold) },
		"MarkErasurePending": func() error { return subject.MarkErasurePending(s, now) },
		"MarkErased":         func() error { return subject.MarkErased(s, now) },
		"EraseCategories":    func() error { return subject.EraseCategories(s, now, []string{"x"}) },
		"AddRetention":       func() error { return subject.AddRetention(s, now, subject.Retention{Category: "x", ShredAt: now}) },
		"ProofReceived":      func() error { return subject.ProofReceived(s, now, now) },
		"Update":             func() error { return subject.Update(s, subject.Subject{Type: subject.DataSubject}, now) },
	} {
		if err := f(); !errors.Is(err, subject.ErrErased) {
			t.Errorf("%s on an erased subject = %v, want ErrErased", name, err)
		}
	}
}

func TestRetention(t *testing.T) {
	s, _ := subject.New(subject.Subject{ID: "u3", Type: subject.DataSubject}, now)
	six := now.AddDate(0, 6, 0)
	if err := subject.AddRetention(s, now, subject.Retention{Category: "criminal_record", ShredAt: six, Reason: "vetting"}); err != nil {
		t.Fatal(err)
	}
	if err := subject.AddRetention(s, now, subject.Retention{Category: "criminal_record", ShredAt: six.AddDate(1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	if len(s.Retention) != 1 || !s.Retention[0].ShredAt.Equal(six) {
		t.Fatalf("a later timer replaced an earlier one: %+v", s.Retention)
	}
	if err := subject.AddRetention(s, now, subject.Retention{Category: "criminal_record", ShredAt: six.AddDate(0, -1, 0)}); err != nil || !s.Retention[0].ShredAt.Equal(six.AddDate(0, -1, 0)) {
		t.Fatalf("an earlier timer was not kept: %v %+v", err, s.Retention)
	}
	due := s.Retention[0].ShredAt
	if got := subject.DueRetention(s, due.Add(-time.Nanosecond)); len(got) != 0 {
		t.Fatalf("due before its time: %+v", got)
	}
	if got := subject.DueRetention(s, due); len(got) != 1 || got[0].Category != "criminal_record" {
		t.Fatalf("DueRetention at the time = %+v", got)
	}
	if !subject.RetentionDue(s, "criminal_record", due) || subject.RetentionDue(s, "criminal_record", due.Add(-1)) {
		t.Fatal("RetentionDue wrong at the boundary")
	}
	if err := subject.AddLegalHold(s, now, subject.LegalHold{ID: "H", Categories: []string{"criminal_record"}, Ref: "CASE-1", Until: due.AddDate(1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	if got := subject.DueRetention(s, due); len(got) != 0 {
		t.Fatalf("held category due: %+v", got)
	}
	if err := subject.AddRetention(s, now, subject.Retention{ShredAt: six}); err == nil {
		t.Fatal("retention without category accepted")
	}
}

func TestAgeBand(t *testing.T) {
	ten := &subject.Subject{ID: "m", Type: subject.DataSubject, BirthDate: "2015-06-01"}
	twenty := &subject.Subject{ID: "t", Type: subject.DataSubject, BirthDate: "2005-06-01"}
	midnight := at(2025, 6, 1, 0, 0, 0, 0) // 17:00 UTC on 05-31
	before := midnight.Add(-time.Nanosecond)
	cases := []struct {
		s    *subject.Subject
		now  time.Time
		want subject.AgeBand
	}{
		{ten, before, subject.AgeUnder10},
		{ten, midnight, subject.Age10To19},
		{twenty, before, subject.Age10To19},
		{twenty, midnight, subject.AgeAdult},
		// The same instants in UTC: the ICT calendar decides.
		{ten, time.Date(2025, 5, 31, 16, 59, 59, 0, time.UTC), subject.AgeUnder10},
		{ten, time.Date(2025, 5, 31, 17, 0, 0, 0, time.UTC), subject.Age10To19},
		{&subject.Subject{BirthDate: ""}, now, subject.AgeUnknown},
		{&subject.Subject{BirthDate: "garbage"}, now, subject.AgeUnknown},
		{&subject.Subject{BirthDate: "2030-01-01"}, now, subject.AgeUnknown},
		{nil, now, subject.AgeUnknown},
		// 29 February: a year older on 1 March in common years.
		{&subject.Subject{BirthDate: "2004-02-29"}, at(2024, 2, 28, 23, 0, 0, 0), subject.Age10To19},
		{&subject.Subject{BirthDate: "2004-02-29"}, at(2024, 2, 29, 0, 0, 0, 0), subject.AgeAdult},
		{&subject.Subject{BirthDate: "2005-02-28"}, at(2025, 2, 28, 0, 0, 0, 0), subject.AgeAdult},
	}
	for i, c := range cases {
		if got := subject.AgeBandAt(c.s, c.now); got != c.want {
			t.Errorf("case %d: AgeBandAt(%v) = %q, want %q", i, c.now, got, c.want)
		}
	}
	leap := &subject.Subject{BirthDate: "2004-02-29"}
	if a, _ := subject.Age(leap, at(2023, 2, 28, 12, 0, 0, 0)); a != 18 {
		t.Errorf("leap-day child on 2023-02-28 is %d, want 18", a)
	}
	if a, _ := subject.Age(leap, at(2023, 3, 1, 0, 0, 0, 0)); a != 19 {
		t.Errorf("leap-day child on 2023-03-01 is %d, want 19", a)
	}
	// Sui juris.
	minor := &subject.Subject{BirthDate: "2010-01-01"}
	if sui, known := subject.SuiJuris(minor, now); sui || !known {
		t.Error("unmarried minor is sui juris")
	}
	minor.Married = true
	if sui, known := subject.SuiJuris(minor, now); !sui || !known {
		t.Error("married minor is not sui juris")
	}
	if _, known := subject.SuiJuris(&subject.Subject{}, now); known {
		t.Error("unknown age is known")
	}
	f := false
	if sui, _ := subject.SuiJuris(&subject.Subject{BirthDate: "1970-01-01", CapableOfConsent: &f}, now); sui {
		t.Error("incapable adult is sui juris")
	}
}
