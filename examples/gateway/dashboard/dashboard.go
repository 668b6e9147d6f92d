package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"net/http"
	"path"
	"time"
)

//go:embed index.html app.js style.css
var files embed.FS

// contentSecurityPolicy keeps the page to its own origin: its own script and
// style sheet, no inline code, the stream and the API of the gateway that
// served it, and no framing by other pages.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// names lists the files the page is made of; index.html is the page.
var names = []string{"index.html", "app.js", "style.css"}

// A file is one embedded asset, ready to serve.
type file struct {
	name        string
	contentType string
	etag        string
	body        []byte
}

// Handler returns a handler that serves the page at "/" (and at
// "/index.html") and its assets at "/app.js" and "/style.css", relative to
// where it is mounted: strip the mount point first, as with
// [http.StripPrefix]. Anything else is answered with notFound. The answers
// carry a strong ETag and ask browsers to revalidate every time, so a new
// binary's page is never mixed with an old script, and a Content Security
// Policy that allows only the page's own files and its own origin. The
// handler is safe for concurrent use.
func Handler(notFound http.Handler) http.Handler {
	if notFound == nil {
		panic("dashboard: nil notFound handler")
	}
	byPath := map[string]*file{}
	for _, name := range names {
		body, err := files.ReadFile(name)
		if err != nil {
			panic("dashboard: " + err.Error()) // embedded above: cannot happen
		}
		sum := sha256.Sum256(body)
		f := &file{
			name:        name,
			contentType: contentType(name),
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`,
			body:        body,
		}
		byPath["/"+name] = f
	}
	byPath["/"] = byPath["/index.html"]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := byPath[r.URL.Path]
		if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			notFound.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("ETag", f.etag)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		// ServeContent answers If-None-Match with 304 and HEAD without
		// a body; the zero time sends no Last-Modified.
		http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
	})
}

// contentType returns the media type of an asset, by its extension.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	}
	return "application/octet-stream"
}
