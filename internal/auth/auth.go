// Package auth says who a request acts for. It turns a bearer token, or a
// web UI session made by signing in with one, into a kalla.Principal: the
// person's name, recorded as the actor of what they do, and their role,
// which the API's route table checks (package api, routes.go).
//
// Two kinds of token admit a request:
//
//   - KALLA_API_TOKEN, the operator's bootstrap token from the environment:
//     the principal "admin" with the admin role. It lets an operator create
//     the first named tokens through the API and keeps older set-ups
//     working.
//   - Named tokens, made with `kalla token create` or POST /api/tokens:
//     "kalla_" and 32 random bytes in base64url. The store keeps only a
//     SHA-256 of a token, never the token, which is shown once at creation.
//
// SHA-256 and not bcrypt: bcrypt's cost protects guessable passwords from a
// stolen hash, but a 256-bit random token cannot be guessed whatever the
// hash's speed, so the cost would buy nothing. A fast unsalted hash lets
// the store find a token by its hash with one indexed lookup, where bcrypt
// (salted, ~50-100 ms of CPU) would need a scan of every row and a
// comparison per row on every request.
//
// When credentials are required: when KALLA_API_TOKEN is set, when the
// server listens beyond loopback (Config.Always), or once any named token
// was ever created, revoked ones included, so that revoking the last token
// never leaves a server open. A loopback server without any token stays
// open, as the embedded default always was; its requests carry no
// principal.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// Store is what authentication reads of the metadata store (*store.Store).
type Store interface {
	// TokenByHash returns the token with this SHA-256, revoked or not;
	// ENOTFOUND when there is none.
	TokenByHash(ctx context.Context, hash string) (*kalla.APIToken, error)
	// ActiveToken returns name's token that is not revoked, with its
	// hash; ENOTFOUND when there is none.
	ActiveToken(ctx context.Context, name string) (*kalla.APIToken, string, error)
	// TouchToken records that the token with this hash was used.
	TouchToken(ctx context.Context, hash string) error
	// HasTokens reports whether a named token was ever created.
	HasTokens(ctx context.Context) (bool, error)
}

// Config configures an Authenticator.
type Config struct {
	// Store holds the named tokens; nil admits only Bootstrap.
	Store Store
	// Bootstrap is KALLA_API_TOKEN: when set it admits the principal
	// "admin" (role admin) and credentials are always required.
	Bootstrap string
	// Always requires credentials even when no token exists: a server
	// listening beyond loopback must never be open.
	Always bool
	// Logger receives refused tokens (never the token) and store errors.
	// Nil discards.
	Logger *slog.Logger
	// Now is the clock of sessions; nil means time.Now.
	Now func() time.Time
}

// Authenticator resolves credentials to principals. It is safe for
// concurrent use.
type Authenticator struct {
	cfg Config
	log *slog.Logger
	now func() time.Time
	// required is set once credentials are known to be required; it
	// never goes back (tokens are revoked, never deleted).
	required atomic.Bool
}

