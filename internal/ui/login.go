package ui

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
)

// sessionCookie holds a signed-in browser's session: an expiry time and an
// HMAC of it keyed by the API token, so the server keeps no session state,
// the token itself never reaches the browser after sign-in, and changing
// the token ends every session.
const sessionCookie = "kalla_session"

// maxLoginBody caps the sign-in form.
const maxLoginBody = 16 << 10

// signedIn reports whether the request may see the UI: always when the
// server has no API token, else when it carries a valid session cookie.
func (h *Handler) signedIn(r *http.Request) bool {
	if h.cfg.Token == "" {
		return true
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return false
	}
	exp, sig, ok := strings.Cut(c.Value, ".")
	if !ok {
		return false
	}
	t, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || h.now().Unix() >= t {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(h.sessionMAC(exp)))
}

func (h *Handler) sessionMAC(exp string) string {
	m := hmac.New(sha256.New, []byte(h.cfg.Token))
	m.Write([]byte("kalla-ui-session|" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// Authorized reports whether the API may serve a request that carries no
// bearer token (api.Config.Authorize): it must carry a valid session
// cookie and, unless it only reads (GET, HEAD), the header X-Kalla-UI: 1
// that the UI's scripts send. Another site can make a visitor's browser
// send the cookie with a form post, but cannot add a header without a
// CORS preflight, which Kalla never grants; so the header is what stops
// cross-site request forgery, and the cookie's SameSite=Strict is a second
// line.
func (h *Handler) Authorized(r *http.Request) bool {
	if h.cfg.Token == "" || !h.signedIn(r) {
		return false
	}
	return r.Method == http.MethodGet || r.Method == http.MethodHead || r.Header.Get(uiHeader) == "1"
}

// loginData is what the sign-in page shows.
type loginData struct {
	Next  string
	Error string
}

// loginForm shows the sign-in page; without a token there is nothing to
// sign in to.
func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Token == "" || h.signedIn(r) {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	h.render(w, r, &view{Page: "login.html", Title: "Sign in", Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}})
}

// login checks the API token typed into the sign-in form and, when it is
// the server's, sets the session cookie and goes on to the page asked for.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "sign-in from another site refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad sign-in form", http.StatusBadRequest)
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if h.cfg.Token == "" {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	token := r.PostForm.Get("token")
	if subtle.ConstantTimeCompare([]byte(token), []byte(h.cfg.Token)) != 1 {
		h.log.Info("ui sign-in refused", "remote", r.RemoteAddr)
		h.render(w, r, &view{Page: "login.html", Title: "Sign in", Status: http.StatusUnauthorized,
			Data: loginData{Next: next, Error: "That is not this server's API token (the value of KALLA_API_TOKEN)."}})
		return
	}
	exp := strconv.FormatInt(h.now().Add(h.cfg.SessionTTL).Unix(), 10)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: exp + "." + h.sessionMAC(exp), Path: "/",
		MaxAge: int(h.cfg.SessionTTL.Seconds()), HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the browser's session.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "sign-out from another site refused", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// crossOrigin refuses form posts a browser says come from another site.
// The server checks every request this way before the UI sees it; the
// sign-in forms check again so that the UI stays safe wherever it is
// mounted.
var crossOrigin = http.NewCrossOriginProtection()

// sameOrigin reports whether crossOrigin admits r.
func sameOrigin(r *http.Request) bool { return crossOrigin.Check(r) == nil }

// safeNext keeps a post-sign-in destination on this server: a path, never
// another host ("//evil", "https://evil", "/\evil").
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, `/\`) || strings.HasPrefix(next, "/login") {
		return "/"
	}
	return next
}
