package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultConfig(t *testing.T) {
	cfg, err := loadConfig(defaultConfig, defaultConfigName)
	require.NoError(t, err)
	assert.Equal(t, "localhost:8080", cfg.Server.Addr)
	assert.Equal(t, "guest", cfg.Auth.AnonymousRole, "the demo lets anonymous callers in")
	assert.Equal(t, int64(1<<20), cfg.Server.MaxBodyBytes)
	for _, name := range demoKinds() {
		s, ok := cfg.Services[name]
		require.True(t, ok, "service %s", name)
		assert.GreaterOrEqual(t, len(s.Instances), 2, "%s instances", name)
		assert.Contains(t, s.Roles, "guest", "%s roles", name)
		assert.NotNil(t, s.RateLimit, "%s rate_limit", name)
		assert.NotNil(t, s.Breaker, "%s breaker", name)
		assert.NotNil(t, s.Retry, "%s retry", name)
		assert.NotNil(t, s.HealthCheck, "%s health_check", name)
	}
	assert.NotNil(t, cfg.Services["user"].Cache, "one service shows the cache")
	assert.Nil(t, cfg.Redis, "the default configuration needs no Redis")
	assert.False(t, usesRedis(cfg), "no default service keeps its limit or cache in Redis")
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig([]byte(`
services:
  payment:
    roles: [client]
    cache:
    retry: {attempts: 5}
    instances:
      - {name: p1, demo: payment}
`), "t.yaml")
	require.NoError(t, err)
	s := cfg.Services["payment"]
	require.NotNil(t, s.Cache, "an empty section turns the layer on")
	assert.Equal(t, cacheConfig{Enabled: true, Size: 1000, TTL: 30 * time.Second, Store: "local"}, *s.Cache)
	assert.Equal(t, 5, s.Retry.Attempts, "a key that is set")
	assert.Equal(t, 50*time.Millisecond, s.Retry.InitialBackoff, "a key that is not keeps its default")
	assert.Nil(t, s.Breaker, "an absent section leaves the layer out")
	assert.Equal(t, "round_robin", s.Balance.Policy)
	assert.Equal(t, 5*time.Second, s.Timeout)
	assert.Empty(t, cfg.Auth.AnonymousRole, "any other configuration needs tokens")
}

func TestConfigProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		yml  string
		want []string // each a substring of one problem, in order
		// absent are substrings that no problem may contain (secrets).
		absent []string
	}{
		{
			name: "unknown key with a suggestion",
			yml: `services:
  payment:
    roles: [client]
    rate_limit: {rate: 10, burts: 5}
    instances: [{name: p1, demo: payment}]
`,
			want: []string{`line 4:28: services.payment.rate_limit.burts: unknown key "burts" (did you mean "burst"?)`},
		},
		{
			name: "secrets in an instance URL",
			yml: `services:
  payment:
    roles: [client]
    instances:
      - {name: p1, url: "http://user:pw@127.0.0.1:9000"}
      - {name: p2, url: "http://127.0.0.1:9000/?api_key=s3cret"}
`,
			want: []string{
				"services.payment.instances[0].url: want an http or https URL with a host and no credentials",
				"services.payment.instances[1].url: want an http or https URL with a host and no credentials",
			},
			absent: []string{"pw@", "s3cret"},
		},
		{
			name: "duplicate keys",
			yml: `server:
  addr: localhost:1
  addr: localhost:2
services:
  payment:
    roles: [client]
    instances: [{name: p1, demo: payment}]
  payment:
    roles: [client]
    instances: [{name: p2, demo: payment}]
`,
			want: []string{
				`line 3:3: server.addr: duplicate key "addr" (first set at line 2)`,
				`line 8:3: services.payment: duplicate key "payment" (first set at line 5)`,
			},
		},
		{
			name: "wrong types, all reported",
			yml: `server:
  max_body_bytes: lots
  read_timeout: 5
services:
  payment:
    roles: client
    instances: [{name: p1, demo: payment, error_rate: high}]
`,
			want: []string{
				"line 2:19: server.max_body_bytes: want a whole number",
				"line 3:17: server.read_timeout: want a duration",
				"line 6:12: services.payment.roles: want a list",
				"services.payment.instances[0].error_rate: want a number",
			},
		},
		{
			name: "settings that make no sense",
			yml: `services:
  payment-service:
    roles: []
    rate_limit: {rate: 0, burst: -1, key: ip}
    retry: {attempts: 0, initial_backoff: 1s, max_backoff: 10ms}
    breaker: {failure_ratio: 1.5}
    balance: {policy: fastest}
    instances:
      - {name: p1, demo: payment, url: "http://x"}
      - {name: p1, demo: wallet}
      - {name: p3}
`,
			want: []string{
				`services.payment-service: drop the "-service" suffix`,
				"services.payment-service.roles: required",
				"services.payment-service.rate_limit.rate: must be more than 0",
				"services.payment-service.rate_limit.burst: must be at least 1",
				"services.payment-service.rate_limit.key: want one of user, principal, service",
				"services.payment-service.retry.attempts: must be from 1 to 10",
				"services.payment-service.retry.max_backoff: must be at least initial_backoff",
				"services.payment-service.breaker.failure_ratio",
				"services.payment-service.balance.policy: want one of",
				"instances[0].url: set either demo or url, not both",
				`instances[1].name: instance name "p1" is already used`,
				`instances[1].demo: want one of payment, notification, user, order, inventory, got "wallet"`,
				"instances[2]: set either demo",
			},
		},
		{
			name: "tokens",
			yml: `auth:
  tokens:
    - {name: a, sha256: abc, role: admin}
    - {name: a, sha256: ` + digest("x") + `, role: Admin}
    - {name: b, sha256: ` + strings.ToUpper(digest("x")) + `, role: admin}
services:
  payment: {roles: [admin], instances: [{name: p1, demo: payment}]}
`,
			want: []string{
				"auth.tokens[0].sha256: want the SHA-256 of the token as 64 hex digits",
				`auth.tokens[1].name: token name "a" is used twice`,
				`auth.tokens[1].role: want a role name`,
				`auth.tokens[2].sha256: same digest as token "a"`,
			},
		},
		{
			name: "anchors are refused",
			yml: `base: &b {roles: [x]}
services:
  payment: *b
`,
			want: []string{`unknown key "base"`, "anchors and aliases are not supported"},
		},
		{
			name: "redis stores without a redis section",
			yml: `services:
  payment:
    roles: [client]
    rate_limit: {rate: 10, store: redis}
    cache: {store: redis}
    instances: [{name: p1, demo: payment}]
`,
			want: []string{
				"line 4:35: services.payment.rate_limit.store: store: redis needs a top-level redis section",
				"line 5:20: services.payment.cache.store: store: redis needs a top-level redis section",
			},
		},
		{
			name: "redis settings",
			yml: `redis: {password: x, password_env: "1X", db: -1, timeout: 0s}
services:
  payment:
    roles: [client]
    rate_limit: {store: redis, failure_mode: ajar, replicas: 0, max_wait: 1s}
    instances: [{name: p1, demo: payment}]
  order:
    roles: [client]
    rate_limit: {failure_mode: closed, replicas: 3}
    cache: {store: disk}
    instances: [{name: o1, demo: order}]
`,
			want: []string{
				"line 1:8: redis.address: required: the Redis server's host:port",
				"line 1:36: redis.password_env: set password or password_env, not both",
				"line 1:36: redis.password_env: want the name of an environment variable",
				"line 1:46: redis.db: must not be negative",
				"line 1:59: redis.timeout: must be more than 0s",
				"services.payment.rate_limit.failure_mode: want one of open, closed",
				"services.payment.rate_limit.replicas: must be at least 1",
				"services.payment.rate_limit.max_wait: a redis store refuses at once",
				"services.order.rate_limit.failure_mode: set only with store: redis",
				"services.order.rate_limit.replicas: set only with store: redis",
				`services.order.cache.store: want one of local, redis, got "disk"`,
			},
		},
		{
			name: "tracing exporters",
			yml: `tracing: {exporter: otlp, service_name: ""}
services:
  payment: {roles: [client], instances: [{name: p1, demo: payment}]}
`,
			want: []string{
				"tracing.endpoint: required with exporter: otlp",
				"tracing.service_name: must not be empty",
			},
		},
		{
			name: "tracing endpoint without otlp",
			yml: `tracing: {exporter: stdout, endpoint: "ftp://x"}
services:
  payment: {roles: [client], instances: [{name: p1, demo: payment}]}
`,
			want: []string{"line 1:39: tracing.endpoint: set only with exporter: otlp"},
		},
		{name: "empty file", yml: "", want: []string{"the file is empty"}},
		{name: "syntax error", yml: "services:\n  payment: [\n", want: []string{"syntax error"}},
		{name: "no services", yml: "log: {level: info}\n", want: []string{"services: at least one service is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig([]byte(tc.yml), "t.yaml")
			require.Error(t, err)
			ce, ok := err.(*configError)
			require.True(t, ok, "loadConfig error is a *configError: %v", err)
			var got []string
			for _, p := range ce.Problems {
				got = append(got, p.String())
			}
			require.Len(t, got, len(tc.want), "problems:\n%s", strings.Join(got, "\n"))
			for i, w := range tc.want {
				assert.Contains(t, got[i], w, "problem %d", i)
			}
			for _, a := range tc.absent {
				assert.NotContains(t, err.Error(), a, "a problem repeats a secret")
			}
		})
	}
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, defaultConfig, 0o600))
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(`services:
  payment:
    roles: [client]
    colour: blue
    roles: [admin]
    instances: [{name: p1, demo: payment}]
`), 0o600))

	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"check", "-config", good}, &stdout, &stderr)
	require.NoError(t, err, "stderr: %s", stderr.String())
	assert.Contains(t, stdout.String(), "good.yaml: OK (5 services, 12 instances)")

	stdout.Reset()
	stderr.Reset()
	err = run(context.Background(), []string{"check", "-config", bad}, &stdout, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "2 problem(s)")
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	require.Len(t, lines, 2, "stderr: %s", stderr.String())
	assert.Equal(t, bad+`:4:5: services.payment.colour: unknown key "colour" (known keys: roles, timeout, cache, rate_limit, bulkhead, breaker, retry, balance, health_check, instances)`, lines[0])
	assert.Equal(t, bad+`:5:5: services.payment.roles: duplicate key "roles" (first set at line 3)`, lines[1])

	// A service that asks for Redis in a file without a redis section.
	noRedis := filepath.Join(dir, "noredis.yaml")
	require.NoError(t, os.WriteFile(noRedis, []byte(`services:
  payment:
    roles: [client]
    rate_limit: {store: redis, rate: 10}
    instances: [{name: p1, demo: payment}]
`), 0o600))
	stderr.Reset()
	err = run(context.Background(), []string{"check", "-config", noRedis}, &stdout, &stderr)
	require.Error(t, err)
	assert.Equal(t, noRedis+":4:25: services.payment.rate_limit.store: store: redis needs a top-level redis section with the server's address\n", stderr.String())

	err = run(context.Background(), []string{"check", "-config", filepath.Join(dir, "missing.yaml")}, &stdout, &stderr)
	assert.Error(t, err, "a missing file")
	err = run(context.Background(), []string{"-bogus"}, &stdout, &stderr)
	assert.ErrorIs(t, err, errUsage)
	err = run(context.Background(), []string{"-addr", "nowhere"}, &stdout, &stderr)
	assert.ErrorIs(t, err, errUsage)
}

