// Package balance spreads calls over several instances of one service and
// keeps the unhealthy ones out of the way.
//
// Use it when a service runs as several interchangeable instances (replicas,
// hosts, regions) and a call may go to any of them. A [Balancer] holds the
// pool, picks an instance for each call, and routes around instances that
// are down or keep failing. It knows nothing of requests: the instances are
// values of any type T, and the caller reports what each call said about the
// instance. The proxy package's Balanced turns a Balancer of services into a
// service.
//
//	b := balance.New([]balance.Instance[*Client]{
//		{Name: "payment-1", Value: c1},
//		{Name: "payment-2", Value: c2},
//	}, balance.NewP2C())
//	b.Start()       // active health checks, if the instances have Health
//	defer b.Close() // stops them
//
//	lease, err := b.Pick() // err is ErrNoHealthyInstance when none is left
//	if err != nil { ... }
//	err = lease.Instance().Charge(ctx, amount)
//	lease.Done(balance.Success) // or Failure, or Neutral
//
// # Pickers
//
// A [Picker] chooses among the eligible instances, those that are healthy
// and not ejected. [NewRoundRobin] takes them in turn, [NewRandom] at
// random, [NewLeastConnections] takes the one with the fewest calls in
// flight, and [NewP2C] the less loaded of two picked at random (the power
// of two choices), which keeps load even at a constant cost. Prefer P2C or
// LeastConnections when calls vary in length, RoundRobin when they do not.
// Every picker is lock-free and allocates nothing.
//
// # Health
//
// An instance leaves the pool in two ways.
//
// Active checks: if an instance implements [HealthChecker], [Balancer.Start]
// calls its Health method at once and then every interval (10s by default,
// each check with a 2s timeout). Three failed checks in a row mark it down,
// two passed checks in a row mark it up again. Instances that are not
// checked are always up. With every instance down, Pick fails fast with
// [ErrNoHealthyInstance].
//
// Passive ejection: a call reported as a [Failure] counts against its
// instance, a [Success] resets the count. Five failures in a row eject the
// instance for 30s; each further ejection in a row lasts 30s longer, up to
// 5m, and the multiplier decays by one for each 30s the instance stays in
// the pool. At most half of the instances (rounded down) are ejected at
// once, and ejection never takes out the last eligible instance. An
// ejected instance comes back by itself when its time is up. All of these
// numbers are options.
//
// A [Neutral] result, such as a call the caller canceled, counts neither
// way. Which errors are the instance's fault is for the caller to decide:
// a caller's invalid request is a Success (the instance answered), a
// timeout a Failure.
//
// # Events and snapshots
//
// [Balancer.Subscribe] delivers every state change (down, up, ejected,
// returned) in order, outside the Balancer's lock, and [Balancer.Snapshot]
// reads the state and counters of every instance, for a health or
// statistics page.
//
// # Concurrency and time
//
// A Balancer is safe for concurrent use. Picking reads an immutable view of
// the eligible instances and updates per-instance atomic counters; the lock
// is taken only when an instance changes state. New starts no goroutine:
// only Start does, one per checked instance, and Close stops them and waits
// for them.
//
// Ejection times are derived lazily from the clock given with [WithClock]
// (the real time by default): an ejected instance returns on the first
// Pick or Snapshot after its time is up, without a timer. The health checks
// run on the runtime's tickers; tests drive them in a [testing/synctest]
// bubble.
package balance
