package main

import (
	"net"
	"net/http"
	"strconv"
	"strings"
)

// localDemoPrincipal is who a stream client is when the localhost demo lets
// it in without a token.
var localDemoPrincipal = principal{Name: "localhost-demo"}

// streamCaller decides who may watch the /ws event stream, by the tokens
// and roles of t, answering 401 or 403 when the caller may not. The stream shows every caller's
// requests, so, unlike the API, it never lets in a caller without a token,
// even when the configuration has an anonymous role; and the token's role
// must be an admin role or one of server.websocket.roles. The one exception
// is the localhost demo: when server.websocket.localhost_demo is on, a
// client on the gateway's own machine that names a local host (see
// localClient) and sends no token gets in as localhost-demo. A token, when
// sent, is checked as for the API, demo or not.
func (g *gateway) streamCaller(t *table, r *http.Request) (principal, *apiError) {
	wc := g.cfg.Server.WebSocket
	token := wsToken(r)
	if token == "" && r.Header.Get("Authorization") == "" {
		if wc.LocalhostDemo && localClient(r) {
			return localDemoPrincipal, nil
		}
		return principal{}, &apiError{Status: http.StatusUnauthorized, Code: "unauthenticated",
			Message: "the event stream needs a bearer token", Challenge: bearerChallenge("", "")}
	}
	who, aerr := t.auth.authenticate(r, token)
	if aerr != nil {
		return who, aerr
	}
	if !allowed(who, t.wsRoles) && !t.auth.isAdmin(who) {
		return who, &apiError{Status: http.StatusForbidden, Code: "forbidden",
			Message: "role " + strconv.Quote(who.Role) + " may not watch the event stream"}
	}
	return who, nil
}

// localClient reports whether r comes from a loopback address and names a
// local host (localhost, a name under .localhost, or a loopback address).
// Both must hold: the address keeps out other machines, and the host name
// keeps out a web page that rebinds its own domain name to 127.0.0.1 to
// reach the gateway from the user's browser (its requests carry its own
// name in Host). A gateway behind a reverse proxy on the same machine sees
// every client as local: turn the demo off there.
func localClient(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return false
	}
	return localHostName(r.Host)
}

// localHostName reports whether hostport (a Host header) names this
// machine.
func localHostName(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}
