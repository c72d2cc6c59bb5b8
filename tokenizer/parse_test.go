package tokenizer

import (
	"errors"
	"strings"
	"testing"
)

func TestParseToken(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Format // FormatInvalid: malformed
	}{
		{"tok_ph_0123456789ABCDEFGHIJab", FormatOpaque},
		{"tok_crim_zzzzzzzzzzzzzzzzzzzzzz", FormatOpaque},
		{"tok_xx_0123456789ABCDEFGHIJab", FormatInvalid},  // unknown prefix
		{"tok_ph_0123456789ABCDEFGHIJa", FormatInvalid},   // 21 characters
		{"tok_ph_0123456789ABCDEFGHIJabc", FormatInvalid}, // 23
		{"tok_ph_0123456789ABCDEFGHIJa-", FormatInvalid},
		{"tok_ph0123456789ABCDEFGHIJabc", FormatInvalid},
		{"tok_", FormatInvalid},
		{"tkn_ph_0123456789ABCDEFGHIJab", FormatInvalid},
		{"+66012345678", FormatPhone},
		{"+10123452671", FormatPhone},
		{"+855012345678", FormatPhone},
		{"+390612345678", FormatPhone},    // an Italian fixed line has a token's shape
		{"+66812345678", FormatInvalid},   // a real, dialable number
		{"+6601235678", FormatPhone},      // one random digit
		{"+85501234", FormatInvalid},      // 8 digits, no random digit between 0 and the last 4
		{"+6605678", FormatInvalid},       // 7 digits
		{"+2100123456789", FormatInvalid}, // spare code
		{"+66 012345678", FormatInvalid},
		{"+", FormatInvalid},
		{"abcdefghijklmnop@tok.invalid", FormatEmail},
		{"234567abcdefghij@gmail.com.invalid", FormatEmail},
		{"abcdefghijklmnop@ตัวอย่าง.ไทย.invalid", FormatEmail},
		{"abcdefghijklmnoP@tok.invalid", FormatInvalid}, // upper case
		{"abcdefghijklmno1@tok.invalid", FormatInvalid}, // not base32
		{"abcdefghijklmno@tok.invalid", FormatInvalid},  // 15
		{"abcdefghijklmnop@tok.example", FormatInvalid},
		{"abcdefghijklmnop@.invalid", FormatInvalid},
		{"abcdefghijklmnop@a..b.invalid", FormatInvalid},
		{"abcdefghijklmnop@a b.invalid", FormatInvalid},
		{"abcdefghijklmnop@a@b.invalid", FormatInvalid},
		{"abcdefghijklmnop@\xff.invalid", FormatInvalid},
		{"somchai@gmail.com", FormatInvalid},
		{"123456", FormatDigits},
		{"4111111111111112", FormatDigits},
		{"1101700230709", FormatDigits},
		{"12345678901234567890", FormatDigits},
		{"12345", FormatInvalid},
		{"123456789012345678901", FormatInvalid},
		{"4111 1111 1111 1112", FormatInvalid},
		{"", FormatInvalid},
		{"hello", FormatInvalid},
		{strings.Repeat("a", 16) + "@" + strings.Repeat("b", 103) + ".invalid", FormatEmail},
		{strings.Repeat("a", 16) + "@" + strings.Repeat("b", 104) + ".invalid", FormatInvalid}, // 129 bytes
	} {
		got, err := ParseToken(tc.in)
		if tc.want == FormatInvalid {
			if err == nil || !errors.Is(err, ErrMalformedToken) || got != FormatInvalid {
				t.Errorf("ParseToken(%q) = %v, %v; want ErrMalformedToken", tc.in, got, err)
			} else if len(tc.in) > 3 && strings.Contains(err.Error(), tc.in) {
				t.Errorf("ParseToken error %q quotes the token", err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseToken(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatString(t *testing.T) {
	for f, want := range map[Format]string{
		FormatOpaque: "opaque", FormatPhone: "phone", FormatEmail: "email", FormatCard: "card",
		FormatThaiNationalID: "th_national_id", FormatBankAccount: "bank_account", FormatDigits: "digits",
		FormatInvalid: "Format(0)", FormatDigits + 1: "Format(8)",
	} {
		if got := f.String(); got != want {
			t.Errorf("Format(%d).String() = %q, want %q", f, got, want)
		}
	}
}
