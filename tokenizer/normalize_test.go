package tokenizer

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"
)

func mustLookup(t testing.TB, name string) *Category {
	t.Helper()
	c, ok := Lookup(name)
	if !ok {
		t.Fatalf("Lookup(%q) failed", name)
	}
	return c
}

type normCase struct {
	in, want string // want "" means an error
	reason   string // part of the error message, when an error is wanted
}

func testNormalize(t *testing.T, category string, cases []normCase) {
	t.Helper()
	c := mustLookup(t, category)
	for _, tc := range cases {
		got, err := c.Normalize(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%s.Normalize(%q) = %q, want an error %q", category, tc.in, got, tc.reason)
		case tc.want == "" && !strings.Contains(err.Error(), tc.reason):
			t.Errorf("%s.Normalize(%q) error = %q, want it to contain %q", category, tc.in, err, tc.reason)
		case tc.want != "" && (err != nil || got != tc.want):
			t.Errorf("%s.Normalize(%q) = %q, %v; want %q", category, tc.in, got, err, tc.want)
		}
		if err != nil {
			checkValueError(t, c, tc.in, err)
		}
	}
}

// checkValueError checks the error contract: a *ValueError naming the
// category, wrapping ErrInvalidValue, never quoting the value.
func checkValueError(t *testing.T, c *Category, in string, err error) {
	t.Helper()
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Category != c.Name || !errors.Is(err, ErrInvalidValue) {
		t.Errorf("%s.Normalize(%q) error %v: want a *ValueError for the category wrapping ErrInvalidValue", c.Name, in, err)
	}
	if v := strings.TrimSpace(in); len(v) >= 3 && strings.Contains(err.Error(), v) {
		t.Errorf("%s.Normalize error %q contains the value", c.Name, err)
	}
}

func TestNormalizePhone(t *testing.T) {
	testNormalize(t, "contact.phone", []normCase{
		{"081-234-5678", "+66812345678", ""},
		{"+66812345678", "+66812345678", ""},
		{"+66 81 234 5678", "+66812345678", ""},
		{"0066812345678", "+66812345678", ""},
		{"(081) 234.5678", "+66812345678", ""},
		{"  081 234 5678\n", "+66812345678", ""},
		{"+66 (0)81 234 5678", "+66812345678", ""},
		{"+66 081 234 5678", "+66812345678", ""},
		{"02-123-4567", "+6621234567", ""},
		{"+1 (415) 555-2671", "+14155552671", ""},
		{"+44 (0)20 7946 0958", "+442079460958", ""},
		{"+39 06 6982 1234", "+390669821234", ""}, // Italian fixed line: the 0 is part of the number
		{"+49 30 (0)12 3456", "+49300123456", ""}, // "(0)" elsewhere is a digit
		{"+855 12 345 678", "+85512345678", ""},
		{"", "", "empty"},
		{"  ", "", "empty"},
		{"- - -", "", "empty"},
		{"812345678", "", "no country code or trunk prefix"},
		{"+66 81 234 567a", "", "invalid character"},
		{"+66-81/234", "", "invalid character"},
		{"+210 1234 5678", "", "unknown country code"},
		{"+66 1234", "", "not 8-15 digits"},
		{"+1 234 567 890 123 456", "", "not 8-15 digits"},
		{strings.Repeat("1", 30), "", "not 8-15 digits"},
		{"+" + strings.Repeat("1", 30), "", "not 8-15 digits"},
		{"+66 81\x00234 5678", "", "invalid character"},
		{"+66 ๘๑ 234 5678", "", "invalid character"},
		{"\xff081", "", "invalid UTF-8"},
	})
}

