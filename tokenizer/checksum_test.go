package tokenizer

import "testing"

func TestLuhnValid(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"4111111111111111", true},
		{"79927398713", true},
		{"378282246310005", true},
		{"6011111111111117", true},
		{"0", true},
		{"4111111111111112", false},
		{"79927398710", false},
		{"", false},
		{"4111 1111 1111 1111", false},
		{"411111111111111a", false},
	} {
		if got := LuhnValid(tc.in); got != tc.want {
			t.Errorf("LuhnValid(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestThaiID(t *testing.T) {
	// Check digits computed independently: (11 - Σ dᵢ·(14-i) mod 11) mod 10.
	for _, id := range []string{"1101700230708", "1234567890121", "3101001112222", "0000000000001", "9999999999994"} {
		if !ThaiIDValid(id) {
			t.Errorf("ThaiIDValid(%s) = false, want true", id)
		}
		if got := ThaiIDCheckDigit(id[:12]); got != id[12] {
			t.Errorf("ThaiIDCheckDigit(%s) = %q, want %q", id[:12], got, id[12])
		}
		for d := byte('0'); d <= '9'; d++ {
			if d != id[12] && ThaiIDValid(id[:12]+string(d)) {
				t.Errorf("ThaiIDValid(%s%c) = true, want false", id[:12], d)
			}
		}
	}
	for _, id := range []string{"", "123456789012", "12345678901234", "1-2345-67890-12-1", "123456789012a"} {
		if ThaiIDValid(id) {
			t.Errorf("ThaiIDValid(%q) = true, want false", id)
		}
	}
	for _, s := range []string{"", "12345678901", "1234567890123", "12345678901a"} {
		if got := ThaiIDCheckDigit(s); got != 0 {
			t.Errorf("ThaiIDCheckDigit(%q) = %q, want 0", s, got)
		}
	}
}
