package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/proxykit/proxy/audit"
)

func ExampleVerify() {
	dir, err := os.MkdirTemp("", "audit-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.log")

	sink, err := audit.OpenFile(path)
	if err != nil {
		panic(err)
	}
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, outcome := range []string{"ok", "rate_limited", "ok"} {
		e := audit.Event{Time: start, RequestID: fmt.Sprintf("req_%d", i+1), UserID: "alice", Service: "payment", Outcome: outcome}
		if err := sink.Write(context.Background(), e); err != nil {
			panic(err)
		}
	}
	if err := sink.Close(); err != nil {
		panic(err)
	}

	log, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	head, err := audit.Verify(bytes.NewReader(log))
	fmt.Println("records:", head.Seq, "error:", err)

	// Someone turns the refused call into a successful one.
	forged := bytes.Replace(log, []byte(`"rate_limited"`), []byte(`"ok"`), 1)
	_, err = audit.Verify(bytes.NewReader(forged))
	var terr *audit.TamperError
	if errors.As(err, &terr) {
		fmt.Println("tampered at line", terr.Line)
	}

	// A crash cut the log in the middle of its last record.
	head, err = audit.Verify(bytes.NewReader(log[:len(log)-10]))
	fmt.Println("intact records:", head.Seq, "truncated:", errors.Is(err, audit.ErrTruncated))
	// Output:
	// records: 3 error: <nil>
	// tampered at line 2
	// intact records: 2 truncated: true
}

func ExampleRedactor_Fields() {
	r := audit.NewRedactor(
		[]string{"amount", "currency", "card"}, // the only members a record may carry
		[]string{"number", "cvv"},              // masked wherever they appear
	)
	data := []byte(`{"amount":100.50,"currency":"INR","card":{"number":"4111111111111111","cvv":"123","brand":"visa"},"token":"s3cr3t"}`)
	fields, err := json.Marshal(r.Fields(data))
	if err != nil {
		panic(err)
	}
	fmt.Println(string(fields))
	// Output: {"amount":100.50,"card":{"brand":"visa","cvv":"[REDACTED]","number":"[REDACTED]"},"currency":"INR"}
}

func ExampleNewSlog() {
	sink := audit.NewSlog(slog.New(slog.NewTextHandler(os.Stdout, nil)))
	defer sink.Close()
	err := sink.Write(context.Background(), audit.Event{
		Time:      time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		RequestID: "req_1",
		UserID:    "alice",
		Service:   "payment",
		Outcome:   "rate_limited",
		ErrorCode: "rate_limited",
		Duration:  250 * time.Microsecond,
	})
	fmt.Println(err)
	// Output:
	// time=2030-01-01T00:00:00.000Z level=INFO msg=audit request_id=req_1 user_id=alice service=payment outcome=rate_limited error_code=rate_limited duration=250µs
	// <nil>
}
