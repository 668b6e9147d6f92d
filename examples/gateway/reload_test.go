package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReload swaps in a configuration with a new service, a role taken
// away and an instance removed, while a stream client watches.
func TestReload(t *testing.T) {
	before := testServer + testAuth(true) + `
services:
  payment:
    roles: [guest, client]
    instances: [{name: payment-1, demo: payment}, {name: payment-2, demo: payment}]
`
	after := testServer + testAuth(true) + `
services:
  payment:
    roles: [client]
    instances: [{name: payment-1, demo: payment}]
  inventory:
    roles: [guest]
    health_check: {interval: 10ms, timeout: 5ms, unhealthy_after: 1, healthy_after: 1}
    instances: [{name: inventory-1, demo: inventory, down: true}]
`
	tg := startGateway(t, before)
	c := tg.dialStream(t, clientToken)
	first := tg.process(t, "payment", "", payment("r1"))
	require.Equal(t, http.StatusOK, first.status, "body %s", first.body)
	require.Equal(t, http.StatusNotFound, tg.process(t, "inventory", "", `{"id":"i","user_id":"u","data":{"action":"stock","sku":"SKU-001"}}`).status)
	prom := string(tg.do(t, http.MethodGet, "/metrics", "", "").body)
	require.Contains(t, prom, `proxy_instance_healthy{instance="payment-2",service="payment"} 1`)

	cfg, err := loadConfig([]byte(after), "after.yaml")
	require.NoError(t, err)
	require.NoError(t, tg.reload(cfg))
	waitEvent(t, c, "reload", func(d json.RawMessage) bool { return strings.Contains(string(d), `"result":"success"`) })

	assert.Equal(t, http.StatusForbidden, tg.process(t, "payment", "", payment("r2")).status, "guests lost payment")
	again := tg.process(t, "payment", clientToken, payment("r1"))
	require.Equal(t, http.StatusOK, again.status, "body %s", again.body)
	var a, b struct {
		Data paymentResult `json:"data"`
	}
	require.NoError(t, json.Unmarshal(first.body, &a))
	require.NoError(t, json.Unmarshal(again.body, &b))
	assert.Equal(t, a.Data, b.Data, "the demo service keeps its payments across the reload")

	// The new service is routed, and its health checks run at once.
	waitInstance(t, tg.current().services["inventory"], "inventory-1", func(st instanceStatus) bool { return st.State == "down" })
	assert.Equal(t, http.StatusServiceUnavailable, tg.process(t, "inventory", "", `{"id":"i","user_id":"u","data":{"action":"stock","sku":"SKU-001"}}`).status)

	prom = string(tg.do(t, http.MethodGet, "/metrics", "", "").body)
	assert.NotContains(t, prom, `instance="payment-2"`, "the removed instance's series is gone")
	assert.Contains(t, prom, `gateway_config_reloads_total{result="success"} 1`)

	tg.reloadFailed(assert.AnError)
	prom = string(tg.do(t, http.MethodGet, "/metrics", "", "").body)
	assert.Contains(t, prom, `gateway_config_reloads_total{result="error"} 1`)
	assert.Equal(t, http.StatusOK, tg.process(t, "payment", clientToken, payment("r3")).status, "a failed reload leaves the configuration as it was")

	c.CloseNow()
	tg.stop()
	assert.ErrorIs(t, tg.reload(cfg), errGatewayClosed)
}

func TestRestartSections(t *testing.T) {
	base := func() *config {
		cfg, err := loadConfig([]byte(testServer+testAuth(true)+wsServices), "t.yaml")
		require.NoError(t, err)
		return cfg
	}
	cur, next := base(), base()
	next.Server.WebSocket.Roles = []string{"admin"}
	next.Auth.AnonymousRole = ""
	next.Services["payment"].Roles = []string{"admin"}
	assert.Empty(t, restartSections(cur, next), "services, auth and stream roles reload")
	next.Server.MaxBodyBytes++
	next.Log.Level = "warn"
	assert.Equal(t, []string{"server", "log"}, restartSections(cur, next))
}
