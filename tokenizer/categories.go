package tokenizer

const (
	shortMaxLen = 1 << 10  // 1 KiB: names, identifiers, short attributes
	blobMaxLen  = 64 << 10 // 64 KiB: templates, documents, transcripts
)

// categories is the table of pdpa-model §2.2. IDs and prefixes are stored
// with tokens: append new categories at the end with the next ID, never
// renumber, rename a prefix or reuse an ID.
var categories = [...]Category{
	{ID: 1, Name: "identity.name", Tier: T0, Prefix: "nm", Format: FormatOpaque, Deterministic: Never, MaxLen: shortMaxLen, mask: maskFirstGrapheme},
	{ID: 2, Name: "demographic.nationality", Tier: T0, Prefix: "nat", Format: FormatOpaque, Deterministic: Never, MaxLen: shortMaxLen},
	{ID: 3, Name: "demographic.religion", Tier: T2, Prefix: "rel", Format: FormatOpaque, Deterministic: Never, MaxLen: shortMaxLen},
	{ID: 4, Name: "demographic.race_ethnicity", Tier: T2, Prefix: "eth", Format: FormatOpaque, Deterministic: Never, MaxLen: shortMaxLen},
	{ID: 5, Name: "demographic.marital_status", Tier: T1, Prefix: "mar", Format: FormatOpaque, Deterministic: Never, MaxLen: shortMaxLen},
	{ID: 6, Name: "demographic.basic", Tier: T0, Prefix: "dem", Format: FormatOpaque, Deterministic: Never, MaxLen: shortMaxLen},
	{ID: 7, Name: "contact.phone", Tier: T0, Prefix: "ph", Format: FormatPhone, Deterministic: Default, MaxLen: shortMaxLen, mask: maskPhone},
	{ID: 8, Name: "contact.email", Tier: T0, Prefix: "em", Format: FormatEmail, Deterministic: Default, MaxLen: shortMaxLen, mask: maskEmail},
	{ID: 9, Name: "financial.card_pan", Tier: T1, Prefix: "pan", Format: FormatCard, Deterministic: Never, MaxLen: shortMaxLen, mask: maskCard},
	{ID: 10, Name: "financial.bank_account", Tier: T1, Prefix: "ba", Format: FormatBankAccount, Deterministic: Never, MaxLen: shortMaxLen, mask: maskBankAccount},
	{ID: 11, Name: "financial.profile", Tier: T1, Prefix: "fin", Format: FormatOpaque, Deterministic: Never, MaxLen: shortMaxLen},
	{ID: 12, Name: "govid.th_national_id", Tier: T1, Prefix: "nid", Format: FormatThaiNationalID, Deterministic: Default, MaxLen: shortMaxLen, mask: maskThaiNationalID},
	{ID: 13, Name: "govid.other", Tier: T1, Prefix: "gid", Format: FormatOpaque, Deterministic: Default, MaxLen: shortMaxLen},
	{ID: 14, Name: "location.precise", Tier: T0, Prefix: "loc", Format: FormatOpaque, Deterministic: Never, MaxLen: shortMaxLen},
	{ID: 15, Name: "biometric", Tier: T2, Prefix: "bio", Format: FormatOpaque, Deterministic: Never, MaxLen: blobMaxLen},
	{ID: 16, Name: "media.photo", Tier: T0, Prefix: "img", Format: FormatOpaque, Deterministic: Never, MaxLen: blobMaxLen},
	{ID: 17, Name: "criminal_record", Tier: T2Plus, Prefix: "crim", Format: FormatOpaque, Deterministic: Never, MaxLen: blobMaxLen},
	{ID: 18, Name: "health", Tier: T2, Prefix: "hlth", Format: FormatOpaque, Deterministic: Never, MaxLen: blobMaxLen},
	{ID: 19, Name: "disability", Tier: T2, Prefix: "dis", Format: FormatOpaque, Deterministic: Never, MaxLen: shortMaxLen},
	// T0 by content type, but treated as T2 for grounds because a chat may
	// carry s.26 data (pdpa-model §2.2).
	{ID: 20, Name: "comms.chat_transcript", Tier: T2, Prefix: "chat", Format: FormatOpaque, Deterministic: Never, MaxLen: blobMaxLen},
	{ID: 21, Name: "account.social", Tier: T0, Prefix: "soc", Format: FormatOpaque, Deterministic: Default, MaxLen: shortMaxLen},
	{ID: 22, Name: "third_party.emergency_contact", Tier: T0, Prefix: "ec", Format: FormatOpaque, Deterministic: Never, ThirdParty: true, MaxLen: shortMaxLen},
	// Reserved s.26 kinds, not in the seed policy.
	{ID: 23, Name: "demographic.political_opinion", Tier: T2, Prefix: "pol", Format: FormatOpaque, Deterministic: Never, MaxLen: shortMaxLen},
	{ID: 24, Name: "demographic.sexual_orientation", Tier: T2, Prefix: "sxo", Format: FormatOpaque, Deterministic: Never, MaxLen: shortMaxLen},
	{ID: 25, Name: "demographic.trade_union", Tier: T2, Prefix: "tu", Format: FormatOpaque, Deterministic: Never, MaxLen: shortMaxLen},
	{ID: 26, Name: "health.genetic", Tier: T2, Prefix: "gen", Format: FormatOpaque, Deterministic: Never, MaxLen: blobMaxLen},
}

var (
	all      []*Category
	byName   = make(map[string]*Category, len(categories))
	byPrefix = make(map[string]*Category, len(categories))
	byID     []*Category // indexed by ID; nil where an ID is unused
)

func init() {
	all = make([]*Category, len(categories))
	for i := range categories {
		c := &categories[i]
		all[i] = c
		byName[c.Name] = c
		byPrefix[c.Prefix] = c
		for int(c.ID) >= len(byID) {
			byID = append(byID, nil)
		}
		byID[c.ID] = c
	}
}

// Lookup returns the category with the given name, such as "contact.phone".
func Lookup(name string) (*Category, bool) {
	c, ok := byName[name]
	return c, ok
}

// ByID returns the category with the given stable ID.
func ByID(id uint16) (*Category, bool) {
	if int(id) < len(byID) && byID[id] != nil {
		return byID[id], true
	}
	return nil, false
}

// All returns every category, ordered by ID. The slice is the caller's; the
// categories are shared and must not be modified.
func All() []*Category {
	return append([]*Category(nil), all...)
}
