package api

import (
	"net/http"
	"strings"

	"github.com/kalla-recon/kalla/internal/auth"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// tokenRequest is the body of POST /api/tokens.
type tokenRequest struct {
	Name string     `json:"name"`
	Role kalla.Role `json:"role"`
}

// newToken is the answer to POST /api/tokens: the token's record and, this
// once, the token itself. No other answer ever carries a token.
type newToken struct {
	*kalla.APIToken
	Token string `json:"token"`
}

// createToken makes a named token and returns it once. Its creator is the
// calling principal ("admin" for the bootstrap token; "api" on an open
// server). Errors: 400 for a bad name or role, 409 when the name has a
// token already.
func (h *Handler) createToken(w http.ResponseWriter, r *http.Request) (any, error) {
	var req tokenRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	if !req.Role.Valid() {
		return nil, kalla.Errorf(kalla.EINVALID, "role %q is not viewer, preparer, approver or admin", req.Role)
	}
	by := "api"
	if p, ok := kalla.PrincipalFrom(r.Context()); ok {
		by = p.Name
	}
	token, hash, err := auth.NewToken()
	if err != nil {
		return nil, kalla.WrapError(kalla.EINTERNAL, err, "make a token")
	}
	t := &kalla.APIToken{Name: strings.TrimSpace(req.Name), Role: req.Role, CreatedBy: by}
	if err := h.store.CreateToken(r.Context(), t, hash); err != nil {
		return nil, err
	}
	h.log.Info("token created", "name", t.Name, "role", t.Role, "by", by)
	return status(http.StatusCreated, newToken{APIToken: t, Token: token}), nil
}

// listTokens lists every token's record, never a token nor its hash.
func (h *Handler) listTokens(w http.ResponseWriter, r *http.Request) (any, error) {
	list, err := h.store.ListTokens(r.Context())
	if err != nil {
		return nil, err
	}
	return map[string]any{"tokens": list}, nil
}

// revokeToken revokes name's token; requests carrying it are refused from
// now on, and sessions signed in with it end. Errors: 404 when name has no
// token to revoke.
func (h *Handler) revokeToken(w http.ResponseWriter, r *http.Request) (any, error) {
	name := r.PathValue("name")
	t, err := h.store.RevokeToken(r.Context(), name)
	if err != nil {
		return nil, err
	}
	by := "api"
	if p, ok := kalla.PrincipalFrom(r.Context()); ok {
		by = p.Name
	}
	h.log.Info("token revoked", "name", t.Name, "by", by)
	return t, nil
}
