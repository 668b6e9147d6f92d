package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// This file is a small W3C WebDriver client, enough for the dashboard's
// browser test: it starts chromedriver, opens a headless Chromium session,
// and drives it over the WebDriver HTTP API
// (https://www.w3.org/TR/webdriver2/).

// requireBrowserEnv, when set, makes a missing browser a test failure
// rather than a skip, so that CI cannot pass without running the browser
// tests.
const requireBrowserEnv = "PROXY_REQUIRE_BROWSER"

// webElementKey is the key under which WebDriver returns an element id.
const webElementKey = "element-6066-11e4-a52e-4f735466cecf"

// chromiumNames are the names the Chromium binary goes by, in the order
// they are looked for.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// A webDriver is one browser session. Its methods fail the test on any
// error.
type webDriver struct {
	t       *testing.T
	client  *http.Client
	session string // the session's URL
}

// findBrowser returns the paths of chromedriver and Chromium. When either
// is missing it skips the test, or fails it when requireBrowserEnv is set.
func findBrowser(t *testing.T) (driver, browser string) {
	t.Helper()
	driver, err := exec.LookPath("chromedriver")
	if err == nil {
		for _, name := range chromiumNames {
			if browser, err = exec.LookPath(name); err == nil {
				break
			}
		}
	}
	if err != nil {
		msg := fmt.Sprintf("no headless browser: %v (on Debian: apt-get install chromium chromium-driver)", err)
		if os.Getenv(requireBrowserEnv) != "" {
			t.Fatalf("%s; %s is set, so the browser tests must run", msg, requireBrowserEnv)
		}
		t.Skip(msg)
	}
	return driver, browser
}

var driverPortRE = regexp.MustCompile(`started successfully on port (\d+)`)

// startBrowser starts chromedriver on a free port and opens a headless
// Chromium session of the given window size, both ended when the test
// ends.
func startBrowser(t *testing.T, width, height int) *webDriver {
	t.Helper()
	driverPath, browserPath := findBrowser(t)
	// Made before the cleanup below is registered, so that it is removed
	// after the browser has quit: cleanups run last in, first out, and
	// removing it under a running Chromium fails when Chromium writes to
	// it at the same time ("directory not empty").
	userDataDir := t.TempDir()
	out := &syncBuffer{}
	cmd := exec.Command(driverPath, "--port=0")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", driverPath, err)
	}
	tr := &http.Transport{}
	d := &webDriver{t: t, client: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
	t.Cleanup(func() {
		if d.session != "" {
			// Ends Chromium; chromedriver is ended by its process id.
			d.call(http.MethodDelete, "", nil, nil)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		tr.CloseIdleConnections()
		if t.Failed() {
			t.Logf("chromedriver output:\n%s", out.String())
		}
	})

	port := waitOutput(t, out, driverPortRE, "chromedriver")
	base := "http://127.0.0.1:" + port
	var created struct {
		SessionID string `json:"sessionId"`
	}
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--hide-scrollbars", "--force-color-profile=srgb", "--force-device-scale-factor=1",
		"--lang=en-US", fmt.Sprintf("--window-size=%d,%d", width, height), "--user-data-dir=" + userDataDir,
	}
	d.post(base+"/session", map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName":        "chrome",
		"goog:chromeOptions": map[string]any{"binary": browserPath, "args": args},
		"timeouts":           map[string]int{"script": 60_000, "pageLoad": 30_000, "implicit": 0},
	}}}, &created)
	if created.SessionID == "" {
		t.Fatal("chromedriver created a session without an id")
	}
	d.session = base + "/session/" + created.SessionID
	return d
}

// waitOutput waits until a process's output matches re, and returns the
// first submatch.
func waitOutput(t *testing.T, out *syncBuffer, re *regexp.Regexp, what string) string {
	t.Helper()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		s, next := out.wait()
		if m := re.FindStringSubmatch(s); m != nil {
			return m[1]
		}
		select {
		case <-next:
		case <-timeout.C:
			t.Fatalf("%s did not start within 30s; output:\n%s", what, s)
		}
	}
}

// call sends a command to the session (path relative to the session's
// URL) and decodes the answer's value into out, when not nil.
func (d *webDriver) call(method, path string, body, out any) {
	d.t.Helper()
	d.do(method, d.session+path, body, out)
}

// post sends a command to an absolute URL.
func (d *webDriver) post(url string, body, out any) {
	d.t.Helper()
	d.do(http.MethodPost, url, body, out)
}

func (d *webDriver) do(method, url string, body, out any) {
	d.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			d.t.Fatalf("WebDriver %s %s: %v", method, url, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		d.t.Fatalf("WebDriver %s %s: %v", method, url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		d.t.Fatalf("WebDriver %s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatalf("WebDriver %s %s: reading the answer: %v", method, url, err)
	}
	var answer struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		d.t.Fatalf("WebDriver %s %s: %s: %.300s", method, url, resp.Status, raw)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(answer.Value, &e)
		d.t.Fatalf("WebDriver %s %s: %s: %s: %.500s", method, strings.TrimPrefix(url, d.session), resp.Status, e.Error, e.Message)
	}
	if out != nil {
		if err := json.Unmarshal(answer.Value, out); err != nil {
			d.t.Fatalf("WebDriver %s %s: decoding %.300s: %v", method, url, answer.Value, err)
		}
	}
}

// navigate opens url and waits for it to load.
func (d *webDriver) navigate(url string) {
	d.t.Helper()
	d.call(http.MethodPost, "/url", map[string]string{"url": url}, nil)
}

// find returns the id of the first element that matches a CSS selector.
func (d *webDriver) find(css string) string {
	d.t.Helper()
	var el map[string]string
	d.call(http.MethodPost, "/element", map[string]string{"using": "css selector", "value": css}, &el)
	return el[webElementKey]
}

// text returns the rendered text of the first element matching css.
func (d *webDriver) text(css string) string {
	d.t.Helper()
	var s string
	d.call(http.MethodGet, "/element/"+d.find(css)+"/text", nil, &s)
	return s
}

// typeInto types text into the element matching css.
func (d *webDriver) typeInto(css, text string) {
	d.t.Helper()
	d.call(http.MethodPost, "/element/"+d.find(css)+"/value", map[string]string{"text": text}, nil)
}

// clear empties the input matching css.
func (d *webDriver) clear(css string) {
	d.t.Helper()
	d.call(http.MethodPost, "/element/"+d.find(css)+"/clear", map[string]any{}, nil)
}

// click clicks the element matching css.
func (d *webDriver) click(css string) {
	d.t.Helper()
	d.call(http.MethodPost, "/element/"+d.find(css)+"/click", map[string]any{}, nil)
}

// script runs a function body in the page with args and decodes what it
// returns into out, when not nil.
func (d *webDriver) script(body string, out any, args ...any) {
	d.t.Helper()
	if args == nil {
		args = []any{}
	}
	d.call(http.MethodPost, "/execute/sync", map[string]any{"script": body, "args": args}, out)
}

// waitUntil waits until the JavaScript expression cond is true in the page,
// checking it at once and then on every change to the document, for at
// most timeout; the page does the waiting, so the test never sleeps. On
// timeout it fails the test with what and the text of the element matching
// context, and keeps a screenshot in the test's artifact directory.
func (d *webDriver) waitUntil(what, cond, context string, timeout time.Duration) {
	d.t.Helper()
	const waiter = `
const done = arguments[arguments.length - 1];
const check = () => { try { return !!(%s); } catch (e) { return false; } };
if (check()) { done(true); return; }
const timer = setTimeout(() => { obs.disconnect(); done(false); }, %d);
const obs = new MutationObserver(() => {
  if (check()) { obs.disconnect(); clearTimeout(timer); done(true); }
});
obs.observe(document.documentElement, {subtree: true, childList: true, characterData: true, attributes: true});`
	var ok bool
	d.call(http.MethodPost, "/execute/async", map[string]any{
		"script": fmt.Sprintf(waiter, cond, timeout.Milliseconds()), "args": []any{},
	}, &ok)
	if !ok {
		var state string
		d.script(`const el = document.querySelector(arguments[0]); return el ? el.innerText : "(no element " + arguments[0] + ")";`, &state, context)
		path := d.t.ArtifactDir() + "/failure.png"
		_ = os.WriteFile(path, d.screenshot(), 0o644)
		d.t.Fatalf("waiting %v for %s: never true: %s\npage (%s):\n%s\nscreenshot: %s", timeout, what, cond, context, state, path)
	}
}

// resize sets the size of the browser window.
func (d *webDriver) resize(width, height int) {
	d.t.Helper()
	d.call(http.MethodPost, "/window/rect", map[string]int{"width": width, "height": height}, nil)
}

// screenshot returns a PNG of the window.
func (d *webDriver) screenshot() []byte {
	d.t.Helper()
	var b64 string
	d.call(http.MethodGet, "/screenshot", nil, &b64)
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		d.t.Fatalf("decoding the screenshot: %v", err)
	}
	return png
}
