package retry_test

import (
	"context"
	"testing"

	"github.com/proxykit/proxy/retry"
)

func okOp(context.Context) error { return nil }

// BenchmarkDirect is the baseline: the op called with no policy around it.
func BenchmarkDirect(b *testing.B) {
	ctx := b.Context()
	op := okOp
	b.ReportAllocs()
	for b.Loop() {
		if err := op(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDoSuccess measures the path every healthy call takes: the first
// attempt succeeds.
func BenchmarkDoSuccess(b *testing.B) {
	for _, bc := range []struct {
		name string
		p    *retry.Policy
	}{
		{"budget", retry.New()},
		{"no budget", retry.New(retry.WithoutBudget())},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.p.Do(ctx, okOp); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/parallel", func(b *testing.B) {
			ctx := b.Context()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bc.p.Do(ctx, okOp); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkDoRetry measures a call that fails once and succeeds on its
// retry, with no wait: the cost of the retry machinery itself.
func BenchmarkDoRetry(b *testing.B) {
	p := retry.New(noWait, retry.WithoutBudget())
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		first := true
		err := p.Do(ctx, func(context.Context) error {
			if first {
				first = false
				return errTransient
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
