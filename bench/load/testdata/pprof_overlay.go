// This file is not part of bench/load: the load test adds it to the example
// gateway with go build -overlay when it profiles the gateway, so that the
// gateway's sources stay as they are. It serves net/http/pprof on the
// address in PROXY_LOAD_PPROF, on its own listener, apart from the
// gateway's routes.

package main

import (
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	addr := os.Getenv("PROXY_LOAD_PPROF")
	if addr == "" {
		return
	}
	go func() {
		fmt.Fprintln(os.Stderr, "pprof:", http.ListenAndServe(addr, nil))
	}()
}