func TestNormalizeEmail(t *testing.T) {
	testNormalize(t, "contact.email", []normCase{
		{"Somchai@Gmail.COM", "Somchai@gmail.com", ""},
		{"  somchai@gmail.com ", "somchai@gmail.com", ""},
		{"a@b.co", "a@b.co", ""},
		{`"x@y"@Example.org`, `"x@y"@example.org`, ""},
		{"สมชาย@ตัวอย่าง.ไทย", "สมชาย@ตัวอย่าง.ไทย", ""},
		{"user@\u212Aelvin.com", "user@kelvin.com", ""}, // KELVIN SIGN: NFC gives K, then lower-cased
		{"", "", "empty"},
		{"somchai", "", "no @"},
		{"@gmail.com", "", "empty local part"},
		{strings.Repeat("a", 65) + "@gmail.com", "", "local part over 64 bytes"},
		{"a@" + strings.Repeat("b", 250) + ".com", "", "address over 254 bytes"},
		{"a@localhost", "", "domain without a dot"},
		{"a@gmail..com", "", "empty domain label"},
		{"a@.gmail.com", "", "empty domain label"},
		{"a@gmail.com.", "", "empty domain label"},
		{"a@", "", "domain without a dot"},
		{"so mchai@gmail.com", "", "space or control"},
		{"somchai@gma\til.com", "", "space or control"},
		{"som\u0085chai@gmail.com", "", "space or control"},
	})
}

func TestNormalizeCard(t *testing.T) {
	testNormalize(t, "financial.card_pan", []normCase{
		{"4111 1111 1111 1111", "4111111111111111", ""},
		{"4111-1111-1111-1111", "4111111111111111", ""},
		{"378282246310005", "378282246310005", ""},
		{"4111 1111 1111 1112", "", "checksum mismatch"},
		{"4111.1111.1111.1111", "", "not 13-19 digits"},
		{"411111111111", "", "not 13-19 digits"},
		{"41111111111111111111", "", "not 13-19 digits"},
		{"", "", "empty"},
	})
}

func TestNormalizeThaiID(t *testing.T) {
	testNormalize(t, "govid.th_national_id", []normCase{
		{"1-1017-00230-70-8", "1101700230708", ""},
		{"1 1017 00230 70 8", "1101700230708", ""},
		{"1101700230708", "1101700230708", ""},
		{"1-1017-00230-70-9", "", "checksum mismatch"},
		{"1-1017-00230-70", "", "not 13 digits"},
		{"11017002307080", "", "not 13 digits"},
		{"1.1017.00230.70.8", "", "not 13 digits"},
		{" - ", "", "empty"},
	})
}

func TestNormalizeBankAccount(t *testing.T) {
	testNormalize(t, "financial.bank_account", []normCase{
		{"123-4-56789-0", "1234567890", ""},
		{"123.4.56789.0", "1234567890", ""},
		{"123456", "123456", ""},
		{"12345", "", "not 6-20 digits"},
		{strings.Repeat("1", 21), "", "not 6-20 digits"},
		{"123-4-5678x-0", "", "not 6-20 digits"},
		{"", "", "empty"},
	})
}

func TestNormalizeText(t *testing.T) {
	nfd := norm.NFD.String("น้ำ café ผู้ใหญ่")
	nfc := norm.NFC.String(nfd)
	testNormalize(t, "identity.name", []normCase{
		{"Somchai Jaidee", "Somchai Jaidee", ""},
		{"  padded\t\r\n", "  padded\t\r\n", ""}, // free text is not trimmed
		{nfd, nfc, ""},
		{"\u1100\u1161\u11A8", "\uAC01", ""}, // decomposed Hangul composes
		{"", "", "empty"},
		{"nul\x00", "", "control character"},
		{"esc\x1b[0m", "", "control character"},
		{"\xc3\x28", "", "invalid UTF-8"},
	})
	c := mustLookup(t, "health")
	if got, err := c.Normalize(strings.Repeat("x", c.MaxLen)); err != nil || len(got) != c.MaxLen {
		t.Errorf("health.Normalize(MaxLen bytes) = %d bytes, %v", len(got), err)
	}
}

