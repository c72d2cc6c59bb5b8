package store

import "fmt"

// Argument checks every backend applies before touching its storage, so
// that all backends reject exactly the same inputs (with ErrInvalid).

func invalid(format string, args ...any) error {
	return fmt.Errorf("store: %w: "+format, append([]any{ErrInvalid}, args...)...)
}

// CheckToken checks a token string against the contract's limits.
func CheckToken(token string) error {
	if token == "" || len(token) > MaxTokenLen {
		return invalid("token of %d bytes", len(token))
	}
	return nil
}

// CheckTokens checks every token of a batch.
func CheckTokens(tokens []string) error {
	for _, t := range tokens {
		if err := CheckToken(t); err != nil {
			return err
		}
	}
	return nil
}

// CheckSubject checks a subject id's length.
func CheckSubject(subject string) error {
	if len(subject) > MaxSubjectLen {
		return invalid("subject of %d bytes", len(subject))
	}
	return nil
}

// CheckCategory rejects category 0, which no category uses.
func CheckCategory(cat uint16) error {
	if cat == 0 {
		return invalid("category 0")
	}
	return nil
}

// CheckRow checks a token row's token, subject and category.
func CheckRow(r *Token) error {
	if err := CheckToken(r.Token); err != nil {
		return err
	}
	if err := CheckSubject(r.Subject); err != nil {
		return err
	}
	return CheckCategory(r.Category)
}

// CheckRef checks a subject key ref.
func CheckRef(r SubjectKeyRef) error {
	if err := CheckSubject(r.Subject); err != nil {
		return err
	}
	return CheckCategory(r.Category)
}

// CheckID checks a record kind, id or index value (what names it in the
// error).
// CheckRecordIDs checks the kind and ids of a record read.
func CheckRecordIDs(kind string, ids []string) error {
	if err := CheckID("kind", kind); err != nil {
		return err
	}
	for _, id := range ids {
		if err := CheckID("id", id); err != nil {
			return err
		}
	}
	return nil
}

// CheckSubjectKeys checks the arguments of InsertSubjectKeys: as many
// non-empty wrapped keys as valid refs.
func CheckSubjectKeys(refs []SubjectKeyRef, wrapped [][]byte) error {
	if len(refs) != len(wrapped) {
		return invalid("%d refs, %d keys", len(refs), len(wrapped))
	}
	for i, r := range refs {
		if err := CheckRef(r); err != nil {
			return err
		}
		if len(wrapped[i]) == 0 {
			return invalid("empty wrapped key")
		}
	}
	return nil
}

func CheckID(what, s string) error {
	if s == "" || len(s) > MaxIDLen {
		return invalid("%s of %d bytes", what, len(s))
	}
	return nil
}
