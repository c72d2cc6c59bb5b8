package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"

	"github.com/fieldvault/fieldvault/vault/audit"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)

	sink, err := audit.OpenFileSink(audit.FileConfig{Dir: dir})
	if err != nil {
		panic(err)
	}
	defer sink.Close()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	refKey := make([]byte, audit.RefKeySize)
	rand.Read(refKey)
	log, err := audit.New(audit.Config{Node: "vault-0", RefKey: refKey, SigningKey: priv, Sink: sink})
	if err != nil {
		panic(err) // the stored chain does not verify, or the sink is down
	}

	rec := &audit.Record{
		Type: audit.TypeDecision, Purpose: "marketing", Decision: audit.Deny,
		Reasons: []string{"CONSENT_WITHDRAWN"},
		Items: []audit.Item{{Token: log.Ref("tok_ph_8f2k"), Subject: log.Ref("u1"),
			Decision: audit.Deny, Reason: "CONSENT_WITHDRAWN"}},
	}
	if err := log.Append(ctx, rec); err != nil {
		fmt.Println("deny: AUDIT_UNAVAILABLE") // fail closed: release nothing
		return
	}
	fmt.Println("committed seq", rec.Seq)
	if err := log.Close(); err != nil {
		panic(err)
	}

	rep, err := audit.Verify(ctx, sink, pub)
	if err != nil {
		panic(err)
	}
	fmt.Println("verified:", rep.OK(), "records:", rep.Records)

	_ = audit.ForSubject(ctx, sink, log.Ref("u1"), func(r *audit.Record) error {
		fmt.Println("u1:", r.Seq, r.Purpose, r.Decision, r.Reasons)
		return nil
	})
	// Output:
	// committed seq 1
	// verified: true records: 1
	// u1: 1 marketing DENY [CONSENT_WITHDRAWN]
}
