package kalla

import (
	"regexp"
	"time"
)

// APIToken describes a named API token: the person it names and the role
// it grants. It never holds the token nor its hash, so no answer, log line
// or listing made from it can leak either.
type APIToken struct {
	// Name is the person (or program) the token acts for, recorded as the
	// actor of everything done with it.
	Name string `json:"name"`
	Role Role   `json:"role"`
	// CreatedAt and CreatedBy say when and by whom the token was made
	// ("cli:<os user>" from the command line, a principal's name through
	// the API).
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	// LastUsed is when the token last authenticated a request, kept to
	// about a minute (a write per request would load the store).
	LastUsed *time.Time `json:"last_used,omitempty"`
	// RevokedAt is set once the token is revoked; it then admits nothing.
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// BootstrapName is the principal name of KALLA_API_TOKEN, the operator's
// admin token from the environment. No named token may take it, so the
// audit trail never confuses the two.
const BootstrapName = "admin"

var tokenName = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)

// ValidateTokenName checks a token's name: lowercase letters, digits and
// . _ @ - (an e-mail address fits), at most 64 characters, not the
// bootstrap name. Names are shown in the UI and the audit trail, so they
// must not carry markup or look like another person's. Errors: EINVALID.
func ValidateTokenName(name string) error {
	if name == BootstrapName {
		return Errorf(EINVALID, "token name %q is taken by KALLA_API_TOKEN's principal: choose another name", name)
	}
	if !tokenName.MatchString(name) {
		return Errorf(EINVALID, "token name %q: use 1 to 64 lowercase letters, digits and . _ @ -, starting with a letter or digit", name)
	}
	return nil
}
