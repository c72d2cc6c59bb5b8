package vault

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fieldvault/fieldvault/keys"
	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault/store"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// OpTokenizeLuhnValid allows Luhn-valid card tokens, which exist only for
// legacy validators and must be switched on per integration (pdpa-model
// §2.2.1). Every use is logged.
const OpTokenizeLuhnValid = "tokenize.luhn_valid"

func init() { Operations = append(Operations, OpTokenizeLuhnValid) }

// TokenizeItem is one field to tokenise.
type TokenizeItem struct {
	Category string `json:"category"`
	Value    string `json:"value"`
	Subject  string `json:"subject"`
	// Deterministic asks for a deterministic (true) or random (false)
	// token; nil takes the category's default.
	Deterministic *bool `json:"deterministic,omitempty"`
	// Format options.
	LuhnValid  bool `json:"luhn_valid,omitempty"`
	KeepLast4  bool `json:"keep_last4,omitempty"`
	KeepDomain bool `json:"keep_domain,omitempty"`
	// ExpiresAt, if set, makes the token unusable after it.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// TokenizeRequest is a batch.
type TokenizeRequest struct {
	Items []TokenizeItem `json:"items"`
	// PartialSuccess stores the valid items of a batch that has invalid
	// ones and reports the invalid ones per item. By default a batch with
	// any invalid item is rejected as a whole and nothing is written.
	PartialSuccess bool `json:"partial_success,omitempty"`
}

// TokenizeResult holds one entry per item, in order.
type TokenizeResult struct {
	Items []TokenizeResultItem `json:"items"`
}

// TokenizeResultItem is a token or an error.
type TokenizeResultItem struct {
	Token string     `json:"token,omitempty"`
	Error *ItemError `json:"error,omitempty"`
}

// maxTokenAttempts bounds retries after token collisions. Collisions are
// likely only in small format-preserving domains (a phone keeps its last 4
// digits); after this many the domain is treated as exhausted.
const maxTokenAttempts = 16

// phoneWidenAfter is the number of same-length attempts for a phone token
// before each further attempt gets one more random digit (see
// [tokenizer.Options.Widen]): a phone token is as long as its value unless
// the value's (country code, last 4) group is crowded.
const phoneWidenAfter = 6

// tokWork is the per-item state of a tokenise batch.
type tokWork struct {
	cat           *tokenizer.Category
	normalized    string
	subject       string
	opts          tokenizer.Options
	deterministic bool
	expires       int64
	fp            []byte
	version       uint32
	dek           *keys.DEK
	row           store.Token
	err           *ItemError
	done          bool
}

func validSubjectID(s string) bool {
	if len(s) == 0 || len(s) > store.MaxSubjectLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '/' {
			return false
		}
	}
	return true
}

func valueErr(err error) *ItemError {
	switch {
	case errors.Is(err, tokenizer.ErrEmpty):
		return &ItemError{Code: CodeEmptyValue, Message: err.Error()}
	case errors.Is(err, tokenizer.ErrTooLong):
		return &ItemError{Code: CodeValueTooLong, Message: err.Error()}
	}
	return &ItemError{Code: CodeInvalidValue, Message: err.Error()}
}

// Tokenize stores a batch of values and returns their tokens. A token is
// returned only after its row is durable. Values are normalised first; a
// deterministic item returns the token already bound to the same normalised
// value when there is one, provided it belongs to the same subject.
func (v *Vault) Tokenize(ctx context.Context, p *Principal, req *TokenizeRequest) (*TokenizeResult, error) {
	if !v.authz.Can(p, OpTokenize) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not tokenize")
	}
	n := len(req.Items)
	if n == 0 {
		return nil, errorf(KindInvalid, CodeEmptyBatch, "items is empty")
	}
	if n > v.limits.MaxBatch {
		return nil, errorf(KindInvalid, CodeBatchTooLarge, "%d items; at most %d per request", n, v.limits.MaxBatch)
	}
	now := v.now()
	work := make([]tokWork, n)
	bad := 0
	for i := range req.Items {
		if e := v.prepareItem(p, &req.Items[i], &work[i], now); e != nil {
			work[i].err = e
			bad++
		}
	}
	if bad > 0 && !req.PartialSuccess {
		items := make([]*ItemError, n)
		for i := range work {
			items[i] = work[i].err
		}
		return nil, &Error{Kind: KindInvalid, Code: CodeInvalidItems,
			Message: fmt.Sprintf("%d of %d items are invalid; nothing was stored", bad, n), Items: items}
	}
	inserted, err := v.tokenizeValid(ctx, work, now)
	if err != nil {
		return nil, err
	}
	if !req.PartialSuccess {
		// Late per-item failures (a concurrent writer bound the value to
		// another subject, no free token) fail the whole batch: remove the random tokens
		// this call stored, which nobody else can know yet.
		items := make([]*ItemError, n)
		late := 0
		for i := range work {
			if items[i] = work[i].err; items[i] != nil {
				late++
			}
		}
		if late > 0 {
			if _, err := v.store.DeleteTokens(ctx, inserted); err != nil {
				v.log.Error("rolling back a failed tokenize batch", "error", err)
			}
			e := &Error{Kind: KindConflict, Code: CodeConflict,
				Message: fmt.Sprintf("%d of %d items could not be stored (each item's error says why); no token was returned and this batch's random tokens were removed", late, n), Items: items}
			for _, it := range items {
				if it != nil && it.Code != CodeConflict && it.Code != CodeDeterministicSubjectConflict &&
					it.Code != CodeTokenSpaceExhausted {
					e.Kind, e.Code = KindInvalid, CodeInvalidItems
					e.Message = fmt.Sprintf("%d of %d items are invalid; no token was returned and this batch's random tokens were removed", late, n)
					break
				}
			}
			return nil, e
		}
	}
	res := &TokenizeResult{Items: make([]TokenizeResultItem, n)}
	for i := range work {
		w := &work[i]
		if w.err != nil {
			res.Items[i].Error = w.err
			if w.cat != nil {
				v.obs.Tokenized(w.cat.Name, "error", 1)
			}
			continue
		}
		res.Items[i].Token = w.row.Token
		v.obs.Tokenized(w.cat.Name, "ok", 1)
	}
	return res, nil
}

