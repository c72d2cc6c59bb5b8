package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// exactQuantile is the ceil(q*n)-th smallest value of sorted.
func exactQuantile(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func TestHistogramBucketBounds(t *testing.T) {
	for _, b := range []int{CoarseBits, PreciseBits} {
		h := NewHistogram(b)
		maxRel := 1 / float64(int(1)<<(b-1))
		r := rand.New(rand.NewPCG(1, 2))
		prev := -1
		for i := 0; i < 200000; i++ {
			var v int64
			if i < 5000 {
				v = int64(i) // dense at the start, and monotonic
			} else {
				v = int64(r.Uint64N(uint64(h.MaxTrackable())))
			}
			idx := h.index(v)
			lo, hi := h.bounds(idx)
			if v < lo || v > hi {
				t.Fatalf("b=%d: %d maps to bucket %d = [%d,%d]", b, v, idx, lo, hi)
			}
			if lo > 0 && float64(hi-lo)/float64(lo) > maxRel {
				t.Fatalf("b=%d: bucket [%d,%d] wider than %.4f relative", b, lo, hi, maxRel)
			}
			if i < 5000 {
				if idx < prev {
					t.Fatalf("index not monotonic at %d", v)
				}
				prev = idx
			}
		}
		for i := 0; i < len(h.counts)-1; i++ {
			_, hi := h.bounds(i)
			if lo, _ := h.bounds(i + 1); lo != hi+1 {
				t.Fatalf("b=%d: buckets %d and %d are not contiguous: %d, %d", b, i, i+1, hi, lo)
			}
		}
		if got := h.index(h.MaxTrackable()); got != len(h.counts)-1 {
			t.Fatalf("b=%d: largest value in bucket %d of %d", b, got, len(h.counts))
		}
	}
}

func TestHistogramExactSmallValues(t *testing.T) {
	h := NewHistogram(PreciseBits)
	for v := int64(1); v <= 1000; v++ {
		h.Record(v)
	}
	for _, c := range []struct {
		q    float64
		want int64
	}{{0.5, 500}, {0.9, 900}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0, 1}, {0.0001, 1}, {0.9995, 1000}, {0.0015, 2}, {0.5005, 501}} {
		if got := h.ValueAt(c.q); got != c.want {
			t.Errorf("ValueAt(%v) = %d, want %d", c.q, got, c.want)
		}
	}
	if h.Count() != 1000 || h.Min() != 1 || h.Max() != 1000 || h.Mean() != 500.5 {
		t.Errorf("count %d min %d max %d mean %v", h.Count(), h.Min(), h.Max(), h.Mean())
	}
}

// The percentiles of known distributions are within the histogram's
// precision of the exact order statistics of the same sample, and close to
// the distribution's theoretical quantiles.
func TestHistogramKnownDistributions(t *testing.T) {
	const n = 500000
	r := rand.New(rand.NewPCG(7, 11))
	dists := []struct {
		name   string
		sample func() int64
		// theory is the quantile function (nil: none checked).
		theory func(q float64) float64
	}{
		{"uniform 1µs-10ms", func() int64 { return 1000 + r.Int64N(10_000_000-1000) },
			func(q float64) float64 { return 1000 + q*(10_000_000-1000) }},
		{"exponential mean 2ms", func() int64 { return int64(r.ExpFloat64() * 2e6) },
			func(q float64) float64 { return -math.Log(1-q) * 2e6 }},
		{"lognormal", func() int64 { return int64(math.Exp(r.NormFloat64()*0.8 + math.Log(1e6))) }, nil},
		{"bimodal 1ms/50ms", func() int64 {
			if r.IntN(100) < 97 {
				return 1_000_000 + r.Int64N(100_000)
			}
			return 50_000_000 + r.Int64N(1_000_000)
		}, nil},
	}
	for _, d := range dists {
		t.Run(d.name, func(t *testing.T) {
			h := NewHistogram(PreciseBits)
			vals := make([]int64, n)
			for i := range vals {
				vals[i] = d.sample()
				h.Record(vals[i])
			}
			slices.Sort(vals)
			tol := 1 / float64(int(1)<<(PreciseBits-1))
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 0.9999} {
				want := exactQuantile(vals, q)
				got := h.ValueAt(q)
				if got < want || float64(got-want) > tol*float64(want)+1 {
					t.Errorf("q=%v: got %d, exact %d (tolerance %.3f%%)", q, got, want, tol*100)
				}
				if d.theory != nil && q <= 0.999 {
					th := d.theory(q)
					if rel := math.Abs(float64(got)-th) / th; rel > 0.05 {
						t.Errorf("q=%v: got %d, theoretical %.0f (%.1f%% off)", q, got, th, rel*100)
					}
				}
			}
			if h.Max() != vals[n-1] || h.Min() != vals[0] {
				t.Errorf("min/max %d/%d, want %d/%d", h.Min(), h.Max(), vals[0], vals[n-1])
			}
		})
	}
}

func TestHistogramMergeResetClamp(t *testing.T) {
	a, b, all := NewHistogram(PreciseBits), NewHistogram(PreciseBits), NewHistogram(PreciseBits)
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 10000; i++ {
		v := int64(r.ExpFloat64() * 1e6)
		all.Record(v)
		if i%2 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	a.Merge(b)
	for _, q := range []float64{0, 0.5, 0.99, 0.999, 1} {
		if a.ValueAt(q) != all.ValueAt(q) {
			t.Errorf("merged q=%v: %d, want %d", q, a.ValueAt(q), all.ValueAt(q))
		}
	}
	if a.Count() != all.Count() || a.Mean() != all.Mean() {
		t.Errorf("merged count/mean %d/%v, want %d/%v", a.Count(), a.Mean(), all.Count(), all.Mean())
	}

	a.Reset()
	if a.Count() != 0 || a.ValueAt(0.5) != 0 || a.Max() != 0 || a.Min() != 0 {
		t.Error("reset histogram not empty")
	}

	c := NewHistogram(CoarseBits)
	huge := c.MaxTrackable() * 4
	c.Record(10)
	c.Record(huge)
	c.Record(-5)
	if c.Clamped() != 1 || c.Max() != huge || c.ValueAt(1) != huge || c.Min() != 0 {
		t.Errorf("clamped %d max %d p100 %d min %d", c.Clamped(), c.Max(), c.ValueAt(1), c.Min())
	}
	if got := c.ValueAt(0.9); got != huge {
		t.Errorf("p90 of {0,10,huge} = %d, want the (clamped, then exact) max %d", got, huge)
	}
}
