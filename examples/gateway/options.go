package main

import (
	"io"
	"os"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// An option sets what newGateway takes besides the configuration: where
// run's standard output goes, which file the reload route reads, and in
// tests, span processors that record what the gateway traces.
type option func(*gatewayOptions)

type gatewayOptions struct {
	stdout         io.Writer // the stdout span exporter's; os.Stdout by default
	spanProcessors []sdktrace.SpanProcessor
	// configFile is the file the reload route and SIGHUP read, "" for
	// the embedded default; addr is the -addr override that applies to it.
	configFile, addr string
}

// withStdout sets where exporter: stdout writes spans.
func withStdout(w io.Writer) option { return func(o *gatewayOptions) { o.stdout = w } }

// withConfigFile sets the configuration file that a reload reads again and
// the -addr override that applies to it.
func withConfigFile(path, addr string) option {
	return func(o *gatewayOptions) { o.configFile, o.addr = path, addr }
}

// withSpanProcessor adds p to the tracer provider, next to the configured
// exporter; with tracing off there is no provider and p sees nothing.
func withSpanProcessor(p sdktrace.SpanProcessor) option {
	return func(o *gatewayOptions) { o.spanProcessors = append(o.spanProcessors, p) }
}

func newGatewayOptions(opts []option) gatewayOptions {
	o := gatewayOptions{stdout: os.Stdout}
	for _, f := range opts {
		f(&o)
	}
	return o
}