// TestNormalizeEquivalentForms: canonically equivalent spellings normalise
// to the same value. Thai has no precomposed characters, so its NFD and NFC
// differ only in the order of stacked marks: a tone mark typed before a
// below-vowel (กุ่ as ก + ่ + ุ) is reordered to ก + ุ + ่.
func TestNormalizeEquivalentForms(t *testing.T) {
	for _, pair := range [][2]string{
		{"\u0e01\u0e48\u0e38", "\u0e01\u0e38\u0e48"},              // กุ่: tone+vowel, vowel+tone
		{"\u0e1c\u0e49\u0e39\u0e43\u0e2b\u0e0d\u0e48", "ผู้ใหญ่"}, // tone typed first
		{"cafe\u0301 สมชาย", "café สมชาย"},                        // NFD, NFC
	} {
		if pair[0] == pair[1] {
			t.Fatalf("%+q: the two spellings must differ", pair[0])
		}
		for _, name := range []string{"identity.name", "comms.chat_transcript"} {
			c := mustLookup(t, name)
			a, errA := c.Normalize(pair[0])
			b, errB := c.Normalize(pair[1])
			if errA != nil || errB != nil || a != b || !norm.NFC.IsNormalString(a) {
				t.Errorf("%s: Normalize(%+q) = %+q, %v and Normalize(%+q) = %+q, %v; want equal NFC", name, pair[0], a, errA, pair[1], b, errB)
			}
		}
	}
}

func TestNormalizeErrors(t *testing.T) {
	c := mustLookup(t, "identity.name")
	_, err := c.Normalize(strings.Repeat("a", c.MaxLen+1))
	if !errors.Is(err, ErrTooLong) || !errors.Is(err, ErrInvalidValue) || errors.Is(err, ErrEmpty) {
		t.Errorf("too long: error %v, want ErrTooLong and ErrInvalidValue", err)
	}
	_, err = c.Normalize(strings.Repeat("a", 10*c.MaxLen))
	if !errors.Is(err, ErrTooLong) {
		t.Errorf("far too long: error %v, want ErrTooLong", err)
	}
	// NFC shrinks decomposed Hangul 3:1: within MaxLen once normalised.
	hangul := strings.Repeat("\u1100\u1161", c.MaxLen/3)
	if got, err := c.Normalize(hangul); err != nil || len(got) > c.MaxLen {
		t.Errorf("decomposed Hangul over MaxLen: %d bytes, %v; want accepted", len(got), err)
	}
	_, err = mustLookup(t, "contact.phone").Normalize(" ")
	if !errors.Is(err, ErrEmpty) || !errors.Is(err, ErrInvalidValue) || errors.Is(err, ErrTooLong) {
		t.Errorf("empty: error %v, want ErrEmpty and ErrInvalidValue", err)
	}
	_, err = mustLookup(t, "govid.th_national_id").Normalize("1-1017-00230-70-9")
	if errors.Is(err, ErrEmpty) || errors.Is(err, ErrTooLong) || !errors.Is(err, ErrInvalidValue) {
		t.Errorf("bad checksum: error %v, want ErrInvalidValue only", err)
	}
	if want := "tokenizer: invalid govid.th_national_id value: checksum mismatch"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

// TestNormalizeNoAlloc: an already normalised value is returned as is.
func TestNormalizeNoAlloc(t *testing.T) {
	for name, v := range map[string]string{
		"contact.phone":          "+66812345678",
		"contact.email":          "somchai@gmail.com",
		"financial.card_pan":     "4111111111111111",
		"govid.th_national_id":   "1101700230708",
		"financial.bank_account": "1234567890",
		"identity.name":          "สมชาย ใจดี",
	} {
		c := mustLookup(t, name)
		if n := testing.AllocsPerRun(100, func() { _, _ = c.Normalize(v) }); n != 0 {
			t.Errorf("%s.Normalize(normalised) allocates %v times, want 0", name, n)
		}
	}
}
