package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// wsSubprotocol is the subprotocol the stream speaks. Browsers, which cannot
// set an Authorization header on a WebSocket, offer it together with
// "bearer.<token>": new WebSocket(url, ["proxy.v1", "bearer." + token]).
const (
	wsSubprotocol   = "proxy.v1"
	wsBearerPrefix  = "bearer."
	wsTokenQueryKey = "token"
)

// handleWS serves GET /ws: the live event stream. The caller must send a
// token (header, token query parameter or bearer subprotocol) of an admin
// role or one of server.websocket.roles, since the stream shows every
// caller's requests (see streamCaller for the localhost demo); a browser
// page must come from the gateway's own origin or match one of
// server.websocket.allowed_origins, which websocket.Accept checks.
// The stream is one-way: a client that sends a data message is
// disconnected, and control frames are bounded by the read limit.
func (g *gateway) handleWS(w http.ResponseWriter, r *http.Request) {
	ci := info(r.Context())
	t := g.current()
	who, aerr := g.streamCaller(t, r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	ci.principal = who.Name
	wc := g.cfg.Server.WebSocket
	// A reload that takes the caller's token or role away ends the stream.
	sub, err := g.hub.subscribe(func(t *table) bool {
		_, aerr := g.streamCaller(t, r)
		return aerr == nil
	})
	if err != nil {
		writeError(w, &apiError{Status: http.StatusServiceUnavailable, Code: codeUnavailable, Message: err.Error()})
		return
	}
	defer g.hub.unsubscribe(sub)
	conn, err := websocket.Accept(&handshakeErrors{ResponseWriter: w}, r, &websocket.AcceptOptions{
		Subprotocols:   []string{wsSubprotocol},
		OriginPatterns: wc.AllowedOrigins,
	})
	if err != nil {
		ci.logger().Info("websocket handshake failed", "err", err)
		return
	}
	conn.SetReadLimit(wc.ReadLimit)
	// The request's context must not be used after the upgrade; the
	// stream lives until the client, the hub or a failed write ends it.
	// The reader answers pings and the close handshake; the stream is
	// one-way, so a data message ends it.
	readDone := make(chan error, 1)
	go func() {
		_, _, err := conn.Read(context.Background())
		if err == nil {
			err = errDataMessage
		}
		readDone <- err
	}()
	defer func() {
		_ = conn.CloseNow()
		<-readDone
	}()
	ci.logger().Info("stream client connected", "principal", who.Name)

	write := func(msg []byte) error {
		ctx, cancel := context.WithTimeout(context.Background(), wc.WriteTimeout)
		defer cancel()
		return conn.Write(ctx, websocket.MessageText, msg)
	}
	hello, _ := json.Marshal(event{Type: "hello", Time: time.Now().UTC(), Data: map[string]any{
		"principal": who.Name, "role": who.Role, "services": t.names,
	}})
	if err := write(hello); err != nil {
		return
	}
	for {
		select {
		case msg := <-sub.C:
			if err := write(msg); err != nil {
				ci.logger().Info("stream client gone", "err", err)
				return
			}
		case <-sub.Done():
			code, reason := websocket.StatusGoingAway, "gateway shutting down"
			switch {
			case errors.Is(sub.Err(), errSlowClient):
				code, reason = websocket.StatusPolicyViolation, "too slow: events were dropped"
			case errors.Is(sub.Err(), errRevoked):
				code, reason = websocket.StatusPolicyViolation, "access revoked by a configuration reload"
			}
			ci.logger().Info("stream client closed", "reason", sub.Err())
			_ = conn.Close(code, reason)
			return
		case err := <-readDone:
			readDone <- err // for the deferred wait
			if errors.Is(err, errDataMessage) {
				ci.logger().Info("stream client sent data: closing")
				_ = conn.Close(websocket.StatusPolicyViolation, "the stream is one-way")
			}
			return
		}
	}
}

// handshakeErrors answers in the gateway's JSON the errors that
// websocket.Accept writes as plain text with http.Error: 426 to a request
// that is not a WebSocket handshake, 400 to a malformed one. It keeps the
// headers Accept sets (Upgrade, Sec-WebSocket-Version), and Unwrap lets
// Accept hijack the connection underneath.
type handshakeErrors struct {
	http.ResponseWriter
	status   int  // an error status held until its message is written
	answered bool // the error has been sent; later writes are dropped
}

func (h *handshakeErrors) WriteHeader(code int) {
	if code < http.StatusBadRequest {
		h.ResponseWriter.WriteHeader(code)
		return
	}
	h.status = code
}

func (h *handshakeErrors) Write(b []byte) (int, error) {
	switch {
	case h.status == 0:
		return h.ResponseWriter.Write(b)
	case h.answered:
		return len(b), nil
	}
	h.answered = true
	code := "invalid"
	switch h.status {
	case http.StatusUpgradeRequired:
		code = codeUpgradeRequired
	case http.StatusForbidden:
		code = "forbidden"
	case http.StatusInternalServerError, http.StatusNotImplemented:
		code = codeInternal
	}
	writeError(h.ResponseWriter, &apiError{Status: h.status, Code: code, Message: clean(string(b), 200)})
	return len(b), nil
}

func (h *handshakeErrors) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// errDataMessage is why a stream client that sends a message is dropped.
var errDataMessage = errors.New("client sent a data message")

// wsToken returns a token sent as the "token" query parameter or as a
// "bearer.<token>" subprotocol.
func wsToken(r *http.Request) string {
	if t := r.URL.Query().Get(wsTokenQueryKey); t != "" {
		return t
	}
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(h, ",") {
			if t, ok := strings.CutPrefix(strings.TrimSpace(p), wsBearerPrefix); ok {
				return t
			}
		}
	}
	return ""
}
