package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dashboardMetricRE finds the gateway's metric names in a PromQL
// expression.
var dashboardMetricRE = regexp.MustCompile(`\b(?:proxy|gateway)_[a-zA-Z0-9_:]+`)

// dashboardMetrics returns every proxy_* and gateway_* name in the
// dashboard's queries: panel expressions and template variables.
func dashboardMetrics(t *testing.T, file string) []string {
	t.Helper()
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	var doc any
	require.NoError(t, json.Unmarshal(raw, &doc), "%s is JSON", file)
	var names []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if s, ok := e.(string); ok && (k == "expr" || k == "query" || k == "definition") {
					names = append(names, dashboardMetricRE.FindAllString(s, -1)...)
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
	slices.Sort(names)
	return slices.Compact(names)
}

// TestGrafanaDashboardMetrics checks that every metric the Grafana
// dashboard queries is on /metrics once the gateway has had some traffic:
// a renamed or dropped metric fails here, not on someone's screen.
func TestGrafanaDashboardMetrics(t *testing.T) {
	names := dashboardMetrics(t, "grafana-dashboard.json")
	require.NotEmpty(t, names, "the dashboard queries the gateway's metrics")

	// A backend that fails its first call, so that there is a retry.
	var calls atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "warming up", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(`{"data":{"ok":true}}`))
	}))
	t.Cleanup(backend.Close)
	tg := startGateway(t, testServer+testAuth(true)+`
services:
  catalog:
    roles: [guest]
    cache: {size: 10, ttl: 1h}
    retry: {attempts: 2, initial_backoff: 1ms, max_backoff: 1ms}
    breaker: {consecutive_failures: 5}
    instances: [{name: catalog-1, url: `+backend.URL+`}]
`)
	for _, id := range []string{"c1", "c2"} { // a miss with a retry, then a hit
		a := tg.process(t, "catalog", "", `{"id":"`+id+`","user_id":"u","data":{"sku":"SKU-001"}}`)
		require.Equal(t, http.StatusOK, a.status, "body %s", a.body)
	}
	prom := string(tg.do(t, http.MethodGet, "/metrics", "", "").body)
	for _, name := range names {
		assert.Regexp(t, `(?m)^`+regexp.QuoteMeta(name)+`[{ ]`, prom, "the dashboard queries %s; /metrics does not have it", name)
	}
	t.Logf("dashboard metrics, all exposed: %v", names)
}
