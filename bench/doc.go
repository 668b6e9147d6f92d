// Package bench holds the side-by-side benchmarks of the proxy's wrappers
// against the bare mechanisms they are built on and against the same
// policies in github.com/failsafe-go/failsafe-go and github.com/go-kit/kit.
//
// It is a module of its own, so that the library never depends on the
// peers. The benchmarks are in the test files; run them all, several times
// and summarised with benchstat, with the script next to this file:
//
//	./bench/run
//
// Every benchmark runs the same trivial call, a [proxy.ServiceFunc] that
// returns a preallocated response, through one layer or a stack of layers,
// serially (b.Loop) and from parallel goroutines (b.RunParallel). Its name
// says what it measures: Benchmark<Job>[/variant=...]/impl=<who>/run=<how>,
// where who is ours, bare (the mechanism with no wrapper), failsafe, gokit
// or direct (the call with no layer at all: the floor). BENCHMARKS.md at
// the root of the repository has the figures and what they mean.
package bench
