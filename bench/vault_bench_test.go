package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/fieldvault/fieldvault/vault"
	"github.com/fieldvault/fieldvault/vault/policy"
)

// In-process benchmarks of the vault's tokenise and detokenise paths,
// without HTTP or JSON: what the product code costs on its own, and a
// target for -cpuprofile (bench/run.sh profiles them).
//
// They run with 16 goroutines per GOMAXPROCS (32 on the 2-core reference
// machine), as the HTTP bench does with -c 32.

const benchParallelism = 16

func benchTokenize(b *testing.B, batch int) {
	st := newStack(b)
	ctx := context.Background()
	var seq atomic.Uint64
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(seq.Add(1), 7))
		req := &vault.TokenizeRequest{Items: make([]vault.TokenizeItem, batch)}
		for pb.Next() {
			for i := range req.Items {
				req.Items[i] = vault.TokenizeItem{Category: "identity.name", Value: nameValue(r.Uint64N(1 << 32)),
					Subject: fmt.Sprintf("s%d", r.IntN(1000))}
			}
			if _, err := st.v.Tokenize(ctx, st.p, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "fields/s")
}

func BenchmarkVaultTokenizeSingle(b *testing.B)    { benchTokenize(b, 1) }
func BenchmarkVaultTokenizeBatch1000(b *testing.B) { benchTokenize(b, 1000) }

func benchDetokenize(b *testing.B, batch int) {
	st := newStack(b)
	ctx := context.Background()
	fv, err := newFieldvault(st.url, stackToken, NewHTTPClient(2, nil))
	if err != nil {
		b.Fatal(err)
	}
	wl, err := newWorkload(ScenarioDetokenize, "", batch, 10, 10, 0, fv)
	if err != nil {
		b.Fatal(err)
	}
	if err := fv.setupPools(ctx, wl, 4, max(batch, 1024)); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Uint64
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(seq.Add(1), 9))
		for pb.Next() {
			p := &wl.pools[r.IntN(len(wl.pools))]
			start := r.IntN(len(p.tokens))
			toks := make([]string, batch)
			for i := range toks {
				toks[i] = p.tokens[(start+i)%len(p.tokens)]
			}
			res, err := st.v.Detokenize(ctx, st.p, &vault.DetokenizeRequest{Purpose: benchPurpose,
				Ground:    &policy.Ground{Type: "consent", Ref: p.consent},
				Recipient: &policy.Recipient{ID: benchRecipient, Country: benchCountry}, Reveal: "full", Tokens: toks})
			if err != nil {
				b.Error(err)
				return
			}
			if res.Items[0].Value == "" {
				b.Errorf("not released: %+v", res.Items[0])
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "fields/s")
}

func BenchmarkVaultDetokenizeSingle(b *testing.B)    { benchDetokenize(b, 1) }
func BenchmarkVaultDetokenizeBatch1000(b *testing.B) { benchDetokenize(b, 1000) }
