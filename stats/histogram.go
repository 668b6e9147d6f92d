package stats

import (
	"math"
	"math/bits"
	"time"
)

// The latency histogram is log-linear, as HdrHistogram's is: durations below
// 2^subBits nanoseconds each have a bucket of their own; above that, every
// power of two is split into 2^subBits buckets of equal width. A bucket
// [lo, lo+w) has w <= lo/16, and a quantile is reported as the middle of its
// bucket, so it is within w/2 <= lo/32 (3.125%) of the exact sample.
const (
	subBits    = 4
	subBuckets = 1 << subBits // buckets per power of two
	// maxExp is the power of two the histogram resolves up to: the last
	// bucket starts at (2^maxExp)*31/32 ns (about 66.6s) and has no upper
	// bound.
	maxExp     = 36
	numBuckets = (maxExp - subBits + 1) * subBuckets
)

// QuantileError is the largest relative error of a reported quantile
// against the exact nearest-rank quantile of the same durations, for
// durations below about 66.6 seconds. A quantile in the last bucket, which
// holds every duration from about 66.6s up, is reported as the largest
// duration.
const QuantileError = 1.0 / (2 * subBuckets)

// bucketOf returns the index of the bucket that holds d.
func bucketOf(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	v := uint64(d)
	if v < subBuckets {
		return int(v)
	}
	e := bits.Len64(v) - 1 // v is in [2^e, 2^(e+1))
	if e >= maxExp {
		return numBuckets - 1
	}
	sub := int(v>>(e-subBits)) - subBuckets
	return (e-subBits+1)*subBuckets + sub
}

// bucketBounds returns the lowest duration of bucket i and the bucket's
// width.
func bucketBounds(i int) (lo, width time.Duration) {
	if i < subBuckets {
		return time.Duration(i), 1
	}
	e := i/subBuckets + subBits - 1
	sub := i % subBuckets
	shift := e - subBits
	return time.Duration(uint64(subBuckets+sub) << shift), time.Duration(uint64(1) << shift)
}

// histogram counts durations in the log-linear buckets. A window slot
// keeps one; uint32 counts are plenty for the calls of one slot.
type histogram struct {
	counts [numBuckets]uint32
}

// merged is the sum of several histograms.
type merged struct {
	counts [numBuckets]uint64
}

// add adds the counts of h to m.
func (m *merged) add(h *histogram) {
	for i, c := range h.counts {
		m.counts[i] += uint64(c)
	}
}

// addMerged adds the counts of o to m.
func (m *merged) addMerged(o *merged) {
	for i, c := range o.counts {
		m.counts[i] += c
	}
}

// quantile returns the q-quantile of the n durations counted in m: the
// middle of the bucket that holds the nearest-rank sample, the
// ceil(q*n)-th smallest, but never more than hi, the largest duration
// counted. It returns 0 when n is 0.
func (m *merged) quantile(q float64, n uint64, hi time.Duration) time.Duration {
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	var seen uint64
	for i, c := range m.counts {
		seen += c
		if seen >= rank {
			if i == numBuckets-1 {
				return hi // the last bucket has no upper bound
			}
			lo, width := bucketBounds(i)
			return min(lo+width/2, hi)
		}
	}
	return hi
}
