package tokenizer

import (
	"regexp"
	"strings"
	"testing"
)

// TestCategoryTable pins the table: IDs and prefixes are stored with tokens,
// so a change here is a compatibility break, not a refactoring.
func TestCategoryTable(t *testing.T) {
	const k, blob = 1 << 10, 64 << 10
	want := []Category{
		{1, "identity.name", T0, "nm", FormatOpaque, Never, false, k, 0},
		{2, "demographic.nationality", T0, "nat", FormatOpaque, Never, false, k, 0},
		{3, "demographic.religion", T2, "rel", FormatOpaque, Never, false, k, 0},
		{4, "demographic.race_ethnicity", T2, "eth", FormatOpaque, Never, false, k, 0},
		{5, "demographic.marital_status", T1, "mar", FormatOpaque, Never, false, k, 0},
		{6, "demographic.basic", T0, "dem", FormatOpaque, Never, false, k, 0},
		{7, "contact.phone", T0, "ph", FormatPhone, Default, false, k, 0},
		{8, "contact.email", T0, "em", FormatEmail, Default, false, k, 0},
		{9, "financial.card_pan", T1, "pan", FormatCard, Never, false, k, 0},
		{10, "financial.bank_account", T1, "ba", FormatBankAccount, Never, false, k, 0},
		{11, "financial.profile", T1, "fin", FormatOpaque, Never, false, k, 0},
		{12, "govid.th_national_id", T1, "nid", FormatThaiNationalID, Default, false, k, 0},
		{13, "govid.other", T1, "gid", FormatOpaque, Default, false, k, 0},
		{14, "location.precise", T0, "loc", FormatOpaque, Never, false, k, 0},
		{15, "biometric", T2, "bio", FormatOpaque, Never, false, blob, 0},
		{16, "media.photo", T0, "img", FormatOpaque, Never, false, blob, 0},
		{17, "criminal_record", T2Plus, "crim", FormatOpaque, Never, false, blob, 0},
		{18, "health", T2, "hlth", FormatOpaque, Never, false, blob, 0},
		{19, "disability", T2, "dis", FormatOpaque, Never, false, k, 0},
		{20, "comms.chat_transcript", T2, "chat", FormatOpaque, Never, false, blob, 0},
		{21, "account.social", T0, "soc", FormatOpaque, Default, false, k, 0},
		{22, "third_party.emergency_contact", T0, "ec", FormatOpaque, Never, true, k, 0},
		{23, "demographic.political_opinion", T2, "pol", FormatOpaque, Never, false, k, 0},
		{24, "demographic.sexual_orientation", T2, "sxo", FormatOpaque, Never, false, k, 0},
		{25, "demographic.trade_union", T2, "tu", FormatOpaque, Never, false, k, 0},
		{26, "health.genetic", T2, "gen", FormatOpaque, Never, false, blob, 0},
	}
	got := All()
	if len(got) != len(want) {
		t.Fatalf("All() has %d categories, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := *got[i]
		g.mask = 0
		if g != w {
			t.Errorf("All()[%d] = %+v, want %+v", i, g, w)
		}
	}
}

func TestCategoryIndexes(t *testing.T) {
	prefixRE := regexp.MustCompile(`^[a-z]{2,4}$`)
	prefixes := map[string]bool{}
	for i, c := range All() {
		if c.ID != uint16(i+1) {
			t.Errorf("%s: ID %d at position %d: IDs must be listed in order", c.Name, c.ID, i)
		}
		if !prefixRE.MatchString(c.Prefix) || prefixes[c.Prefix] {
			t.Errorf("%s: prefix %q is not 2-4 lower-case letters or not unique", c.Name, c.Prefix)
		}
		prefixes[c.Prefix] = true
		if got, ok := Lookup(c.Name); !ok || got != c {
			t.Errorf("Lookup(%q) = %v, %v; want the table entry", c.Name, got, ok)
		}
		if got, ok := ByID(c.ID); !ok || got != c {
			t.Errorf("ByID(%d) = %v, %v; want the table entry", c.ID, got, ok)
		}
		if c.Tier == TierInvalid || c.Format == FormatInvalid || c.Format == FormatDigits || c.Deterministic == DeterminismInvalid {
			t.Errorf("%s: zero or parse-only enum value in %+v", c.Name, *c)
		}
	}
	for _, id := range []uint16{0, uint16(len(All()) + 1), 65535} {
		if c, ok := ByID(id); ok {
			t.Errorf("ByID(%d) = %v, want none", id, c)
		}
	}
	if c, ok := Lookup("contact.fax"); ok {
		t.Errorf("Lookup(contact.fax) = %v, want none", c)
	}
	a := All()
	a[0] = nil
	if All()[0] == nil {
		t.Error("All() shares its slice with the package")
	}
}

func TestTierString(t *testing.T) {
	for tier, s := range map[Tier]string{T0: "T0", T1: "T1", T2: "T2", T2Plus: "T2+"} {
		if got := tier.String(); got != s {
			t.Errorf("%d.String() = %q, want %q", tier, got, s)
		}
		if got, err := ParseTier(s); err != nil || got != tier {
			t.Errorf("ParseTier(%q) = %v, %v; want %v", s, got, err, tier)
		}
	}
	if got := TierInvalid.String(); got != "Tier(0)" {
		t.Errorf("TierInvalid.String() = %q", got)
	}
	for _, s := range []string{"", "T3", "t0", "Tier(0)", "T2 "} {
		if got, err := ParseTier(s); err == nil {
			t.Errorf("ParseTier(%q) = %v, want an error", s, got)
		}
	}
}

func TestCallingCodesPrefixFree(t *testing.T) {
	codes := strings.Fields(callingCodes)
	if len(codes) < 200 {
		t.Fatalf("only %d calling codes", len(codes))
	}
	for _, a := range codes {
		for _, b := range codes {
			if a != b && strings.HasPrefix(b, a) {
				t.Errorf("calling code %s is a prefix of %s", a, b)
			}
		}
		if got := callingCodeLen(a + "0000000"); got != len(a) {
			t.Errorf("callingCodeLen(%s...) = %d, want %d", a, got, len(a))
		}
	}
	for _, digits := range []string{"2100000", "2590000", "8350000", "", "x1"} {
		if got := callingCodeLen(digits); got != 0 {
			t.Errorf("callingCodeLen(%q) = %d, want 0 (spare code)", digits, got)
		}
	}
}
