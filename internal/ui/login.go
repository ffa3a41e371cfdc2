package ui

import (
	"net/http"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// sessionCookie holds a signed-in browser's session: the principal's name,
// an expiry time and an HMAC of both keyed by the token signed in with
// (auth.Authenticator.NewSession), so the server keeps no session state,
// the token itself never reaches the browser after sign-in, and revoking
// or replacing the token ends every session made with it.
const sessionCookie = "kalla_session"

// maxLoginBody caps the sign-in form.
const maxLoginBody = 16 << 10

// visitor is who is looking at the UI: named when a session says who, not
// named on an open server (no token exists, loopback), which shows every
// page and action to anyone.
type visitor struct {
	kalla.Principal
	Named bool
}

// Can reports whether the visitor may do what needs role need; the pages
// hide what they may not (the API refuses it anyway).
func (v visitor) Can(need kalla.Role) bool { return !v.Named || v.Role.Allows(need) }

// whoIs says who the request is from. ok is false when the UI needs a
// session (a token exists) and the request has none that is valid, or the
// store cannot say.
func (h *Handler) whoIs(r *http.Request) (v visitor, ok bool) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		p, err := h.auth.Session(r.Context(), c.Value)
		if err == nil {
			return visitor{Principal: p, Named: true}, true
		}
		if kalla.ErrorCode(err) != kalla.EUNAUTHORIZED {
			h.log.Error("check a session", "err", err)
			return visitor{}, false
		}
	}
	required, err := h.auth.Required(r.Context())
	if err != nil {
		h.log.Error("check whether sign-in is required", "err", err)
		return visitor{}, false
	}
	return visitor{}, !required
}

// signedIn reports whether the request may see the UI: always when no
// token exists, else when it carries a valid session cookie.
func (h *Handler) signedIn(r *http.Request) bool {
	_, ok := h.whoIs(r)
	return ok
}

// Session names the principal of a request that carries no bearer token
// (api.Config.Session): it must carry a valid session cookie and, unless
// it only reads (GET, HEAD), the header X-Kalla-UI: 1 that the UI's
// scripts send. Another site can make a visitor's browser send the cookie
// with a form post, but cannot add a header without a CORS preflight,
// which Kalla never grants; so the header is what stops cross-site
// request forgery, and the cookie's SameSite=Strict is a second line.
func (h *Handler) Session(r *http.Request) (kalla.Principal, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Header.Get(uiHeader) != "1" {
		return kalla.Principal{}, false
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return kalla.Principal{}, false
	}
	p, err := h.auth.Session(r.Context(), c.Value)
	if err != nil {
		if kalla.ErrorCode(err) != kalla.EUNAUTHORIZED {
			h.log.Error("check a session", "err", err)
		}
		return kalla.Principal{}, false
	}
	return p, true
}

// loginData is what the sign-in page shows.
type loginData struct {
	Next  string
	Error string
}

// loginForm shows the sign-in page; on an open server, or to a visitor
// already signed in, it goes on to the page asked for.
func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	if h.signedIn(r) {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	h.render(w, r, &view{Page: "login.html", Title: "Sign in", Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}})
}

// login checks the token typed into the sign-in form (the bootstrap token
// or a named one) and, when it admits someone, sets the session cookie for
// that person and goes on to the page asked for.
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
	value, p, err := h.auth.NewSession(r.Context(), strings.TrimSpace(r.PostForm.Get("token")), h.cfg.SessionTTL)
	if err != nil {
		msg := "That is not this server's API token nor a named token it knows: use your own token (made with kalla token create) or the server's KALLA_API_TOKEN."
		st := http.StatusUnauthorized
		if code := kalla.ErrorCode(err); code == kalla.EUNAUTHORIZED {
			if e := kalla.ErrorMessage(err); strings.Contains(e, "revoked") {
				msg = e
			}
		} else {
			h.log.Error("sign-in failed", "err", err)
			msg, st = "Sign-in failed on the server's side; try again.", http.StatusInternalServerError
		}
		h.log.Info("ui sign-in refused", "remote", r.RemoteAddr)
		h.render(w, r, &view{Page: "login.html", Title: "Sign in", Status: st, Data: loginData{Next: next, Error: msg}})
		return
	}
	h.log.Info("ui sign-in", "principal", p.Name, "role", p.Role, "remote", r.RemoteAddr)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/",
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
