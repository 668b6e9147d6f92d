package tracing_test

import (
	"context"
	"fmt"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/tracing"
)

func ExampleTraced() {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	users := proxy.ServiceFunc(func(_ context.Context, req *proxy.Request) (*proxy.Response, error) {
		return &proxy.Response{RequestID: req.ID, Instance: "user-1"}, nil
	})
	svc := proxy.Chain(users, tracing.Traced(tracing.WithTracerProvider(tp)))
	_, _ = svc.Process(context.Background(), &proxy.Request{ID: "req_1", Service: "user"})

	for _, s := range rec.Ended() {
		for _, kv := range s.Attributes() {
			if kv.Key == tracing.AttrOutcome || kv.Key == tracing.AttrInstance {
				fmt.Println(s.Name(), kv.Key, kv.Value.String())
			}
		}
	}
	// Output:
	// user proxy.outcome ok
	// user proxy.instance user-1
}