func (v *Vault) prepareItem(p *Principal, it *TokenizeItem, w *tokWork, now time.Time) *ItemError {
	if it.Category == "" {
		return &ItemError{Code: CodeMissingCategory, Message: "category is required"}
	}
	cat, ok := tokenizer.Lookup(it.Category)
	if !ok {
		return &ItemError{Code: CodeUnknownCategory, Message: "unknown category"}
	}
	w.cat = cat
	if it.Subject == "" {
		return &ItemError{Code: CodeMissingSubject, Message: "subject is required"}
	}
	if !validSubjectID(it.Subject) {
		return &ItemError{Code: CodeInvalidSubject, Message: "subject must be 1-128 printable ASCII characters without spaces or '/'"}
	}
	w.subject = it.Subject
	if !v.authz.CanCategory(p, OpTokenize, cat) {
		return &ItemError{Code: CodeRoleNotPermitted, Message: "this API key may not tokenize " + cat.Name}
	}
	norm, err := cat.Normalize(it.Value)
	if err != nil {
		return valueErr(err)
	}
	w.normalized = norm
	switch {
	case it.Deterministic == nil:
		w.deterministic = cat.Deterministic == tokenizer.Default
	case *it.Deterministic:
		if cat.Deterministic == tokenizer.Never {
			return &ItemError{Code: CodeDeterministicNotAllowed,
				Message: cat.Name + " does not allow deterministic tokens (low-cardinality or sensitive)"}
		}
		w.deterministic = true
	}
	w.opts = tokenizer.Options{LuhnValid: it.LuhnValid, KeepLast4: it.KeepLast4, KeepDomain: it.KeepDomain}
	switch {
	case it.LuhnValid && cat.Format != tokenizer.FormatCard:
		return &ItemError{Code: CodeInvalidOption, Message: "luhn_valid applies to card numbers only"}
	case it.KeepLast4 && cat.Format != tokenizer.FormatThaiNationalID:
		return &ItemError{Code: CodeInvalidOption, Message: "keep_last4 applies to Thai national IDs only (card, bank and phone tokens always keep the last 4)"}
	case it.KeepDomain && cat.Format != tokenizer.FormatEmail:
		return &ItemError{Code: CodeInvalidOption, Message: "keep_domain applies to email addresses only"}
	}
	if it.LuhnValid {
		if !v.authz.Can(p, OpTokenizeLuhnValid) {
			return &ItemError{Code: CodeRoleNotPermitted, Message: "Luhn-valid card tokens must be enabled for this API key"}
		}
		v.log.Info("luhn-valid card token requested", "principal", p.Name)
	}
	if it.ExpiresAt != nil {
		if !it.ExpiresAt.After(now) {
			return &ItemError{Code: CodeInvalidOption, Message: "expires_at is in the past"}
		}
		if w.deterministic {
			return &ItemError{Code: CodeInvalidOption, Message: "deterministic tokens cannot expire"}
		}
		w.expires = it.ExpiresAt.Unix()
	}
	return nil
}