// New returns an Authenticator for cfg.
func New(cfg Config) *Authenticator {
	a := &Authenticator{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if cfg.Bootstrap != "" || cfg.Always {
		a.required.Store(true)
	}
	return a
}

// TokenPrefix starts every named token, so secret scanners and people can
// tell a Kalla token in a file or a paste.
const TokenPrefix = "kalla_"

// NewToken returns a fresh named token and its hash for the store: the
// token is shown once and then forgotten.
func NewToken() (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, Hash(token), nil
}

// Hash returns the SHA-256 of a token in lowercase hex, as the store keeps
// it.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Required reports whether requests must carry credentials. Errors: the
// store's, when it cannot say whether tokens exist (callers then refuse
// the request rather than admit it).
func (a *Authenticator) Required(ctx context.Context) (bool, error) {
	if a.required.Load() {
		return true, nil
	}
	if a.cfg.Store == nil {
		return false, nil
	}
	has, err := a.cfg.Store.HasTokens(ctx)
	if err != nil {
		return true, err
	}
	if has {
		a.required.Store(true)
	}
	return has, nil
}

// bootstrap returns the bootstrap principal.
func bootstrap() kalla.Principal {
	return kalla.Principal{Name: kalla.BootstrapName, Role: kalla.RoleAdmin}
}

// Token resolves a bearer token to its principal. Errors: EUNAUTHORIZED
// for a token that is not the bootstrap token nor a named one, or one that
// was revoked; the store's error when it cannot be asked.
func (a *Authenticator) Token(ctx context.Context, token string) (kalla.Principal, error) {
	if a.cfg.Bootstrap != "" && subtle.ConstantTimeCompare([]byte(token), []byte(a.cfg.Bootstrap)) == 1 {
		return bootstrap(), nil
	}
	if a.cfg.Store == nil || token == "" {
		return kalla.Principal{}, errWrongToken
	}
	hash := Hash(token)
	t, err := a.cfg.Store.TokenByHash(ctx, hash)
	if kalla.ErrorCode(err) == kalla.ENOTFOUND {
		return kalla.Principal{}, errWrongToken
	}
	if err != nil {
		return kalla.Principal{}, err
	}
	if t.RevokedAt != nil {
		a.log.Info("revoked token refused", "name", t.Name)
		return kalla.Principal{}, kalla.Errorf(kalla.EUNAUTHORIZED, "this API token (%s's) was revoked on %s: ask an admin for a new one", t.Name, t.RevokedAt.Format(time.DateOnly))
	}
	if t.LastUsed == nil || a.now().Sub(*t.LastUsed) >= time.Minute {
		if err := a.cfg.Store.TouchToken(ctx, hash); err != nil {
			a.log.Warn("could not record a token's use", "name", t.Name, "err", err)
		}
	}
	return kalla.Principal{Name: t.Name, Role: t.Role}, nil
}

var errWrongToken = kalla.Errorf(kalla.EUNAUTHORIZED, "missing or wrong API token: send \"Authorization: Bearer <token>\"")

// NewSession signs in with a token and returns the value of a session
// cookie for its principal, valid for ttl, and the principal. The value
// holds the principal's name, its expiry and an HMAC of both keyed by the
// token's secret (the bootstrap token, or a named token's hash), so the
// server keeps no session state, the token never reaches the browser, and
// revoking or replacing the token ends the session. Errors: Token's.
func (a *Authenticator) NewSession(ctx context.Context, token string, ttl time.Duration) (string, kalla.Principal, error) {
	p, err := a.Token(ctx, token)
	if err != nil {
		return "", kalla.Principal{}, err
	}
	key := []byte(a.cfg.Bootstrap)
	if p.Name != kalla.BootstrapName {
		key = []byte(Hash(token))
	}
	exp := strconv.FormatInt(a.now().Add(ttl).Unix(), 10)
	return p.Name + sessionSep + exp + sessionSep + sessionMAC(key, p.Name, exp), p, nil
}

// sessionSep separates a session value's parts; no token name holds it.
const sessionSep = "~"

func sessionMAC(key []byte, name, exp string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("kalla-ui-session|" + name + "|" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// Session resolves a session cookie's value to its principal. Errors:
// EUNAUTHORIZED for a value that is malformed, expired, forged, or whose
// token was revoked or replaced; the store's error when it cannot be
// asked.
func (a *Authenticator) Session(ctx context.Context, value string) (kalla.Principal, error) {
	name, rest, ok1 := strings.Cut(value, sessionSep)
	exp, mac, ok2 := strings.Cut(rest, sessionSep)
	if !ok1 || !ok2 {
		return kalla.Principal{}, errSession
	}
	t, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || a.now().Unix() >= t {
		return kalla.Principal{}, errSession
	}
	var key []byte
	p := bootstrap()
	if name == kalla.BootstrapName {
		if a.cfg.Bootstrap == "" {
			return kalla.Principal{}, errSession
		}
		key = []byte(a.cfg.Bootstrap)
	} else {
		if a.cfg.Store == nil {
			return kalla.Principal{}, errSession
		}
		tok, hash, err := a.cfg.Store.ActiveToken(ctx, name)
		if kalla.ErrorCode(err) == kalla.ENOTFOUND {
			return kalla.Principal{}, errSession
		}
		if err != nil {
			return kalla.Principal{}, err
		}
		key, p = []byte(hash), kalla.Principal{Name: tok.Name, Role: tok.Role}
	}
	if !hmac.Equal([]byte(mac), []byte(sessionMAC(key, name, exp))) {
		return kalla.Principal{}, errSession
	}
	return p, nil
}

var errSession = kalla.Errorf(kalla.EUNAUTHORIZED, "no valid session: sign in again")
