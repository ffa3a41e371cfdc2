package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// authenticate says who r acts for. named is false for a request on an
// open server (no token exists, loopback: see package auth) that names
// nobody; such a request may do anything, as before tokens existed.
// Credentials are, in order: the Authorization header (a bearer token),
// else the web UI's session (Config.Session). Errors: EUNAUTHORIZED when
// credentials are required and missing or wrong; the store's when it
// cannot say.
func (h *Handler) authenticate(r *http.Request) (p kalla.Principal, named bool, err error) {
	ctx := r.Context()
	if hdr := r.Header.Get("Authorization"); hdr != "" {
		token, ok := bearer(hdr)
		if ok {
			p, err = h.auth.Token(ctx, token)
			if err == nil {
				return p, true, nil
			}
			if kalla.ErrorCode(err) != kalla.EUNAUTHORIZED {
				return p, false, err
			}
		}
		// A wrong token on an open server is ignored, as it always was:
		// clients that send one to a server without tokens keep working.
		required, rerr := h.auth.Required(ctx)
		if rerr != nil {
			return kalla.Principal{}, false, rerr
		}
		if !required {
			return kalla.Principal{}, false, nil
		}
		if err == nil {
			err = errNoToken
		}
		return kalla.Principal{}, false, err
	}
	if h.cfg.Session != nil {
		if p, ok := h.cfg.Session(r); ok {
			return p, true, nil
		}
	}
	required, err := h.auth.Required(ctx)
	if err != nil {
		return kalla.Principal{}, false, err
	}
	if required {
		return kalla.Principal{}, false, errNoToken
	}
	return kalla.Principal{}, false, nil
}

var errNoToken = kalla.Errorf(kalla.EUNAUTHORIZED, "missing or wrong API token: send \"Authorization: Bearer <token>\"")

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(hdr string) (string, bool) {
	const prefix = "Bearer "
	if len(hdr) <= len(prefix) || !strings.EqualFold(hdr[:len(prefix)], prefix) {
		return "", false
	}
	return hdr[len(prefix):], true
}

// admit authenticates r and checks that its principal has the role need
// for what (the route, "POST /api/runs"); it returns r with the principal
// in its context (kalla.WithPrincipal) for the handler. Errors:
// EUNAUTHORIZED, EFORBIDDEN naming the role needed.
func (h *Handler) admit(r *http.Request, need kalla.Role, what string) (*http.Request, error) {
	p, named, err := h.authenticate(r)
	if err != nil {
		return r, err
	}
	if !named {
		return r, nil
	}
	ctx := kalla.WithPrincipal(r.Context(), p)
	if err := requireRole(ctx, need, what); err != nil {
		h.log.Info("request forbidden", "principal", p.Name, "role", p.Role, "need", need, "route", what)
		return r, err
	}
	return r.WithContext(ctx), nil
}

// requireRole checks that the principal in ctx, if any, may do what needs
// role need (an empty need means admin). A context without a principal is
// an open server's request and may do anything. Errors: EFORBIDDEN naming
// the person, their role and the role needed.
func requireRole(ctx context.Context, need kalla.Role, what string) error {
	if need == "" {
		need = kalla.RoleAdmin
	}
	p, ok := kalla.PrincipalFrom(ctx)
	if !ok || p.Role.Allows(need) {
		return nil
	}
	return kalla.Errorf(kalla.EFORBIDDEN, "%s (%s) may not %s: that needs the %s role", p.Name, p.Role, what, need)
}

// refuse answers an authentication or authorisation error; a 401 says
// how to authenticate.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if kalla.ErrorCode(err) == kalla.EUNAUTHORIZED {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kalla"`)
	}
	h.writeError(w, r, err)
}

// Authorized reports whether r carries credentials the API admits (a
// bearer token or a UI session), or needs none: other handlers mounted
// beside the API, such as the MCP endpoint, admit exactly whom it admits,
// and the requests they make to the API are checked route by route.
func (h *Handler) Authorized(r *http.Request) bool {
	_, _, err := h.authenticate(r)
	return err == nil
}