// tokenizeValid tokenises every item without an error.
func (v *Vault) tokenizeValid(ctx context.Context, work []tokWork, now time.Time) ([]string, error) {
	// Key versions and fingerprints.
	primaries := make(map[uint16]uint32, 4)
	for i := range work {
		w := &work[i]
		if w.err != nil {
			continue
		}
		ver, ok := primaries[w.cat.ID]
		if !ok {
			var err error
			if ver, err = v.keys.Primary(ctx, w.cat); err != nil {
				return nil, keysErr(err)
			}
			primaries[w.cat.ID] = ver
		}
		w.version = ver
		if w.deterministic {
			fp, err := v.keys.Fingerprint(ctx, w.cat, w.normalized)
			if err != nil {
				return nil, keysErr(err)
			}
			w.fp = fp
		}
	}
	if err := v.resolveDeterministic(ctx, work); err != nil {
		return nil, err
	}
	// Data keys for everything that needs a new token.
	var refs []keys.DEKRef
	var idx []int
	for i := range work {
		w := &work[i]
		if w.err != nil || w.done {
			continue
		}
		refs = append(refs, keys.DEKRef{Subject: w.subject, Category: w.cat.ID, Version: w.version})
		idx = append(idx, i)
	}
	if len(refs) == 0 {
		return nil, nil
	}
	deks, err := v.keys.DEKs(ctx, refs, false)
	if err != nil {
		return nil, keysErr(err)
	}
	// Items whose subject has no data key yet: a new subject or category,
	// or one that was erased. Only these pay for a subject read.
	var newIdx []int
	for j, i := range idx {
		if work[i].dek = deks[j]; deks[j] == nil {
			newIdx = append(newIdx, i)
		}
	}
	if len(newIdx) > 0 {
		if err := v.prepareNewKeys(ctx, work, newIdx); err != nil {
			return nil, err
		}
	}
	live := idx[:0:0]
	for _, i := range idx {
		if work[i].err == nil {
			live = append(live, i)
		}
	}
	return v.insertNew(ctx, work, live, now)
}

// prepareNewKeys creates the data keys of items whose subject has none for
// the category yet. An erased subject gets SUBJECT_ERASED: nothing stored
// for it could ever be released. A category erased earlier while the
// subject lives on is being collected again: it leaves the subject's erased
// list (its old tokens stay tombstones).
func (v *Vault) prepareNewKeys(ctx context.Context, work []tokWork, idx []int) error {
	var ids []string
	seen := map[string]bool{}
	for _, i := range idx {
		if s := work[i].subject; !seen[s] {
			seen[s] = true
			ids = append(ids, s)
		}
	}
	subjects, err := v.subjectsByID(ctx, ids)
	if err != nil {
		return err
	}
	recollect := map[string][]string{}
	var refs []keys.DEKRef
	var live []int
	for _, i := range idx {
		w := &work[i]
		if s := subjects[w.subject]; s != nil {
			if s.State == subject.Erased {
				w.err = &ItemError{Code: CodeSubjectErased, Message: "the subject was erased; register a new subject id"}
				continue
			}
			if slices.Contains(s.ErasedCategories, w.cat.Name) && !slices.Contains(recollect[w.subject], w.cat.Name) {
				recollect[w.subject] = append(recollect[w.subject], w.cat.Name)
			}
		}
		refs = append(refs, keys.DEKRef{Subject: w.subject, Category: w.cat.ID, Version: w.version})
		live = append(live, i)
	}
	for id, cats := range recollect {
		_, err := v.updateSubjectRecord(ctx, id, func(s *subject.Subject, now time.Time) error {
			s.ErasedCategories = slices.DeleteFunc(s.ErasedCategories, func(c string) bool { return slices.Contains(cats, c) })
			s.UpdatedAt = now
			return nil
		})
		if err != nil {
			return err
		}
		if err := v.adminAudit(ctx, "subject.recollect", "", id, map[string]string{"categories": strings.Join(cats, ",")}); err != nil {
			return err
		}
	}
	if len(refs) == 0 {
		return nil
	}
	deks, err := v.keys.DEKs(ctx, refs, true)
	if err != nil {
		return keysErr(err)
	}
	for j, i := range live {
		work[i].dek = deks[j]
	}
	return nil
}

// resolveDeterministic finds deterministic items whose value already has a
// token and marks them done (or in error when the token is another
// subject's).
func (v *Vault) resolveDeterministic(ctx context.Context, work []tokWork) error {
	byCat := make(map[uint16][]int)
	for i := range work {
		if work[i].err == nil && work[i].fp != nil {
			byCat[work[i].cat.ID] = append(byCat[work[i].cat.ID], i)
		}
	}
	var found []int
	var foundTok []string
	for cat, idx := range byCat {
		fps := make([][]byte, len(idx))
		for j, i := range idx {
			fps[j] = work[i].fp
		}
		toks, err := v.store.LookupFingerprints(ctx, cat, fps)
		if err != nil {
			return storeErr(err)
		}
		for j, t := range toks {
			if t != "" {
				found = append(found, idx[j])
				foundTok = append(foundTok, t)
			}
		}
	}
	// Two items of one batch with the same value: the later ones reuse the
	// first one's token once it exists (handled by the fingerprint binding
	// in insertNew).
	if len(found) == 0 {
		return nil
	}
	rows, err := v.store.GetTokens(ctx, foundTok)
	if err != nil {
		return storeErr(err)
	}
	for j, i := range found {
		w := &work[i]
		r := rows[j]
		if r == nil {
			// The bound token vanished (erased concurrently); make a new one.
			continue
		}
		if r.Subject != w.subject {
			w.err = &ItemError{Code: CodeDeterministicSubjectConflict,
				Message: "this value already has a deterministic token of another subject; tokenize it with deterministic=false"}
			continue
		}
		w.row = *r
		w.done = true
	}
	return nil
}

// insertNew generates tokens for the items in idx and inserts them, retrying
// collisions with fresh tokens.
func (v *Vault) insertNew(ctx context.Context, work []tokWork, idx []int, now time.Time) ([]string, error) {
	pending := idx
	var inserted []string // random tokens this call inserted, for rollback
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == maxTokenAttempts {
			for _, i := range pending {
				work[i].err = &ItemError{Code: CodeTokenSpaceExhausted,
					Message: "no free token found for this value's format; try again or use a random format"}
			}
			break
		}
		rows := make([]store.Token, 0, len(pending))
		for _, i := range pending {
			w := &work[i]
			opts := w.opts
			if w.cat.Format == tokenizer.FormatPhone && attempt >= phoneWidenAfter {
				opts.Widen = attempt - phoneWidenAfter + 1
			}
			tok, err := w.cat.NewToken(rand.Reader, w.normalized, opts)
			switch {
			case errors.Is(err, tokenizer.ErrUnsupportedOption):
				w.err = &ItemError{Code: CodeInvalidOption, Message: err.Error()}
				continue
			case errors.Is(err, tokenizer.ErrInvalidValue):
				w.err = valueErr(err)
				continue
			case err != nil:
				return inserted, wrapErr(KindInternal, CodeInternal, "internal error", err)
			}
			w.row = store.Token{
				Token:       tok,
				Subject:     w.subject,
				Category:    w.cat.ID,
				KeyVersion:  w.version,
				CreatedAt:   now.Unix(),
				ExpiresAt:   w.expires,
				Fingerprint: w.fp,
				Ciphertext:  w.dek.Seal(nil, tok, []byte(w.normalized)),
			}
			rows = append(rows, w.row)
		}
		// Items whose option was invalid dropped out above.
		live := pending[:0:0]
		for _, i := range pending {
			if work[i].err == nil {
				live = append(live, i)
			}
		}
		if len(rows) == 0 {
			break
		}
		res, err := v.store.InsertTokens(ctx, rows)
		if err != nil {
			return inserted, storeErr(err)
		}
		var retry []int
		var bound []int
		for j, i := range live {
			w := &work[i]
			switch {
			case res[j].Err == nil:
				w.done = true
				if w.fp == nil {
					inserted = append(inserted, w.row.Token)
				}
			case errors.Is(res[j].Err, store.ErrTokenExists):
				retry = append(retry, i)
			case errors.Is(res[j].Err, store.ErrFingerprintBound):
				w.row = store.Token{Token: res[j].Existing}
				bound = append(bound, i)
			default:
				return inserted, storeErr(res[j].Err)
			}
		}
		if len(bound) > 0 {
			if err := v.adoptBound(ctx, work, bound); err != nil {
				return inserted, err
			}
		}
		pending = retry
	}
	return inserted, nil
}

// adoptBound handles items whose fingerprint another writer (or an earlier
// item of the same batch) bound first: they take that token if it is the
// same subject's.
func (v *Vault) adoptBound(ctx context.Context, work []tokWork, bound []int) error {
	toks := make([]string, len(bound))
	for j, i := range bound {
		toks[j] = work[i].row.Token
	}
	rows, err := v.store.GetTokens(ctx, toks)
	if err != nil {
		return storeErr(err)
	}
	for j, i := range bound {
		w := &work[i]
		switch r := rows[j]; {
		case r == nil:
			w.err = &ItemError{Code: CodeConflict, Message: "the value's token changed concurrently; retry"}
		case r.Subject != w.subject:
			w.err = &ItemError{Code: CodeDeterministicSubjectConflict,
				Message: "this value already has a deterministic token of another subject; tokenize it with deterministic=false"}
		default:
			w.row = *r
			w.done = true
		}
	}
	return nil
}
