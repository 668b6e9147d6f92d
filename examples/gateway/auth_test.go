package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAuthenticate(t *testing.T) {
	a := newAuthenticator(authConfig{
		Tokens: []tokenConfig{
			{Name: "alice", SHA256: digest(clientToken), Role: "client"},
			{Name: "root", SHA256: strings.ToUpper(digest(adminToken)), Role: "admin"},
		},
		AdminRoles: []string{"admin"},
	})
	anon := newAuthenticator(authConfig{AnonymousRole: "guest"})
	for _, tc := range []struct {
		name          string
		a             *authenticator
		header, extra string
		want          principal
		wantChallenge string // "" means success
	}{
		{name: "client token", a: a, header: "Bearer " + clientToken, want: principal{"alice", "client"}},
		{name: "scheme in any case", a: a, header: "bearer " + clientToken, want: principal{"alice", "client"}},
		{name: "upper-case digest in the configuration", a: a, header: "Bearer " + adminToken, want: principal{"root", "admin"}},
		{name: "stream token", a: a, extra: clientToken, want: principal{"alice", "client"}},
		{name: "header wins over the stream token", a: a, header: "Bearer " + adminToken, extra: clientToken, want: principal{"root", "admin"}},
		{name: "no token", a: a, wantChallenge: `Bearer realm="proxy"`},
		{name: "no token, anonymous allowed", a: anon, want: principal{anonymousName, "guest"}},
		{name: "bad token, anonymous allowed", a: anon, header: "Bearer nope", wantChallenge: `error="invalid_token"`},
		{name: "unknown token", a: a, header: "Bearer " + outsiderToken, wantChallenge: `error="invalid_token"`},
		{name: "empty bearer", a: a, header: "Bearer ", wantChallenge: `error="invalid_token"`},
		{name: "token with spaces", a: a, header: "Bearer " + clientToken + " x", wantChallenge: `error="invalid_token"`},
		{name: "other scheme", a: anon, header: "Basic YWxpY2U6cHc=", wantChallenge: `Bearer realm="proxy"`},
		{name: "huge token", a: a, header: "Bearer " + strings.Repeat("x", maxTokenLen+1), wantChallenge: `error="invalid_token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "/", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			got, err := tc.a.authenticate(r, tc.extra)
			if tc.wantChallenge == "" {
				if err != nil {
					t.Fatalf("authenticate() = %+v, want %v", err, tc.want)
				}
				assert.Equal(t, tc.want, got)
				return
			}
			if err == nil {
				t.Fatalf("authenticate() = %v, want a 401", got)
			}
			assert.Equal(t, http.StatusUnauthorized, err.Status)
			assert.Contains(t, err.Challenge, tc.wantChallenge)
		})
	}
	assert.True(t, a.isAdmin(principal{"root", "admin"}))
	assert.False(t, a.isAdmin(principal{"alice", "client"}))
}
