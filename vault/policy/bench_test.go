package policy_test

import (
	"testing"

	"github.com/fieldvault/fieldvault/vault/policy"
)

func benchDecide(b *testing.B, c call) {
	e := engine(b, nil)
	w := newWorld()
	in := w.input(b, c)
	if got := e.Decide(in); got.Decision == policy.Deny {
		b.Fatalf("fixture denied: %+v", got)
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Decide(in)
	}
}

func BenchmarkDecideConsent(b *testing.B) {
	benchDecide(b, call{tok: tokPhoneU1, req: req(policy.PurposeMarketing, policy.GroundConsent, "C1", policy.RevealFull)})
}

func BenchmarkDecideInstrument(b *testing.B) {
	benchDecide(b, call{tok: tokNidU1, req: req(policy.PurposeLegalAuthority, policy.GroundAuthorityInstrument, "ORD-1", policy.RevealFull, "legal")})
}

func BenchmarkDecideDSR(b *testing.B) {
	benchDecide(b, call{tok: tokPhoneU1, req: onBehalf(req(policy.PurposeDataSubjectRequest, policy.GroundDataSubjectRequest, "DSR-1", policy.RevealFull), "U1")})
}

func BenchmarkDecideDeny(b *testing.B) {
	e := engine(b, nil)
	w := newWorld()
	in := w.input(b, call{tok: tokRelU1, req: req(policy.PurposeMarketing, policy.GroundConsent, "C1", policy.RevealFull)})
	b.ReportAllocs()
	for b.Loop() {
		e.Decide(in)
	}
}

// BenchmarkDecideBatch1000 decides a 1000-token batch (one request, the
// tokens of several subjects and categories, allowed and denied), as the
// vault does per detokenise call.
func BenchmarkDecideBatch1000(b *testing.B) {
	e := engine(b, nil)
	w := newWorld()
	toks := []token{tokPhoneU1, {"U1", "contact.email"}, tokRelU1, tokNidU1, {"U2", "contact.phone"}}
	ins := make([]*policy.Input, 1000)
	for i := range ins {
		ins[i] = w.input(b, call{tok: toks[i%len(toks)], req: req(policy.PurposeMarketing, policy.GroundConsent, "C1", policy.RevealFull)})
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, in := range ins {
			e.Decide(in)
		}
	}
}
