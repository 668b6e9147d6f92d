package main

import (
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzhttp"
)

// withCompression gzips the answers of clients that accept gzip when they
// are at least server.compression.min_size bytes long and of a type worth
// compressing (JSON and text, such as the stats and /metrics), and adds
// Vary: Accept-Encoding. The WebSocket stream (/ws, and any upgrade) is
// passed by untouched: the upgrade needs the connection underneath, and its
// messages are not HTTP bodies.
func (g *gateway) withCompression(next http.Handler) http.Handler {
	cc := g.cfg.Server.Compression
	if !cc.Enabled {
		return next
	}
	// Only gzip: zstd, which gzhttp would also offer, is newer than many
	// clients and proxies that sit in front of a gateway.
	wrap, err := gzhttp.NewWrapper(gzhttp.MinSize(cc.MinSize), gzhttp.EnableZstd(false))
	if err != nil {
		// The options are validated with the configuration.
		panic("gateway: compression: " + err.Error())
	}
	gz := wrap(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" || r.Header.Get("Upgrade") != "" || strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
			next.ServeHTTP(w, r)
			return
		}
		if !mayAcceptGzip(r.Header.Get("Accept-Encoding")) {
			// What gzhttp would do for this client, without its wrapper
			// around w: the gateway never sets gzhttp's No-Gzip-Compression.
			if h := w.Header(); h["Vary"] == nil {
				h["Vary"] = valueAcceptEncoding
			} else {
				h.Add("Vary", "Accept-Encoding")
			}
			next.ServeHTTP(w, r)
			return
		}
		gz.ServeHTTP(w, r)
	})
}

// mayAcceptGzip reports whether an Accept-Encoding header names gzip at all,
// in any case; gzhttp decides the rest (q-values, HEAD) when it does.
func mayAcceptGzip(ae string) bool {
	for i := 0; i+4 <= len(ae); i++ {
		if strings.EqualFold(ae[i:i+4], "gzip") {
			return true
		}
	}
	return false
}
