package main

import (
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	roleRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	headerRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
	// tokenNameRE is what a caller's name must look like: it goes into
	// request metadata, logs and audit records.
	tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9._@:-]{1,64}$`)
	fieldRE     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	envNameRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
)

var (
	policies   = []string{"round_robin", "random", "least_connections", "p2c"}
	limitKeys  = []string{"user", "principal", "service"}
	auditSinks = []string{"log", "file", "off"}
	logLevels  = []string{"debug", "info", "warn", "error"}
	// tracingExporters are the values of tracing.exporter.
	tracingExporters = []string{"off", "log", "stdout", "otlp"}
	// stores are the values of rate_limit.store and cache.store.
	stores       = []string{"local", "redis"}
	failureModes = []string{"open", "closed"}
)

// validate checks the settings that the YAML decoder cannot: ranges,
// required keys, names, and settings that contradict each other.
func (c *config) validate(v *validator) {
	c.Server.validate(v, "server")
	c.Auth.validate(v, "auth")
	c.Audit.validate(v, "audit")
	if !slices.Contains(tracingExporters, c.Tracing.Exporter) {
		v.errorf("tracing.exporter", "want one of %s, got %q", strings.Join(tracingExporters, ", "), c.Tracing.Exporter)
	}
	between(v, "tracing.sample_ratio", c.Tracing.SampleRatio, 0, 1)
	switch {
	case c.Tracing.Exporter == "otlp" && c.Tracing.Endpoint == "":
		v.errorf("tracing.endpoint", "required with exporter: otlp: the collector's OTLP/HTTP URL, such as http://otel-collector:4318")
	case c.Tracing.Exporter == "otlp" && !validBackendURL(c.Tracing.Endpoint):
		v.errorf("tracing.endpoint", "want an http or https URL with a host, got %q", c.Tracing.Endpoint)
	case c.Tracing.Exporter != "otlp" && c.Tracing.Endpoint != "":
		v.errorf("tracing.endpoint", "set only with exporter: otlp")
	}
	if c.Tracing.ServiceName == "" {
		v.errorf("tracing.service_name", "must not be empty")
	}
	if c.Redis != nil {
		c.Redis.validate(v, "redis")
	}
	if !slices.Contains(logLevels, c.Log.Level) {
		v.errorf("log.level", "want one of %s, got %q", strings.Join(logLevels, ", "), c.Log.Level)
	}
	if len(c.Services) == 0 {
		v.errorf("services", "at least one service is required")
	}
	instances := map[string]string{}
	for _, name := range sortedKeys(c.Services) {
		p := "services." + name
		switch {
		case strings.HasSuffix(name, serviceSuffix):
			v.errorf(p, "drop the %q suffix from the name: URLs accept the name with or without it", serviceSuffix)
		case !nameRE.MatchString(name):
			v.errorf(p, "service names are lower-case letters, digits and '-', starting with a letter, at most 63 characters")
		}
		c.Services[name].validate(v, p, instances)
		c.Services[name].validateStores(v, p, c.Redis != nil)
	}
}

func (c *redisConfig) validate(v *validator, p string) {
	if _, port, err := net.SplitHostPort(c.Address); err != nil || c.Address == "" {
		v.errorf(p+".address", "required: the Redis server's host:port, such as localhost:6379; got %q", c.Address)
	} else if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		v.errorf(p+".address", "port %q is not a number from 1 to 65535", port)
	}
	if c.Password != "" && c.PasswordEnv != "" {
		v.errorf(p+".password_env", "set password or password_env, not both")
	}
	if c.PasswordEnv != "" && !envNameRE.MatchString(c.PasswordEnv) {
		v.errorf(p+".password_env", "want the name of an environment variable such as REDIS_PASSWORD, got %q", c.PasswordEnv)
	}
	if c.DB < 0 {
		v.errorf(p+".db", "must not be negative, got %d", c.DB)
	}
	positive(v, p+".timeout", c.Timeout)
	positive(v, p+".retry_interval", c.RetryInterval)
}

// validateStores checks the rate_limit and cache store settings of a
// service; haveRedis reports whether the file has a redis section.
func (c *serviceConfig) validateStores(v *validator, p string, haveRedis bool) {
	needRedis := func(q string) {
		if !haveRedis {
			v.errorf(q, "store: redis needs a top-level redis section with the server's address")
		}
	}
	if rl := c.RateLimit; rl != nil {
		q := p + ".rate_limit"
		switch rl.Store {
		case "redis":
			needRedis(q + ".store")
			if !slices.Contains(failureModes, rl.FailureMode) {
				v.errorf(q+".failure_mode", "want one of %s, got %q", strings.Join(failureModes, ", "), rl.FailureMode)
			}
			atLeast(v, q+".replicas", int64(rl.Replicas), 1)
			if rl.MaxWait > 0 {
				v.errorf(q+".max_wait", "a redis store refuses at once; max_wait is for store: local")
			}
		case "local":
			for _, k := range []string{"failure_mode", "replicas"} {
				if v.isSet(q + "." + k) {
					v.errorf(q+"."+k, "set only with store: redis")
				}
			}
		default:
			v.errorf(q+".store", "want one of %s, got %q", strings.Join(stores, ", "), rl.Store)
		}
	}
	if cc := c.Cache; cc != nil {
		switch cc.Store {
		case "redis":
			needRedis(p + ".cache.store")
		case "local":
		default:
			v.errorf(p+".cache.store", "want one of %s, got %q", strings.Join(stores, ", "), cc.Store)
		}
	}
}

func positive(v *validator, p string, d time.Duration) {
	if d <= 0 {
		v.errorf(p, "must be more than 0s, got %v", d)
	}
}

func atLeast(v *validator, p string, n, lo int64) {
	if n < lo {
		v.errorf(p, "must be at least %d, got %d", lo, n)
	}
}

func between(v *validator, p string, f, lo, hi float64) {
	if math.IsNaN(f) || f < lo || f > hi {
		v.errorf(p, "must be between %g and %g, got %g", lo, hi, f)
	}
}

func (c *serverConfig) validate(v *validator, p string) {
	if _, port, err := net.SplitHostPort(c.Addr); err != nil {
		v.errorf(p+".addr", "want host:port such as localhost:8080, got %q", c.Addr)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.errorf(p+".addr", "port %q is not a number from 0 to 65535", port)
	}
	positive(v, p+".read_header_timeout", c.ReadHeaderTimeout)
	positive(v, p+".read_timeout", c.ReadTimeout)
	positive(v, p+".write_timeout", c.WriteTimeout)
	positive(v, p+".idle_timeout", c.IdleTimeout)
	positive(v, p+".drain_timeout", c.DrainTimeout)
	if c.DrainDelay < 0 {
		v.errorf(p+".drain_delay", "must not be negative, got %v", c.DrainDelay)
	}
	if c.MaxBodyBytes < 1 || c.MaxBodyBytes > 64<<20 {
		v.errorf(p+".max_body_bytes", "must be from 1 to %d (64 MiB), got %d", 64<<20, c.MaxBodyBytes)
	}
	if c.MaxJSONDepth < 2 || c.MaxJSONDepth > 1000 {
		v.errorf(p+".max_json_depth", "must be from 2 to 1000, got %d", c.MaxJSONDepth)
	}
	for i, o := range c.CORS.AllowedOrigins {
		if o != "*" && !validOrigin(o) {
			v.errorf(fmt.Sprintf("%s.cors.allowed_origins[%d]", p, i), "want \"*\" or an origin such as https://app.example.com (scheme and host, no path), got %q", o)
		}
	}
	for i, h := range c.CORS.AllowedHeaders {
		if !headerRE.MatchString(h) {
			v.errorf(fmt.Sprintf("%s.cors.allowed_headers[%d]", p, i), "not a header name: %q", h)
		}
	}
	if c.CORS.MaxAge < 0 {
		v.errorf(p+".cors.max_age", "must not be negative, got %v", c.CORS.MaxAge)
	}
	if c.Compression.MinSize < 0 || c.Compression.MinSize > 64<<20 {
		v.errorf(p+".compression.min_size", "must be from 0 to %d bytes, got %d", 64<<20, c.Compression.MinSize)
	}
	ws := p + ".websocket"
	for i, o := range c.WebSocket.AllowedOrigins {
		q := fmt.Sprintf("%s.allowed_origins[%d]", ws, i)
		if o == "*" || o == "" {
			v.errorf(q, "list the hosts that may connect (such as app.example.com or *.example.com); a bare \"*\" would let any web page read the stream")
		} else if _, err := path.Match(o, ""); err != nil {
			v.errorf(q, "bad host pattern %q: %v", o, err)
		}
	}
	for i, r := range c.WebSocket.Roles {
		if !roleRE.MatchString(r) {
			v.errorf(fmt.Sprintf("%s.roles[%d]", ws, i), "not a role name: %q", r)
		}
	}
	atLeast(v, ws+".read_limit", c.WebSocket.ReadLimit, 128)
	atLeast(v, ws+".client_buffer", int64(c.WebSocket.ClientBuffer), 1)
	atLeast(v, ws+".max_clients", int64(c.WebSocket.MaxClients), 1)
	positive(v, ws+".write_timeout", c.WebSocket.WriteTimeout)
	if c.WebSocket.StatsInterval < 10*time.Millisecond {
		v.errorf(ws+".stats_interval", "must be at least 10ms, got %v", c.WebSocket.StatsInterval)
	}
}

func validOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil
}

func (c *authConfig) validate(v *validator, p string) {
	if c.AnonymousRole != "" && !roleRE.MatchString(c.AnonymousRole) {
		v.errorf(p+".anonymous_role", "role names are lower-case letters, digits, '_' and '-', at most 32 characters; got %q", c.AnonymousRole)
	}
	names := map[string]bool{}
	digests := map[string]string{}
	for i, t := range c.Tokens {
		q := fmt.Sprintf("%s.tokens[%d]", p, i)
		switch {
		case !tokenNameRE.MatchString(t.Name):
			v.errorf(q+".name", "required: a name for the caller, used in logs and audit records: 1 to 64 letters, digits and . _ @ : -; got %q", t.Name)
		case names[t.Name]:
			v.errorf(q+".name", "token name %q is used twice", t.Name)
		}
		names[t.Name] = true
		digest := strings.ToLower(t.SHA256)
		if b, err := hex.DecodeString(digest); err != nil || len(b) != 32 {
			v.errorf(q+".sha256", "want the SHA-256 of the token as 64 hex digits (printf %%s TOKEN | sha256sum), got %q", t.SHA256)
		} else if other, dup := digests[digest]; dup {
			v.errorf(q+".sha256", "same digest as token %q", other)
		} else {
			digests[digest] = t.Name
		}
		if !roleRE.MatchString(t.Role) {
			v.errorf(q+".role", "want a role name (lower-case letters, digits, '_', '-'), got %q", t.Role)
		}
	}
	for i, r := range c.AdminRoles {
		if !roleRE.MatchString(r) {
			v.errorf(fmt.Sprintf("%s.admin_roles[%d]", p, i), "not a role name: %q", r)
		}
	}
}

func (c *auditConfig) validate(v *validator, p string) {
	if !slices.Contains(auditSinks, c.Sink) {
		v.errorf(p+".sink", "want one of %s, got %q", strings.Join(auditSinks, ", "), c.Sink)
	}
	if c.Sink == "file" && c.File == "" {
		v.errorf(p+".file", "required when sink is \"file\": the path of the audit log")
	}
	if c.Sink != "file" && c.File != "" {
		v.errorf(p+".file", "set only with sink: file")
	}
	positive(v, p+".flush_interval", c.FlushInterval)
	positive(v, p+".timeout", c.Timeout)
	for _, list := range []struct {
		key   string
		names []string
	}{{"fields", c.Fields}, {"redact", c.Redact}} {
		for i, f := range list.names {
			if !fieldRE.MatchString(f) {
				v.errorf(fmt.Sprintf("%s.%s[%d]", p, list.key, i), "want a field name of data such as amount or card_number, got %q", f)
			}
		}
	}
}

func (c *serviceConfig) validate(v *validator, p string, instances map[string]string) {
	if len(c.Roles) == 0 {
		v.errorf(p+".roles", "required: the roles that may call this service")
	}
	for i, r := range c.Roles {
		if !roleRE.MatchString(r) {
			v.errorf(fmt.Sprintf("%s.roles[%d]", p, i), "not a role name: %q", r)
		}
	}
	positive(v, p+".timeout", c.Timeout)
	if cc := c.Cache; cc != nil {
		atLeast(v, p+".cache.size", int64(cc.Size), 1)
		positive(v, p+".cache.ttl", cc.TTL)
		if cc.StaleWhileRevalidate < 0 {
			v.errorf(p+".cache.stale_while_revalidate", "must not be negative, got %v", cc.StaleWhileRevalidate)
		}
		if cc.StaleIfError < 0 {
			v.errorf(p+".cache.stale_if_error", "must not be negative, got %v", cc.StaleIfError)
		}
		for i, a := range cc.Actions {
			if !fieldRE.MatchString(a) {
				v.errorf(fmt.Sprintf("%s.cache.actions[%d]", p, i), "want an action name such as get, got %q", a)
			}
		}
	}
	if rl := c.RateLimit; rl != nil {
		if math.IsInf(rl.Rate, 0) || math.IsNaN(rl.Rate) || rl.Rate <= 0 {
			v.errorf(p+".rate_limit.rate", "must be more than 0 requests per second, got %g", rl.Rate)
		}
		atLeast(v, p+".rate_limit.burst", int64(rl.Burst), 1)
		if !slices.Contains(limitKeys, rl.Key) {
			v.errorf(p+".rate_limit.key", "want one of %s, got %q", strings.Join(limitKeys, ", "), rl.Key)
		}
		atLeast(v, p+".rate_limit.max_keys", int64(rl.MaxKeys), 1)
		if rl.MaxWait < 0 {
			v.errorf(p+".rate_limit.max_wait", "must not be negative, got %v", rl.MaxWait)
		}
	}
	if bh := c.Bulkhead; bh != nil {
		atLeast(v, p+".bulkhead.limit", int64(bh.Limit), 1)
		if bh.MaxWait < 0 {
			v.errorf(p+".bulkhead.max_wait", "must not be negative, got %v", bh.MaxWait)
		}
	}
	if b := c.Breaker; b != nil {
		atLeast(v, p+".breaker.consecutive_failures", int64(b.ConsecutiveFailures), 1)
		between(v, p+".breaker.failure_ratio", b.FailureRatio, 0, 1)
		atLeast(v, p+".breaker.min_requests", int64(b.MinRequests), 1)
		positive(v, p+".breaker.window", b.Window)
		positive(v, p+".breaker.open_timeout", b.OpenTimeout)
		atLeast(v, p+".breaker.half_open_probes", int64(b.HalfOpenProbes), 1)
	}
	if r := c.Retry; r != nil {
		if r.Attempts < 1 || r.Attempts > 10 {
			v.errorf(p+".retry.attempts", "must be from 1 to 10 (1 means no retries), got %d", r.Attempts)
		}
		positive(v, p+".retry.initial_backoff", r.InitialBackoff)
		if r.MaxBackoff < r.InitialBackoff {
			v.errorf(p+".retry.max_backoff", "must be at least initial_backoff (%v), got %v", r.InitialBackoff, r.MaxBackoff)
		}
		between(v, p+".retry.budget", r.Budget, 0, 1)
		between(v, p+".retry.budget_reserve", r.BudgetReserve, 0, 1000)
		if r.Budget == 0 && r.BudgetReserve == 0 {
			v.errorf(p+".retry", "budget and budget_reserve are both 0, which allows no retry; set attempts: 1 instead")
		}
	}
	b := &c.Balance
	if !slices.Contains(policies, b.Policy) {
		v.errorf(p+".balance.policy", "want one of %s, got %q", strings.Join(policies, ", "), b.Policy)
	}
	atLeast(v, p+".balance.eject_after", int64(b.EjectAfter), 1)
	positive(v, p+".balance.eject_time", b.EjectTime)
	if b.MaxEjectedPercent < 0 || b.MaxEjectedPercent > 100 {
		v.errorf(p+".balance.max_ejected_percent", "must be from 0 to 100, got %d", b.MaxEjectedPercent)
	}
	if h := c.HealthCheck; h != nil {
		positive(v, p+".health_check.interval", h.Interval)
		positive(v, p+".health_check.timeout", h.Timeout)
		if h.Timeout > h.Interval {
			v.errorf(p+".health_check.timeout", "must not exceed interval (%v), got %v", h.Interval, h.Timeout)
		}
		atLeast(v, p+".health_check.unhealthy_after", int64(h.UnhealthyAfter), 1)
		atLeast(v, p+".health_check.healthy_after", int64(h.HealthyAfter), 1)
	}
	if len(c.Instances) == 0 {
		v.errorf(p+".instances", "at least one instance is required")
	}
	kind := ""
	for i, in := range c.Instances {
		q := fmt.Sprintf("%s.instances[%d]", p, i)
		in.validate(v, q)
		if in.Name != "" {
			if other, dup := instances[in.Name]; dup {
				v.errorf(q+".name", "instance name %q is already used at %s", in.Name, other)
			}
			instances[in.Name] = q
		}
		if slices.Contains(demoKinds(), in.Demo) {
			if kind != "" && in.Demo != kind {
				v.errorf(q+".demo", "all demo instances of a service are of one kind; this one is %q, an earlier one %q", in.Demo, kind)
			}
			kind = in.Demo
		}
	}
}

func (c *instanceConfig) validate(v *validator, q string) {
	if !nameRE.MatchString(c.Name) {
		v.errorf(q+".name", "required: lower-case letters, digits and '-', starting with a letter, at most 63 characters; got %q", c.Name)
	}
	switch {
	case c.Demo == "" && c.URL == "":
		v.errorf(q, "set either demo (an in-process backend: %s) or url (a remote backend)", strings.Join(demoKinds(), ", "))
	case c.Demo != "" && c.URL != "":
		v.errorf(q+".url", "set either demo or url, not both")
	case c.Demo != "":
		if !slices.Contains(demoKinds(), c.Demo) {
			v.errorf(q+".demo", "want one of %s, got %q", strings.Join(demoKinds(), ", "), c.Demo)
		}
		if c.HealthURL != "" {
			v.errorf(q+".health_url", "only a remote instance (url) has a health_url")
		}
	default:
		if !validBackendURL(c.URL) {
			v.errorf(q+".url", "want an http or https URL with a host and no credentials, query or fragment (it is shown on the health and stats pages); the value is not repeated here, in case it holds a secret")
		}
		if c.HealthURL != "" && !validBackendURL(c.HealthURL) {
			v.errorf(q+".health_url", "want an http or https URL with a host and no credentials, query or fragment; the value is not repeated here, in case it holds a secret")
		}
		if c.Latency != 0 || c.Jitter != 0 || c.ErrorRate != 0 || c.Down {
			v.errorf(q, "latency, jitter, error_rate and down stage faults on demo instances only")
		}
	}
	if c.Latency < 0 {
		v.errorf(q+".latency", "must not be negative, got %v", c.Latency)
	}
	if c.Jitter < 0 {
		v.errorf(q+".jitter", "must not be negative, got %v", c.Jitter)
	}
	between(v, q+".error_rate", c.ErrorRate, 0, 1)
}

// validBackendURL reports whether s is an http or https URL with a host and
// nothing secret in it: no user info and no query, since instance URLs are
// shown on the health and stats pages and in health-check events. A backend
// that needs credentials gets them another way than in its URL.
func validBackendURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.User == nil && u.RawQuery == "" && !u.ForceQuery && u.Fragment == ""
}
