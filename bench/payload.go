package bench

import (
	"encoding/base64"
	"strconv"
)

// Payloads. fieldvault and the Transit baseline get the same values, so
// that both move the same bytes.

var givenNames = []string{
	"Somchai", "Malee", "Anan", "Siriporn", "Kittisak", "Napat", "Wanida", "Thanawat",
	"สมชาย", "มาลี", "อนันต์", "ศิริพร", "กิตติศักดิ์", "ณภัทร", "วนิดา", "ธนวัฒน์",
}

var familyNames = []string{
	"Srisuk", "Wongsawat", "Chaiyaporn", "Rattanakul", "แสงทอง", "ศรีสุข", "วงศ์สวัสดิ์", "ชัยพร",
}

// nameValue is a person's name for k: a given name, a family name and a
// number, Thai or Latin script (UTF-8, 20-60 bytes).
func nameValue(k uint64) string {
	b := make([]byte, 0, 64)
	b = append(b, givenNames[k%uint64(len(givenNames))]...)
	b = append(b, ' ')
	b = append(b, familyNames[(k/16)%uint64(len(familyNames))]...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, k, 10)
	return string(b)
}

// emailValue is an e-mail address for k, unique to the run (deterministic
// tokens bind a value to one subject for good, so runs against the same
// server must not share values).
func emailValue(run string, k uint64) string {
	b := make([]byte, 0, 48)
	b = append(b, "user"...)
	b = strconv.AppendUint(b, k, 10)
	b = append(b, '@', 'b')
	b = append(b, run...)
	b = append(b, ".example.com"...)
	return string(b)
}

// valueFor returns the value of category-shaped payload k.
func valueFor(category, run string, k uint64) string {
	switch category {
	case "contact.email":
		return emailValue(run, k)
	case "contact.phone":
		return "08" + strconv.FormatUint(1+k/10_000_000%9, 10) + pad7(k%10_000_000)
	default:
		return nameValue(k)
	}
}

func pad7(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for len(s) < 7 {
		s = "0" + s
	}
	return s
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
