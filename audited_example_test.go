package proxy_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/proxykit/proxy"
	"github.com/proxykit/proxy/audit"
)

func ExampleAudited() {
	// Log events as JSON lines, leaving out the time and duration, which
	// change from run to run. A real program would use audit.OpenFile.
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == "duration") {
				return slog.Attr{}
			}
			return a
		},
	}))
	sink := audit.NewSlog(logger)
	defer sink.Close()

	// A layer inside Audited that refuses Bob: the refusal is recorded too.
	refuseBob := func(next proxy.Service) proxy.Service {
		return proxy.ServiceFunc(func(ctx context.Context, req *proxy.Request) (*proxy.Response, error) {
			if req.UserID == "bob" {
				return nil, &proxy.RateLimitError{Key: req.UserID}
			}
			return next.Process(ctx, req)
		})
	}
	svc := proxy.Chain(echo,
		proxy.Audited(sink, proxy.WithAuditFields("amount")),
		refuseBob,
	)

	alice := aliceReq.Clone()
	alice.Metadata = map[string]string{
		proxy.MetaPrincipal: "alice@example.com",
		proxy.MetaRole:      "customer",
		"authorization":     "Bearer s3cr3t", // never recorded
	}
	bob := aliceReq.Clone()
	bob.ID, bob.UserID = "req_2", "bob"

	_, err := svc.Process(ctx, alice)
	fmt.Println(err)
	_, err = svc.Process(ctx, bob)
	fmt.Println(err)
	// Output:
	// {"level":"INFO","msg":"audit","request_id":"req_1","user_id":"alice","principal":"alice@example.com","role":"customer","service":"echo","outcome":"ok","fields":{"amount":100.5}}
	// <nil>
	// {"level":"INFO","msg":"audit","request_id":"req_2","user_id":"bob","service":"echo","outcome":"rate_limited","error_code":"rate_limited","fields":{"amount":100.5}}
	// proxy: rate limited: key "bob"
}