// TestRunServesAndStops drives run as main does, on the embedded default
// configuration and on a file: it serves on the -addr given, answers the
// README's two curl commands, and returns when its context ends.
// TestConfigProblemsKeepSecrets checks that a problem with a password
// does not repeat its value: problems are logged, answered by the reload
// route and published on the stream.
func TestConfigProblemsKeepSecrets(t *testing.T) {
	const secret = "8675309"
	_, err := loadConfig([]byte(`redis: {address: "localhost:6379", password: `+secret+`}
services:
  payment:
    roles: [client]
    instances: [{name: p1, demo: payment}]
`), "t.yaml")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "redis.password: want a string, got a whole number")
	assert.NotContains(t, err.Error(), secret)
}

func TestRunServesAndStops(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gw.yaml")
	require.NoError(t, os.WriteFile(file, []byte(testServer+testAuth(true)+wsServices), 0o600))
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"default", []string{"-addr", "127.0.0.1:0"}},
		{"file", []string{"-config", file, "-addr", "127.0.0.1:0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			logs := &syncBuffer{}
			done := make(chan error, 1)
			go func() { done <- run(ctx, tc.args, logs, logs) }()
			tg := &testGateway{url: "http://" + waitListening(t, logs), client: newTestClient(t)}
			assert.Equal(t, 200, tg.do(t, "GET", "/health", "", "").status)
			a := tg.do(t, "POST", "/api/v1/services/payment-service/process", "",
				`{"id":"req_123","user_id":"user_123","data":{"amount":100.50,"currency":"INR"}}`)
			assert.Equal(t, 200, a.status, "body %s", a.body)
			assert.Contains(t, string(a.body), `"amount":"100.50"`)
			tg.client.CloseIdleConnections() // as runGateway does, before stopping
			cancel()
			require.NoError(t, <-done)
			assert.Contains(t, logs.String(), `"msg":"gateway stopped"`)
		})
	}
}

func TestReadyOnlyWhileServing(t *testing.T) {
	cfg, err := loadConfig([]byte(testServer+testAuth(true)+wsServices), "t.yaml")
	require.NoError(t, err)
	g, err := newGateway(cfg, newLogger(t.Output(), "debug"))
	require.NoError(t, err)
	defer g.closeAll()
	rec := &recorder{header: http.Header{}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "/readyz", nil)
	require.NoError(t, err)
	g.handler.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusServiceUnavailable, rec.status, "before serve, /readyz = %d %s", rec.status, rec.body.String())
	assert.Contains(t, rec.body.String(), `"code":"not_ready"`)
}
