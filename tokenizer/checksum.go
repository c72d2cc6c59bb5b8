package tokenizer

// LuhnValid reports whether digits, a string of ASCII digits, passes the Luhn
// check (ISO/IEC 7812-1 annex B). It is false for an empty string or any
// non-digit.
func LuhnValid(digits string) bool {
	return allDigits(digits) && len(digits) > 0 && luhnSum(digits)%10 == 0
}

// luhnSum is the Luhn sum of d, which must hold ASCII digits only: every
// second digit from the right is doubled, with 9 subtracted above 9.
func luhnSum[S ~string | ~[]byte](d S) int {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v = luhnDouble[v]
		}
		sum += v
		double = !double
	}
	return sum
}

var luhnDouble = [10]int{0, 2, 4, 6, 8, 1, 3, 5, 7, 9}

// ThaiIDValid reports whether id is a 13-digit Thai national ID whose last
// digit is its check digit.
func ThaiIDValid(id string) bool {
	return len(id) == 13 && allDigits(id) && thaiCheck(id[:12]) == id[12]
}

// ThaiIDCheckDigit returns the check digit, as an ASCII digit, of the first
// 12 digits of a Thai national ID: (11 − Σ dᵢ·(14−i) mod 11) mod 10, with
// weights 13 down to 2. It returns 0 if first12 is not 12 ASCII digits.
func ThaiIDCheckDigit(first12 string) byte {
	if len(first12) != 12 || !allDigits(first12) {
		return 0
	}
	return thaiCheck(first12)
}

// thaiCheck is ThaiIDCheckDigit without the input checks.
func thaiCheck[S ~string | ~[]byte](first12 S) byte {
	s := 0
	for i := range 12 {
		s += int(first12[i]-'0') * (13 - i)
	}
	return byte((11-s%11)%10) + '0'
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }
