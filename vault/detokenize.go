package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/fieldvault/fieldvault/keys"
	"github.com/fieldvault/fieldvault/tokenizer"
	"github.com/fieldvault/fieldvault/vault/audit"
	"github.com/fieldvault/fieldvault/vault/consent"
	"github.com/fieldvault/fieldvault/vault/policy"
	"github.com/fieldvault/fieldvault/vault/store"
	"github.com/fieldvault/fieldvault/vault/subject"
)

// DetokenizeRequest asks for values back, for one purpose on one ground.
type DetokenizeRequest struct {
	Purpose       string            `json:"purpose"`
	Ground        *policy.Ground    `json:"ground"`
	Recipient     *policy.Recipient `json:"recipient,omitempty"`
	TransferBasis *policy.Ground    `json:"transfer_basis,omitempty"`
	// Reveal is full, partial or masked; default masked (pdpa-model §2.1
	// rule 7: output is minimal unless asked and allowed).
	Reveal string   `json:"reveal,omitempty"`
	Tokens []string `json:"tokens"`
	// CategoryHint, when given, must match every token's category.
	CategoryHint string `json:"category_hint,omitempty"`
	// OnBehalfOf is the person the call is made for (a DSR requester, a
	// support agent's user); recorded as a Ref.
	OnBehalfOf string `json:"on_behalf_of,omitempty"`
	// Justification is free text kept in the audit record; it must not
	// contain personal data.
	Justification string `json:"justification,omitempty"`
}

// DetokenizeResult holds one entry per token, in request order.
type DetokenizeResult struct {
	DecisionID string                 `json:"decision_id"`
	Items      []DetokenizeResultItem `json:"items"`
}

// DetokenizeResultItem is a value, a masked value, or a denial.
type DetokenizeResultItem struct {
	Token  string     `json:"token"`
	Value  string     `json:"value,omitempty"`
	Masked string     `json:"masked,omitempty"`
	Denied *ItemError `json:"denied,omitempty"`
}

// Clear overwrites released values in memory (best effort: Go strings are
// immutable; this drops the references so the values can be collected).
func (r *DetokenizeResult) Clear() {
	for i := range r.Items {
		r.Items[i].Value = ""
	}
}

// MaxJustification bounds the free-text justification.
const MaxJustification = 512

// detItem is the per-token state of a decision.
type detItem struct {
	token  string
	row    *store.Token
	cat    *tokenizer.Category
	subj   *subject.Subject
	erased bool
	tomb   *tombstone
	out    policy.Outcome
	value  []byte
}

// Detokenize decides, per token, whether the caller may have the value, and
// returns the allowed ones. The decision's audit record is committed before
// anything is returned; if it cannot be, nothing is (AUDIT_UNAVAILABLE).
//
// When every token is denied, the result is returned together with an
// *Error (KindForbidden, or KindNotFound when every token is unknown) so
// the API can answer 4xx with the per-token reasons.
func (v *Vault) Detokenize(ctx context.Context, p *Principal, req *DetokenizeRequest) (*DetokenizeResult, error) {
	res, err := v.detokenize(ctx, p, req)
	if err != nil && res == nil {
		// Requests that fail before any decision still count, so that
		// outages show up beside denials.
		var e *Error
		if errors.As(err, &e) && (e.Code == CodeStoreUnavailable || e.Code == CodeKEKUnavailable) {
			g := ""
			if req.Ground != nil {
				g = req.Ground.Type
			}
			v.obs.Decision(purposeLabel(req.Purpose), groundLabel(g), policy.Deny, e.Code, len(req.Tokens))
		}
	}
	return res, err
}

func (v *Vault) detokenize(ctx context.Context, p *Principal, req *DetokenizeRequest) (*DetokenizeResult, error) {
	if !v.authz.Can(p, OpDetokenize) {
		return nil, errorf(KindForbidden, CodeForbidden, "this API key may not detokenize")
	}
	if err := v.validateDetokenize(req); err != nil {
		return nil, err
	}
	now := v.now()
	preq := &policy.Request{
		Principal:     p.Name,
		Roles:         p.Roles,
		OnBehalfOf:    req.OnBehalfOf,
		Purpose:       req.Purpose,
		Ground:        *req.Ground,
		Recipient:     req.Recipient,
		TransferBasis: req.TransferBasis,
		Reveal:        req.Reveal,
		CategoryHint:  req.CategoryHint,
	}

	// Distinct tokens, read in one batch.
	uniq := make([]string, 0, len(req.Tokens))
	pos := make(map[string]int, len(req.Tokens))
	for _, t := range req.Tokens {
		if _, ok := pos[t]; !ok {
			pos[t] = len(uniq)
			uniq = append(uniq, t)
		}
	}
	items := make([]detItem, len(uniq))
	rows, err := v.store.GetTokens(ctx, uniq)
	if err != nil {
		return nil, storeErr(err)
	}
	var missing []string
	subjIDs := make([]string, 0, 4)
	seenSubj := make(map[string]bool)
	for i, t := range uniq {
		items[i].token = t
		items[i].row = rows[i]
		if rows[i] == nil {
			missing = append(missing, t)
			continue
		}
		items[i].cat, _ = tokenizer.ByID(rows[i].Category)
		if !seenSubj[rows[i].Subject] {
			seenSubj[rows[i].Subject] = true
			subjIDs = append(subjIDs, rows[i].Subject)
		}
	}
	erased, err := v.tombstones(ctx, missing)
	if err != nil {
		return nil, err
	}
	subjects, err := v.subjectsByID(ctx, subjIDs)
	if err != nil {
		return nil, err
	}
	var linkedIDs []string
	for _, s := range subjects {
		if s.LinkedTo != "" && subjects[s.LinkedTo] == nil {
			linkedIDs = append(linkedIDs, s.LinkedTo)
		}
	}
	linked, err := v.subjectsByID(ctx, linkedIDs)
	if err != nil {
		return nil, err
	}
	ev, err := v.groundEvidence(ctx, req.Ground, req.TransferBasis)
	if err != nil {
		return nil, err
	}

	// Decide per token.
	eng := v.engine.Load()
	for i := range items {
		it := &items[i]
		if it.row == nil {
			it.tomb = erased[it.token]
			it.erased = it.tomb != nil
			facts := policy.TokenFacts{Erased: it.erased}
			it.out = eng.Decide(&policy.Input{Now: now, Request: preq, Token: facts})
			continue
		}
		if it.cat == nil {
			it.out = deny(policy.CodeTokenUnknown, "the token's category is not known to this version")
			continue
		}
		if !v.authz.CanCategory(p, OpDetokenize, it.cat) {
			it.out = deny(policy.CodeRoleNotPermitted, "this API key may not detokenize "+it.cat.Name)
			continue
		}
		it.subj = subjects[it.row.Subject]
		in := policy.Input{
			Now:     now,
			Request: preq,
			Token: policy.TokenFacts{
				Found:    true,
				Expired:  it.row.ExpiresAt != 0 && now.Unix() >= it.row.ExpiresAt,
				Category: it.cat,
				Subject:  it.row.Subject,
			},
			Subject:          it.subj,
			Consent:          ev.consent,
			Evidence:         ev.evidence,
			TransferConsent:  ev.transferConsent,
			TransferEvidence: ev.transferEvidence,
		}
		if it.subj != nil && it.subj.LinkedTo != "" {
			if l := subjects[it.subj.LinkedTo]; l != nil {
				in.Linked = l
			} else {
				in.Linked = linked[it.subj.LinkedTo]
			}
		}
		it.out = eng.Decide(&in)
	}

	// Decrypt what was allowed, before the audit, so that the record tells
	// the truth about what is released.
	if err := v.decryptAllowed(ctx, items); err != nil {
		return nil, err
	}
	decisionID := newID("d_", now)
	rec := v.decisionRecord(decisionID, now, p, req, preq, ev, items)
	if err := v.audit.Append(ctx, rec); err != nil {
		for i := range items {
			clear(items[i].value)
		}
		v.log.Error("audit append failed; denying", "decision_id", decisionID, "error", err)
		v.obs.Decision(purposeLabel(req.Purpose), groundLabel(req.Ground.Type), policy.Deny, policy.CodeAuditUnavailable, len(items))
		return nil, wrapErr(KindUnavailable, CodeAuditUnavailable, "the audit log is unavailable; nothing was released", err)
	}
	return v.detokenizeResult(decisionID, req, pos, items)
}

func deny(code, msg string) policy.Outcome {
	return policy.Outcome{Decision: policy.Deny, Code: code, Message: msg}
}

func (v *Vault) validateDetokenize(req *DetokenizeRequest) error {
	n := len(req.Tokens)
	switch {
	case n == 0:
		return errorf(KindInvalid, CodeEmptyBatch, "tokens is empty")
	case n > v.limits.MaxBatch:
		return errorf(KindInvalid, CodeBatchTooLarge, "%d tokens; at most %d per request", n, v.limits.MaxBatch)
	case req.Purpose == "":
		return errorf(KindInvalid, CodeMissingPurpose, "purpose is required")
	case req.Ground == nil || req.Ground.Type == "":
		return errorf(KindInvalid, CodeMissingGround, "ground with a type is required")
	case len(req.Justification) > MaxJustification:
		return errorf(KindInvalid, CodeInvalidRequest, "justification is longer than %d bytes", MaxJustification)
	}
	switch req.Reveal {
	case "":
		req.Reveal = policy.RevealMasked
	case policy.RevealFull, policy.RevealPartial, policy.RevealMasked:
	default:
		return errorf(KindInvalid, CodeInvalidReveal, "reveal must be full, partial or masked")
	}
	for _, t := range req.Tokens {
		if len(t) == 0 || len(t) > store.MaxTokenLen {
			return errorf(KindInvalid, CodeTokenMalformed, "a token is empty or longer than %d bytes", store.MaxTokenLen)
		}
	}
	return nil
}

// tombstones returns the tombstones of the missing tokens that were erased.
func (v *Vault) tombstones(ctx context.Context, missing []string) (map[string]*tombstone, error) {
	out := make(map[string]*tombstone)
	if len(missing) == 0 {
		return out, nil
	}
	recs, err := v.store.GetRecords(ctx, kindTombstone, missing)
	if err != nil {
		return nil, storeErr(err)
	}
	for i, r := range recs {
		if r != nil {
			ts := new(tombstone)
			if err := json.Unmarshal(r.Value, ts); err != nil {
				return nil, wrapErr(KindInternal, CodeInternal, "internal error", err)
			}
			out[missing[i]] = ts
		}
	}
	return out, nil
}

func (v *Vault) subjectsByID(ctx context.Context, ids []string) (map[string]*subject.Subject, error) {
	out := make(map[string]*subject.Subject, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	recs, err := v.store.GetRecords(ctx, kindSubject, ids)
	if err != nil {
		return nil, storeErr(err)
	}
	for i, r := range recs {
		if r == nil {
			continue
		}
		s, err := v.subjects.decode(ids[i], r.Value)
		if err != nil {
			return nil, wrapErr(KindInternal, CodeInternal, "internal error", err)
		}
		out[ids[i]] = s
	}
	return out, nil
}

// groundRecords are the evidence records a request's ground and transfer
// basis name.
type groundRecords struct {
	consent          *consent.Consent
	evidence         *policy.Evidence
	transferConsent  *consent.Consent
	transferEvidence *policy.Evidence
}

func (v *Vault) groundEvidence(ctx context.Context, g *policy.Ground, tb *policy.Ground) (*groundRecords, error) {
	out := &groundRecords{}
	var err error
	out.consent, out.evidence, err = v.lookupGround(ctx, g.Type == policy.GroundConsent, g.Ref)
	if err != nil {
		return nil, err
	}
	if tb != nil {
		out.transferConsent, out.transferEvidence, err = v.lookupGround(ctx, tb.Type == policy.TransferConsent, tb.Ref)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (v *Vault) lookupGround(ctx context.Context, isConsent bool, ref string) (*consent.Consent, *policy.Evidence, error) {
	if ref == "" || !validRecordID(ref) {
		return nil, nil, nil
	}
	kind := kindEvidence
	if isConsent {
		kind = kindConsent
	}
	rec, err := v.store.GetRecord(ctx, kind, ref)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, storeErr(err)
	}
	if isConsent {
		c, err := v.consents.decode(ref, rec.Value)
		if err != nil {
			return nil, nil, wrapErr(KindInternal, CodeInternal, "internal error", err)
		}
		return c, nil, nil
	}
	e, err := v.evidence.decode(ref, rec.Value)
	if err != nil {
		return nil, nil, wrapErr(KindInternal, CodeInternal, "internal error", err)
	}
	return nil, e, nil
}

// decryptAllowed opens the values of allowed items. A value whose subject key
// is gone (crypto-shredded) is denied TOKEN_ERASED.
func (v *Vault) decryptAllowed(ctx context.Context, items []detItem) error {
	var refs []keys.DEKRef
	var idx []int
	for i := range items {
		it := &items[i]
		if it.out.Decision == policy.Deny {
			continue
		}
		refs = append(refs, keys.DEKRef{Subject: it.row.Subject, Category: it.row.Category, Version: it.row.KeyVersion})
		idx = append(idx, i)
	}
	if len(refs) == 0 {
		return nil
	}
	deks, err := v.keys.DEKs(ctx, refs, false)
	if err != nil {
		if errors.Is(err, keys.ErrUnknownVersion) || errors.Is(err, keys.ErrVersionNotUsable) {
			// Handled per item below by reading each separately.
			deks = make([]*keys.DEK, len(refs))
			for j := range refs {
				d, err := v.keys.DEKs(ctx, refs[j:j+1], false)
				if err == nil {
					deks[j] = d[0]
				}
			}
		} else {
			return keysErr(err)
		}
	}
	for j, i := range idx {
		it := &items[i]
		if deks[j] == nil {
			it.out = deny(policy.CodeTokenErased, "the value was erased")
			it.erased = true
			continue
		}
		val, err := deks[j].Open(nil, it.token, it.row.Ciphertext)
		if err != nil {
			v.log.Error("a stored value does not decrypt", "category", it.cat.Name)
			it.out = deny(CodeValueUnreadable, "the stored value cannot be decrypted")
			continue
		}
		it.value = val
	}
	return nil
}

func (v *Vault) detokenizeResult(decisionID string, req *DetokenizeRequest, pos map[string]int, items []detItem) (*DetokenizeResult, error) {
	res := &DetokenizeResult{DecisionID: decisionID, Items: make([]DetokenizeResultItem, len(req.Tokens))}
	released, unknown := 0, 0
	var firstCode string
	uniform := true
	for i := range items {
		it := &items[i]
		cat := "unknown"
		if it.cat != nil {
			cat = it.cat.Name
		}
		if it.out.Decision == policy.Deny {
			v.obs.Detokenized(cat, "denied", 1)
			if it.out.Code == policy.CodeTokenUnknown {
				unknown++
			}
			if firstCode == "" {
				firstCode = it.out.Code
			} else if firstCode != it.out.Code {
				uniform = false
			}
		} else {
			v.obs.Detokenized(cat, it.out.Decision, 1)
		}
		v.obs.Decision(purposeLabel(req.Purpose), groundLabel(req.Ground.Type), it.out.Decision, it.out.Code, 1)
	}
	for k, t := range req.Tokens {
		it := &items[pos[t]]
		out := &res.Items[k]
		out.Token = t
		switch {
		case it.out.Decision == policy.Deny:
			out.Denied = &ItemError{Code: it.out.Code, Message: it.out.Message}
		case it.out.Reveal == policy.RevealFull:
			out.Value = string(it.value)
			released++
		case it.out.Reveal == policy.RevealPartial:
			out.Masked = it.cat.Partial(string(it.value))
			released++
		default:
			out.Masked = it.cat.Redacted()
			released++
		}
	}
	for i := range items {
		clear(items[i].value)
	}
	if released > 0 {
		return res, nil
	}
	if unknown == len(items) {
		return res, errorf(KindNotFound, policy.CodeTokenUnknown, "no token is known")
	}
	code := CodeDenied
	if uniform && firstCode != "" {
		code = firstCode
	}
	return res, errorf(KindForbidden, code, "every token was denied; see items")
}

// decisionRecord builds the audit record of a decision. It holds Refs,
// never tokens, values or subject ids.
func (v *Vault) decisionRecord(id string, now time.Time, p *Principal, req *DetokenizeRequest,
	preq *policy.Request, ev *groundRecords, items []detItem) *audit.Record {
	eng := v.engine.Load() // its version and hash are computed once
	rec := &audit.Record{
		Type:          audit.TypeDecision,
		Time:          now.UTC(),
		TimeICT:       now.In(ict).Format(time.RFC3339),
		DecisionID:    id,
		PolicyVersion: eng.Version(),
		PolicySHA256:  eng.SHA256(),
		Principal:     p.Name,
		Roles:         p.Roles,
		Purpose:       req.Purpose,
		Reveal:        req.Reveal,
		Items:         make([]audit.Item, len(items)),
	}
	if req.OnBehalfOf != "" {
		rec.OnBehalfOf = v.audit.Ref(req.OnBehalfOf)
	}
	if req.Justification != "" {
		if rec.Details == nil {
			rec.Details = map[string]string{}
		}
		rec.Details["justification"] = req.Justification
	}
	g := &audit.Ground{Type: req.Ground.Type}
	if req.Ground.Ref != "" {
		g.Ref = v.audit.Ref(req.Ground.Ref)
	}
	rec.Ground = g
	if req.Recipient != nil {
		rec.Recipient = &audit.Party{ID: req.Recipient.ID, Country: req.Recipient.Country}
	}
	if req.TransferBasis != nil {
		tb := &audit.Ground{Type: req.TransferBasis.Type}
		if req.TransferBasis.Ref != "" {
			tb.Ref = v.audit.Ref(req.TransferBasis.Ref)
		}
		rec.TransferBasis = tb
	}
	rec.Evidence = v.snapshot(ev)
	refs := make(map[string]audit.Ref, 4) // a subject's Ref, once per decision
	subjectRef := func(id string) audit.Ref {
		r, ok := refs[id]
		if !ok {
			r = v.audit.Ref(id)
			refs[id] = r
		}
		return r
	}
	allow, masked := 0, 0
	reasons := map[string]bool{}
	alerts := map[string]bool{}
	for i := range items {
		it := &items[i]
		ai := audit.Item{Token: v.audit.Ref(it.token), Decision: it.out.Decision, Reason: it.out.Code}
		if it.row != nil {
			ai.Subject = subjectRef(it.row.Subject)
		}
		if it.tomb != nil {
			ai.Subject = it.tomb.SubjectRef
			if c, ok := tokenizer.Lookup(it.tomb.Category); ok {
				ai.Category, ai.Tier = c.Name, c.Tier.String()
			}
		}
		if it.cat != nil {
			ai.Category = it.cat.Name
			ai.Tier = it.cat.Tier.String()
		}
		if it.subj != nil {
			ai.SubjectType = string(it.subj.Type)
			ai.AgeBand = string(subject.AgeBandAt(it.subj, now))
		}
		rec.Items[i] = ai
		switch it.out.Decision {
		case policy.Allow:
			allow++
			if g.IRI == "" {
				g.IRI, g.Section = it.out.GroundIRI, it.out.Section
			}
		case policy.AllowMasked:
			masked++
			if g.IRI == "" {
				g.IRI, g.Section = it.out.GroundIRI, it.out.Section
			}
		default:
			reasons[it.out.Code] = true
		}
		for _, a := range it.out.Alerts {
			alerts[a] = true
		}
	}
	rec.Released = allow + masked
	switch {
	case allow > 0:
		rec.Decision = audit.Allow
	case masked > 0:
		rec.Decision = audit.AllowMasked
	default:
		rec.Decision = audit.Deny
	}
	for r := range reasons {
		rec.Reasons = append(rec.Reasons, r)
	}
	for a := range alerts {
		rec.Alerts = append(rec.Alerts, a)
	}
	slices.Sort(rec.Reasons)
	slices.Sort(rec.Alerts)
	return rec
}

func (v *Vault) snapshot(ev *groundRecords) *audit.Snapshot {
	switch {
	case ev.consent != nil:
		c := ev.consent
		return &audit.Snapshot{
			Kind:          "consent",
			Ref:           v.audit.Ref(c.ID),
			Status:        consent.Status(c, v.now()),
			NoticeVersion: c.NoticeVersion,
			RecordSHA256:  v.consentHashes.get(c.ID, c),
			Expires:       c.ExpiresAt,
		}
	case ev.evidence != nil:
		e := ev.evidence
		s := &audit.Snapshot{Kind: e.Kind, Ref: v.audit.Ref(e.ID), Expires: e.ValidUntil,
			Authority: e.Attributes["authority"]}
		for _, a := range e.Approvals {
			s.Approvals = append(s.Approvals, a.Principal)
		}
		return s
	}
	return nil
}

// ict is Indochina Time (Thailand has no daylight saving).
var ict = time.FixedZone("ICT", 7*3600)

// purposeLabel and groundLabel bound metric label values to the vocabulary:
// a caller's free text never becomes a label.
func purposeLabel(p string) string {
	if slices.Contains(policy.Purposes, p) {
		return p
	}
	return "other"
}

func groundLabel(g string) string {
	if slices.Contains(policy.Grounds, g) {
		return g
	}
	return "other"
}

// decodeCache keeps decoded records next to the bytes they were decoded
// from. The record is still read from the store on every decision (so a
// change, such as a withdrawal or a suspension, is seen at once); only the
// JSON decoding is skipped when the stored bytes are unchanged. Cached
// values are shared and must not be modified.
type decodeCache[T any] struct {
	mu sync.RWMutex
	m  map[string]*cachedRecord[T]
}

type cachedRecord[T any] struct {
	raw []byte
	v   *T
}

const decodeCacheSize = 100000

func (c *decodeCache[T]) decode(id string, raw []byte) (*T, error) {
	c.mu.RLock()
	e := c.m[id]
	c.mu.RUnlock()
	if e != nil && bytes.Equal(e.raw, raw) {
		return e.v, nil
	}
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[string]*cachedRecord[T])
	}
	if len(c.m) >= decodeCacheSize {
		n := decodeCacheSize / 8
		for k := range c.m {
			delete(c.m, k)
			if n--; n <= 0 {
				break
			}
		}
	}
	c.m[id] = &cachedRecord[T]{raw: bytes.Clone(raw), v: v}
	c.mu.Unlock()
	return v, nil
}

// hashCache memoises consent.Hash per decoded consent: the decode cache
// hands out the same *Consent while its stored bytes are unchanged, so the
// pointer identifies the version hashed.
type hashCache struct {
	mu sync.Mutex
	m  map[string]hashEntry
}

type hashEntry struct {
	c    *consent.Consent
	hash string
}

func (h *hashCache) get(id string, c *consent.Consent) string {
	h.mu.Lock()
	e, ok := h.m[id]
	h.mu.Unlock()
	if ok && e.c == c {
		return e.hash
	}
	sum := consent.Hash(c)
	h.mu.Lock()
	if h.m == nil || len(h.m) >= decodeCacheSize {
		h.m = make(map[string]hashEntry)
	}
	h.m[id] = hashEntry{c: c, hash: sum}
	h.mu.Unlock()
	return sum
}
