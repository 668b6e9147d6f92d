package balance_test

import (
	"testing"

	"github.com/proxykit/proxy/balance"
)

// BenchmarkPick measures one Pick and its Done over five instances, for
// each picker, from one goroutine and from many.
func BenchmarkPick(b *testing.B) {
	for _, p := range pickers() {
		b.Run(p.name, func(b *testing.B) {
			bal := balance.New(pool(5), p.new())
			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					l, err := bal.Pick()
					if err != nil {
						b.Fatal(err)
					}
					l.Done(balance.Success)
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						l, err := bal.Pick()
						if err != nil {
							b.Error(err)
							return
						}
						l.Done(balance.Success)
					}
				})
			})
		})
	}
}

// BenchmarkPickWithEjected measures Pick while one of five instances is
// ejected, when Pick also reads the clock to see whether it is due back.
func BenchmarkPickWithEjected(b *testing.B) {
	bal := balance.New(pool(5), balance.NewP2C(), balance.WithFailureThreshold(1))
	l, _ := bal.Pick()
	l.Done(balance.Failure)
	b.ReportAllocs()
	for b.Loop() {
		l, err := bal.Pick()
		if err != nil {
			b.Fatal(err)
		}
		l.Done(balance.Success)
	}
}
