package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// TestNoSecretsInSink appends records about known identifiers and checks
// that nothing the sink stores (log and checkpoint store) holds an
// identifier in clear, or the Ref key or the signing key in any usual
// encoding, while the Refs are there.
func TestNoSecretsInSink(t *testing.T) {
	ids := []string{"u-0812345678", "+66812345678", "1103700012345", "somchai@example.co.th",
		"tok_ph_Zx81k2aa", "c_consent77", "e_courtorder9", "svc-acting-user-42"}
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			fx := be.setup(t)
			refKey := make([]byte, RefKeySize)
			seed := make([]byte, ed25519.SeedSize)
			if _, err := rand.Read(refKey); err != nil {
				t.Fatal(err)
			}
			if _, err := rand.Read(seed); err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(fx.node, fx.sink)
			cfg.RefKey, cfg.SigningKey = refKey, ed25519.NewKeyFromSeed(seed)
			l := newLog(t, cfg)
			ctx := context.Background()
			for i, id := range ids {
				r := sampleRecord(l.refs, i)
				r.Subject, r.Target, r.OnBehalfOf = l.Ref(id), l.Ref(id), l.Ref(id)
				r.Items[0].Token, r.Items[0].Subject = l.Ref(id), l.Ref(id)
				r.Ground.Ref = l.Ref(id)
				r.Evidence = &Snapshot{Kind: "consent", Ref: l.Ref(id), Status: "dpv:ConsentGiven"}
				if err := l.Append(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			stored := storedBytes(t, fx)
			for _, id := range ids {
				if bytes.Contains(stored, []byte(id)) {
					t.Errorf("the sink holds identifier %q in clear", id)
				}
				if !bytes.Contains(stored, []byte(l.Ref(id))) {
					t.Errorf("the sink does not hold the Ref of %q: the check above proves nothing", id)
				}
			}
			priv := cfg.SigningKey
			for name, secret := range map[string][]byte{"ref key": refKey, "signing seed": seed, "signing key": priv} {
				for _, form := range [][]byte{secret, []byte(hex.EncodeToString(secret)),
					[]byte(base64.StdEncoding.EncodeToString(secret)), []byte(base64.RawURLEncoding.EncodeToString(secret)),
					secret[:16], []byte(hex.EncodeToString(secret[:16]))} {
					if bytes.Contains(stored, form) {
						t.Errorf("the sink holds the %s", name)
					}
				}
			}
		})
	}
}

// storedBytes returns everything the fixture's sink stored.
func storedBytes(t *testing.T, fx *fixture) []byte {
	t.Helper()
	var all bytes.Buffer
	if fs, ok := fx.sink.(*FileSink); ok {
		dir := filepath.Dir(fs.path)
		des, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range des {
			all.Write(readBytes(t, filepath.Join(dir, de.Name())))
		}
		return all.Bytes()
	}
	for _, e := range entries(t, fx.sink) {
		all.Write(e)
	}
	cp, err := fx.sink.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	all.Write(cp)
	return all.Bytes()
}
