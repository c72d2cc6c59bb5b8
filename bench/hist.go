package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram is an HDR-style log-linear histogram of non-negative int64
// values (latencies in nanoseconds here).
//
// Values below 2^b are counted exactly; above, each power-of-two range is
// split into 2^(b-1) equal sub-buckets, so a recorded value is known to
// within a relative error of 2^-(b-1) (b = 11: 0.1%, about three significant
// digits, as HdrHistogram with 3 digits). Values above the largest trackable
// value are clamped to it (and counted in Clamped). The exact min and max
// are kept beside the buckets.
//
// A Histogram is not safe for concurrent use.
type Histogram struct {
	b        uint // sub-bucket bits
	maxShift uint // largest shift tracked
	counts   []uint64
	total    uint64
	clamped  uint64
	min, max int64
	sum      float64
}

// PreciseBits is the precision of the whole-run histograms (0.1%);
// CoarseBits that of the per-interval ones (1.6%).
const (
	PreciseBits = 11
	CoarseBits  = 7
	// maxTrackableBits bounds values to 2^42 ns (about 73 minutes).
	maxTrackableBits = 42
)

// NewHistogram returns an empty histogram with sub-bucket bits b (2..20).
func NewHistogram(b int) *Histogram {
	if b < 2 || b > 20 {
		panic("bench: histogram precision bits out of range")
	}
	h := &Histogram{b: uint(b), maxShift: uint(maxTrackableBits - b)}
	h.counts = make([]uint64, h.index(h.MaxTrackable())+1)
	h.min = math.MaxInt64
	return h
}

// MaxTrackable is the largest value counted without clamping.
func (h *Histogram) MaxTrackable() int64 {
	return int64(1)<<(h.b+h.maxShift) - 1
}

// index maps a value to its bucket.
func (h *Histogram) index(v int64) int {
	full := int64(1) << h.b
	if v < full {
		return int(v)
	}
	half := int64(1) << (h.b - 1)
	shift := uint(bits.Len64(uint64(v))) - h.b // >= 1
	mant := v >> shift                         // in [half*2/2 ... full)
	return int(full + int64(shift-1)*half + (mant - half))
}

// bounds returns the lowest and highest value that map to bucket i.
func (h *Histogram) bounds(i int) (lo, hi int64) {
	full := 1 << h.b
	if i < full {
		return int64(i), int64(i)
	}
	half := 1 << (h.b - 1)
	j := i - full
	shift := uint(j/half) + 1
	mant := int64(j%half + half)
	lo = mant << shift
	return lo, lo + int64(1)<<shift - 1
}

// Record counts one value. Negative values count as 0.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.sum += float64(v)
	h.total++
	if v > h.MaxTrackable() {
		h.clamped++
		v = h.MaxTrackable()
	}
	h.counts[h.index(v)]++
}

// RecordDuration counts a duration in nanoseconds.
func (h *Histogram) RecordDuration(d time.Duration) { h.Record(int64(d)) }

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Clamped is the number of values above MaxTrackable.
func (h *Histogram) Clamped() uint64 { return h.clamped }

// Min is the smallest recorded value (0 when empty).
func (h *Histogram) Min() int64 {
	if h.total == 0 {
		return 0
	}
	return h.min
}

// Max is the largest recorded value, exactly (0 when empty).
func (h *Histogram) Max() int64 { return h.max }

// Mean is the mean of the recorded values (0 when empty).
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// ValueAt returns the value at quantile q (0..1): the highest value
// equivalent to the bucket holding the ceil(q*count)-th smallest value, as
// HdrHistogram reports it, never above the exact max. q <= 0 gives the min,
// q >= 1 the max; an empty histogram gives 0.
func (h *Histogram) ValueAt(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		seen += c
		if seen >= rank {
			if i == len(h.counts)-1 && h.clamped > 0 {
				return h.max // the clamped values' bucket: report them as the max
			}
			_, hi := h.bounds(i)
			if hi > h.max {
				hi = h.max
			}
			if hi < h.min {
				hi = h.min
			}
			return hi
		}
	}
	return h.max
}

// CountAtLeast returns how many recorded values are at least v (to the
// histogram's precision: whole buckets whose lowest value is >= v).
func (h *Histogram) CountAtLeast(v int64) uint64 {
	var n uint64
	for i, c := range h.counts {
		if lo, _ := h.bounds(i); lo >= v {
			n += c
		}
	}
	return n
}

// Merge adds o's counts into h. Both must have the same precision.
func (h *Histogram) Merge(o *Histogram) {
	if o.b != h.b {
		panic("bench: merging histograms of different precision")
	}
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.clamped += o.clamped
	h.sum += o.sum
	if o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
}

// Reset empties the histogram.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.total, h.clamped, h.sum, h.max = 0, 0, 0, 0
	h.min = math.MaxInt64
}
