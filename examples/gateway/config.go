package main

import (
	"time"
)

// config is the gateway's whole configuration, as read from YAML. Every
// struct has a setDefaults method; loadConfig calls it before it reads the
// keys a file sets, so a key that is absent keeps its documented default and
// a key that is present is validated as written.
type config struct {
	Server   serverConfig              `yaml:"server"`
	Auth     authConfig                `yaml:"auth"`
	Audit    auditConfig               `yaml:"audit"`
	Log      logConfig                 `yaml:"log"`
	Tracing  tracingConfig             `yaml:"tracing"`
	Redis    *redisConfig              `yaml:"redis"`
	Seed     uint64                    `yaml:"seed"`
	Services map[string]*serviceConfig `yaml:"services"`
}

func (c *config) setDefaults() {
	c.Server.setDefaults()
	c.Auth.setDefaults()
	c.Audit.setDefaults()
	c.Log.setDefaults()
	c.Tracing.setDefaults()
}

// serverConfig holds the HTTP server's settings.
type serverConfig struct {
	Addr              string        `yaml:"addr"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	// DrainDelay is how long the gateway keeps serving with /readyz at 503
	// after a shutdown signal, so that a load balancer stops sending traffic
	// before the listener closes.
	DrainDelay time.Duration `yaml:"drain_delay"`
	// DrainTimeout bounds how long in-flight calls may take to finish once
	// the listener is closed.
	DrainTimeout time.Duration     `yaml:"drain_timeout"`
	MaxBodyBytes int64             `yaml:"max_body_bytes"`
	MaxJSONDepth int               `yaml:"max_json_depth"`
	CORS         corsConfig        `yaml:"cors"`
	WebSocket    websocketConfig   `yaml:"websocket"`
	Compression  compressionConfig `yaml:"compression"`
}

func (c *serverConfig) setDefaults() {
	c.Addr = "localhost:8080"
	c.ReadHeaderTimeout = 5 * time.Second
	c.ReadTimeout = 15 * time.Second
	c.WriteTimeout = 30 * time.Second
	c.IdleTimeout = 60 * time.Second
	c.DrainDelay = 0
	c.DrainTimeout = 15 * time.Second
	c.MaxBodyBytes = 1 << 20
	c.MaxJSONDepth = 32
	c.CORS.setDefaults()
	c.WebSocket.setDefaults()
	c.Compression.setDefaults()
}

// compressionConfig sets gzip compression of the answers.
type compressionConfig struct {
	// Enabled gzips answers for clients that send Accept-Encoding: gzip.
	Enabled bool `yaml:"enabled"`
	// MinSize is the size in bytes below which an answer is sent as it
	// is: a small one gains nothing.
	MinSize int `yaml:"min_size"`
}

func (c *compressionConfig) setDefaults() {
	c.Enabled = true
	c.MinSize = 1024
}

// corsConfig says which browser origins may call the API. With no allowed
// origins, no CORS headers are sent and browsers keep to the same origin.
type corsConfig struct {
	AllowedOrigins []string      `yaml:"allowed_origins"`
	AllowedHeaders []string      `yaml:"allowed_headers"`
	MaxAge         time.Duration `yaml:"max_age"`
}

func (c *corsConfig) setDefaults() {
	c.AllowedHeaders = []string{"Authorization", "Content-Type", "X-Request-ID"}
	c.MaxAge = 10 * time.Minute
}

// websocketConfig holds the settings of the /ws event stream.
type websocketConfig struct {
	// Roles may open the stream, which shows every caller's requests.
	// When empty, only the admin roles may.
	Roles []string `yaml:"roles"`
	// AllowedOrigins lists host patterns (path.Match syntax) of the pages
	// that may open the stream besides the gateway's own origin.
	AllowedOrigins []string      `yaml:"allowed_origins"`
	ReadLimit      int64         `yaml:"read_limit"`
	ClientBuffer   int           `yaml:"client_buffer"`
	MaxClients     int           `yaml:"max_clients"`
	WriteTimeout   time.Duration `yaml:"write_timeout"`
	StatsInterval  time.Duration `yaml:"stats_interval"`
	// LocalhostDemo lets clients on this machine open the stream without
	// a token (see streamCaller), so that the dashboard opens at once.
	LocalhostDemo bool `yaml:"localhost_demo"`
}

func (c *websocketConfig) setDefaults() {
	c.ReadLimit = 4096
	c.ClientBuffer = 64
	c.MaxClients = 100
	c.WriteTimeout = 5 * time.Second
	c.StatsInterval = time.Second
}

// authConfig says who may call the gateway.
type authConfig struct {
	// AnonymousRole, when set, is the role of callers that send no token.
	// When empty, every API call needs a token.
	AnonymousRole string        `yaml:"anonymous_role"`
	Tokens        []tokenConfig `yaml:"tokens"`
	// AdminRoles may stage faults on demo instances through the admin route.
	AdminRoles []string `yaml:"admin_roles"`
}

func (c *authConfig) setDefaults() {}

// tokenConfig is one bearer token: its SHA-256 digest, never the token.
type tokenConfig struct {
	Name   string `yaml:"name"`
	SHA256 string `yaml:"sha256"`
	Role   string `yaml:"role"`
}

// auditConfig says where audit events go.
type auditConfig struct {
	// Sink is "log" (a JSON line per call on the gateway's log), "file"
	// (a tamper-evident hash-chained file at File) or "off".
	Sink string `yaml:"sink"`
	File string `yaml:"file"`
	// FailClosed refuses a call whose audit event cannot be written;
	// otherwise the call is served and the loss counted.
	FailClosed bool `yaml:"fail_closed"`
	// Fields lists the top-level fields of data that a record keeps (such
	// as "amount"); no other part of the data reaches the log.
	Fields []string `yaml:"fields"`
	// Redact lists field names (such as "card_number") whose values are
	// masked wherever they appear inside the kept fields.
	Redact        []string      `yaml:"redact"`
	FlushInterval time.Duration `yaml:"flush_interval"`
	// Timeout bounds how long a call waits for its record to be written.
	Timeout time.Duration `yaml:"timeout"`
}

func (c *auditConfig) setDefaults() {
	c.Sink = "log"
	c.FlushInterval = time.Second
	c.Timeout = time.Second
}

// logConfig sets the gateway's own log.
type logConfig struct {
	Level string `yaml:"level"`
}

func (c *logConfig) setDefaults() { c.Level = "info" }

// tracingConfig sets OpenTelemetry tracing: a span per call, continued from
// the caller's traceparent header and passed on to remote instances.
type tracingConfig struct {
	// Exporter is "off", "log" (each span a JSON line on the gateway's
	// log), "stdout" (the OpenTelemetry SDK's JSON on standard output) or
	// "otlp" (OTLP over HTTP to Endpoint).
	Exporter string `yaml:"exporter"`
	// Endpoint is the OTLP/HTTP collector's URL, such as
	// http://otel-collector:4318 (the path /v1/traces is added when the
	// URL has none); only for exporter: otlp.
	Endpoint string `yaml:"endpoint"`
	// ServiceName is the service.name of the spans' resource.
	ServiceName string `yaml:"service_name"`
	// SampleRatio is the share of new traces recorded, from 0 to 1; a
	// trace the caller sampled is always recorded.
	SampleRatio float64 `yaml:"sample_ratio"`
}

func (c *tracingConfig) setDefaults() {
	c.Exporter = "off"
	c.ServiceName = "proxy-gateway"
	c.SampleRatio = 1
}

// redisConfig connects the gateway to a Redis server that its replicas
// share, for the rate limits and caches of the services that ask for it
// (rate_limit.store and cache.store: redis). Without this section the
// gateway needs no Redis: every limit and cache is in memory.
type redisConfig struct {
	// Address is the server's host:port.
	Address string `yaml:"address"`
	// Password, or the environment variable PasswordEnv names, is sent
	// with AUTH; set at most one.
	Password    string `yaml:"password"`
	PasswordEnv string `yaml:"password_env"`
	DB          int    `yaml:"db"`
	// Timeout bounds every Redis call: a call that takes longer counts as
	// Redis being down (see rate_limit.failure_mode; a cache lookup is a
	// miss).
	Timeout time.Duration `yaml:"timeout"`
	// RetryInterval is how long a rate limiter leaves Redis alone after a
	// failed call before one call tries it again.
	RetryInterval time.Duration `yaml:"retry_interval"`
	// Prefix begins every key the gateway writes, so that deployments can
	// share a server.
	Prefix string `yaml:"prefix"`
}

func (c *redisConfig) setDefaults() {
	c.Timeout = 50 * time.Millisecond
	c.RetryInterval = 200 * time.Millisecond
	c.Prefix = "proxy:"
}

// serviceConfig is one service: who may call it, the stack in front of it,
// and its instances. A section that is absent (cache, rate_limit, breaker,
// retry, health_check) leaves that layer out; a section that is present,
// even empty, puts it in with the defaults.
type serviceConfig struct {
	Roles       []string           `yaml:"roles"`
	Timeout     time.Duration      `yaml:"timeout"`
	Cache       *cacheConfig       `yaml:"cache"`
	RateLimit   *rateLimitConfig   `yaml:"rate_limit"`
	Bulkhead    *bulkheadConfig    `yaml:"bulkhead"`
	Breaker     *breakerConfig     `yaml:"breaker"`
	Retry       *retryConfig       `yaml:"retry"`
	Balance     balanceConfig      `yaml:"balance"`
	HealthCheck *healthCheckConfig `yaml:"health_check"`
	Instances   []*instanceConfig  `yaml:"instances"`
}

func (c *serviceConfig) setDefaults() {
	c.Timeout = 5 * time.Second
	c.Balance.setDefaults()
}

// cacheConfig sets the response cache.
type cacheConfig struct {
	Enabled bool          `yaml:"enabled"`
	Size    int           `yaml:"size"`
	TTL     time.Duration `yaml:"ttl"`
	// Actions, when set, limits the cache to requests whose data.action
	// is one of them (such as "get"), so that writes always reach the
	// service. When empty, every request is cached.
	Actions []string `yaml:"actions"`
	// StaleWhileRevalidate serves an entry expired less than this long ago
	// once more while one refresh runs; StaleIfError serves it when the
	// refresh fails. Zero turns each off.
	StaleWhileRevalidate time.Duration `yaml:"stale_while_revalidate"`
	StaleIfError         time.Duration `yaml:"stale_if_error"`
	// Store is "local" (in memory) or "redis" (in memory, then in the
	// Redis server that the gateway's replicas share, so that a response
	// cached by one is a hit on the others).
	Store string `yaml:"store"`
}

func (c *cacheConfig) setDefaults() {
	c.Store = "local"
	c.Enabled = true
	c.Size = 1000
	c.TTL = 30 * time.Second
}

// rateLimitConfig sets a token bucket per key.
type rateLimitConfig struct {
	// Rate is the sustained rate in requests per second.
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
	// Key is what a bucket belongs to: "user" (the envelope's user_id),
	// "principal" (the authenticated caller) or "service" (one bucket for
	// everyone).
	Key     string `yaml:"key"`
	MaxKeys int    `yaml:"max_keys"`
	// MaxWait lets a call over the rate wait up to this long for its
	// token instead of being refused at once (local store only).
	MaxWait time.Duration `yaml:"max_wait"`
	// Store is "local" (a bucket per key in this process) or "redis" (one
	// limit per key shared by every replica through Redis).
	Store string `yaml:"store"`
	// FailureMode says what a redis store does while Redis cannot be
	// reached: "open" decides locally at rate/replicas, "closed" refuses
	// every call (429).
	FailureMode string `yaml:"failure_mode"`
	// Replicas is how many gateways share the limit, for "open".
	Replicas int `yaml:"replicas"`
}

func (c *rateLimitConfig) setDefaults() {
	c.Store = "local"
	c.FailureMode = "open"
	c.Replicas = 1
	c.Rate = 100
	c.Burst = 20
	c.Key = "user"
	c.MaxKeys = 10000
}

// bulkheadConfig bounds how many calls to the service run at once.
type bulkheadConfig struct {
	Limit int `yaml:"limit"`
	// MaxWait is how long a call over the limit may wait for a place
	// before it is shed (503 overloaded).
	MaxWait time.Duration `yaml:"max_wait"`
}

func (c *bulkheadConfig) setDefaults() {
	c.Limit = 64
	c.MaxWait = 50 * time.Millisecond
}

// breakerConfig sets the circuit breaker.
type breakerConfig struct {
	// ConsecutiveFailures trips the breaker after that many failures in a
	// row.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// FailureRatio, when above zero, also trips it when at least that
	// fraction of at least MinRequests calls in the current window failed.
	FailureRatio float64       `yaml:"failure_ratio"`
	MinRequests  int           `yaml:"min_requests"`
	Window       time.Duration `yaml:"window"`
	// OpenTimeout is how long the breaker stays open before it lets probes
	// through.
	OpenTimeout    time.Duration `yaml:"open_timeout"`
	HalfOpenProbes int           `yaml:"half_open_probes"`
}

func (c *breakerConfig) setDefaults() {
	c.ConsecutiveFailures = 5
	c.MinRequests = 20
	c.Window = 60 * time.Second
	c.OpenTimeout = 10 * time.Second
	c.HalfOpenProbes = 1
}

// retryConfig sets retries of transient failures.
type retryConfig struct {
	Attempts       int           `yaml:"attempts"`
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
	// Budget is the fraction of calls that may be retried (0.1: at most one
	// retry per ten calls), so a failing backend does not see its load
	// multiplied.
	Budget float64 `yaml:"budget"`
	// BudgetReserve is the retries a second the budget allows however few
	// calls there are.
	BudgetReserve float64 `yaml:"budget_reserve"`
}

func (c *retryConfig) setDefaults() {
	c.Attempts = 3
	c.InitialBackoff = 50 * time.Millisecond
	c.MaxBackoff = time.Second
	c.Budget = 0.2
	c.BudgetReserve = 10
}

// balanceConfig sets how a call picks an instance and when a failing
// instance is taken out of rotation (passive ejection).
type balanceConfig struct {
	// Policy is round_robin, random, least_connections or p2c.
	Policy string `yaml:"policy"`
	// EjectAfter ejects an instance after that many consecutive failures.
	EjectAfter int           `yaml:"eject_after"`
	EjectTime  time.Duration `yaml:"eject_time"`
	// MaxEjectedPercent caps the share of instances ejected at once.
	MaxEjectedPercent int `yaml:"max_ejected_percent"`
}

func (c *balanceConfig) setDefaults() {
	c.Policy = "round_robin"
	c.EjectAfter = 5
	c.EjectTime = 30 * time.Second
	c.MaxEjectedPercent = 50
}

// healthCheckConfig sets active health checks of the instances.
type healthCheckConfig struct {
	Interval       time.Duration `yaml:"interval"`
	Timeout        time.Duration `yaml:"timeout"`
	UnhealthyAfter int           `yaml:"unhealthy_after"`
	HealthyAfter   int           `yaml:"healthy_after"`
}

func (c *healthCheckConfig) setDefaults() {
	c.Interval = 5 * time.Second
	c.Timeout = time.Second
	c.UnhealthyAfter = 2
	c.HealthyAfter = 2
}

// instanceConfig is one instance of a service: an in-process demo backend
// (Demo names its kind) or a remote HTTP backend (URL).
type instanceConfig struct {
	Name string `yaml:"name"`
	// Demo is the kind of in-process backend: payment, notification, user,
	// order or inventory.
	Demo string `yaml:"demo"`
	// URL is a remote backend's process endpoint; the envelope is POSTed
	// to it as JSON.
	URL string `yaml:"url"`
	// HealthURL, for a remote backend, is checked with GET; 2xx is healthy.
	HealthURL string `yaml:"health_url"`
	// Latency, Jitter and ErrorRate stage slowness and failures on a demo
	// instance: each call waits Latency plus up to Jitter, then fails with
	// probability ErrorRate.
	Latency   time.Duration `yaml:"latency"`
	Jitter    time.Duration `yaml:"jitter"`
	ErrorRate float64       `yaml:"error_rate"`
	// Down makes a demo instance fail its health checks from the start.
	Down bool `yaml:"down"`
}

func (c *instanceConfig) setDefaults() {}
