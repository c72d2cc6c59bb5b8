package tokenizer

import (
	"testing"
)

func TestPartial(t *testing.T) {
	for _, tc := range []struct {
		category, in, want string
	}{
		{"contact.phone", "+66812345678", "+66•••••5678"},
		{"contact.phone", "+14155552671", "+1••••••2671"},
		{"contact.phone", "+85512345678", "+855••••5678"},
		{"contact.phone", "+6612345", redacted}, // 7 digits: not a phone number
		{"contact.phone", "+85512345", "+855•2345"},
		{"contact.phone", "0812345678", redacted}, // not normalised
		{"contact.email", "somchai@gmail.com", "s•••@gmail.com"},
		{"contact.email", "สมชาย@gmail.com", "ส•••@gmail.com"},
		{"contact.email", "a@b@example.org", "a•••@example.org"},
		{"contact.email", "@gmail.com", redacted},
		{"contact.email", "somchai", redacted},
		{"financial.card_pan", "4111111111111111", "•••• •••• •••• 1111"},
		{"financial.card_pan", "378282246310005", "•••• •••• •••• 0005"}, // length not revealed
		{"financial.card_pan", "4111", redacted},
		{"financial.bank_account", "1234567890", "xxx-x-xx789-0"},
		{"financial.bank_account", "123456789012", "••••••9012"},
		{"financial.bank_account", "12345", redacted},
		{"govid.th_national_id", "1101700230708", "x-xxxx-xxxxx-xx-x"},
		{"identity.name", "Somchai Jaidee", "S•••"},
		{"identity.name", "สมชาย", "ส•••"},
		{"identity.name", "ที่ดิน", "ที่•••"}, // vowel and tone mark stay with their consonant
		{"identity.name", "น้ำฝน", "น้ำ•••"},  // SARA AM is a spacing mark
		{"identity.name", "เกียรติ", "เ•••"},  // leading vowels are their own cluster
		{"identity.name", "  Ánh", "Á•••"},    // leading space skipped
		{"identity.name", "A\u0301nh", "A\u0301•••"},
		{"identity.name", "👩‍💻 Dev", "👩‍💻•••"},
		{"identity.name", "👍🏽x", "👍🏽•••"},
		{"identity.name", "🇹🇭🇹🇭", "🇹🇭•••"},
		{"identity.name", "a\u200db", "a\u200d•••"}, // a ZWJ joins symbols, not letters
		{"identity.name", "\r\nx", "x•••"},
		{"identity.name", "   ", redacted},
		{"demographic.religion", "Buddhist", redacted},
		{"third_party.emergency_contact", "Somying 0812345678", redacted},
		{"health", "", redacted},
	} {
		c := mustLookup(t, tc.category)
		if got := c.Partial(tc.in); got != tc.want {
			t.Errorf("%s.Partial(%q) = %q, want %q", tc.category, tc.in, got, tc.want)
		}
	}
}

func TestFirstGrapheme(t *testing.T) {
	for in, want := range map[string]string{
		"":              "",
		"\xff":          "",
		"\r\nx":         "\r\n",
		"\rx":           "\r",
		"ab":            "a",
		"\u0301a":       "\u0301", // a lone mark is a cluster
		"🇹🇭x":           "🇹🇭",
		"🇹x":            "🇹",
		"ก\u0e49\u0e33": "ก\u0e49\u0e33",
	} {
		if got := firstGrapheme(in); got != want {
			t.Errorf("firstGrapheme(%+q) = %+q, want %+q", in, got, want)
		}
	}
}

func TestRedacted(t *testing.T) {
	for _, c := range All() {
		// The same constant for every category: it depends on nothing.
		if got := c.Redacted(); got != "••••••" {
			t.Errorf("%s.Redacted() = %q, want ••••••", c.Name, got)
		}
	}
}
