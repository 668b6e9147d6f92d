package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
)

// A principal is an authenticated caller.
type principal struct {
	Name string
	Role string
}

// anonymousName is the principal name of a caller without a token, when the
// configuration lets such callers in.
const anonymousName = "anonymous"

// An authenticator checks bearer tokens against the SHA-256 digests in the
// configuration. It never holds a token, only digests, and compares every
// digest in constant time. It is safe for concurrent use.
type authenticator struct {
	tokens        []tokenDigest
	anonymousRole string
	adminRoles    []string
}

type tokenDigest struct {
	digest [sha256.Size]byte
	who    principal
}

func newAuthenticator(c authConfig) *authenticator {
	a := &authenticator{anonymousRole: c.AnonymousRole, adminRoles: c.AdminRoles}
	for _, t := range c.Tokens {
		var td tokenDigest
		// validate has checked it is 64 hex digits.
		b, _ := hex.DecodeString(strings.ToLower(t.SHA256))
		copy(td.digest[:], b)
		td.who = principal{Name: t.Name, Role: t.Role}
		a.tokens = append(a.tokens, td)
	}
	return a
}

// maxTokenLen bounds a presented token; longer ones are refused unread.
const maxTokenLen = 4096

// authenticate identifies the caller of r from its bearer token, which
// comes from the Authorization header or, for the WebSocket stream where
// browsers cannot set headers, from extra (a query parameter or
// subprotocol). It returns a 401 apiError with a Bearer challenge when the
// caller sends no token and anonymous callers are not let in, or sends a
// token that matches none.
func (a *authenticator) authenticate(r *http.Request, extra string) (principal, *apiError) {
	token, sent, bearer := bearerToken(r.Header.Get("Authorization"))
	if !sent && extra != "" {
		token, sent, bearer = extra, true, true
	}
	switch {
	case sent && !bearer:
		// Credentials of another scheme: challenge for ours (RFC 9110,
		// section 11.6.1), without an error code (RFC 6750, section 3.1).
		return principal{}, &apiError{Status: http.StatusUnauthorized, Code: "unauthenticated",
			Message: "use the Authorization header \"Bearer <token>\"", Challenge: bearerChallenge("", "")}
	case !sent && a.anonymousRole != "":
		return principal{Name: anonymousName, Role: a.anonymousRole}, nil
	case !sent:
		return principal{}, &apiError{Status: http.StatusUnauthorized, Code: "unauthenticated",
			Message: "a bearer token is required", Challenge: bearerChallenge("", "")}
	}
	if who, ok := a.lookup(token); ok {
		return who, nil
	}
	return principal{}, &apiError{Status: http.StatusUnauthorized, Code: "unauthenticated",
		Message: "the token is not valid", Challenge: bearerChallenge("invalid_token", "the token is not valid")}
}

// lookup finds the principal whose digest matches token. It compares every
// digest, whatever matches, so the time taken does not tell which one did.
func (a *authenticator) lookup(token string) (principal, bool) {
	if len(token) == 0 || len(token) > maxTokenLen {
		return principal{}, false
	}
	sum := sha256.Sum256([]byte(token))
	found, idx := 0, 0
	for i, t := range a.tokens {
		eq := subtle.ConstantTimeCompare(sum[:], t.digest[:])
		found |= eq
		idx = subtle.ConstantTimeSelect(eq, i, idx)
	}
	if found == 0 {
		return principal{}, false
	}
	return a.tokens[idx].who, true
}

// bearerToken reads an Authorization header. sent reports whether there
// was one, and bearer whether it used the Bearer scheme; a Bearer header
// whose token is empty or holds spaces gives an empty token, which matches
// none.
func bearerToken(h string) (token string, sent, bearer bool) {
	if h == "" {
		return "", false, false
	}
	scheme, tok, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", true, false
	}
	tok = strings.TrimSpace(tok)
	if strings.ContainsAny(tok, " \t") {
		tok = ""
	}
	return tok, true, true
}

// allowed reports whether who may call a service open to roles.
func allowed(who principal, roles []string) bool {
	return slices.Contains(roles, who.Role)
}

// isAdmin reports whether who may stage faults.
func (a *authenticator) isAdmin(who principal) bool {
	return allowed(who, a.adminRoles)
}
