package metrics

// A BreakerState is the state of a circuit breaker, as proxy_breaker_state
// reports it. The gateway translates its breakers' states into these, so that
// this package need not import the breaker package.
type BreakerState int

// The breaker states, with their gauge values.
const (
	// BreakerClosed lets calls through: the gauge reads 0.
	BreakerClosed BreakerState = iota
	// BreakerHalfOpen lets a few probe calls through: the gauge reads 1.
	BreakerHalfOpen
	// BreakerOpen rejects calls: the gauge reads 2.
	BreakerOpen
)

// String returns "closed", "half-open" or "open".
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	default:
		return "unknown"
	}
}

// SetBreakerState sets proxy_breaker_state for service to s. Call it from the
// breaker's state-change hook. It panics if s is not one of the
// BreakerState constants.
func (m *Metrics) SetBreakerState(service string, s BreakerState) {
	if s < BreakerClosed || s > BreakerOpen {
		panic("metrics: SetBreakerState with an unknown state " + s.String())
	}
	m.breaker.WithLabelValues(m.label(service)).Set(float64(s))
}

// RecordRetry counts one repeated attempt for service in
// proxy_retries_total. Call it from the retry layer's retry hook: the first
// attempt of a call is not a retry.
func (m *Metrics) RecordRetry(service string) {
	m.retries.WithLabelValues(m.label(service)).Inc()
}

// SetInstanceHealthy sets proxy_instance_healthy for the instance of service
// to 1 if healthy, else to 0. Call it from the balancer's health-change hook.
// Instance names come from the configuration, never from requests, so that
// the instance label stays bounded.
func (m *Metrics) SetInstanceHealthy(service, instance string, healthy bool) {
	v := 0.0
	if healthy {
		v = 1
	}
	m.healthy.WithLabelValues(m.label(service), labelValue(instance)).Set(v)
}

// ForgetInstance removes the proxy_instance_healthy series of the instance of
// service, for an instance taken out of the configuration. It reports whether
// there was such a series.
func (m *Metrics) ForgetInstance(service, instance string) bool {
	return m.healthy.DeleteLabelValues(m.label(service), labelValue(instance))
}
