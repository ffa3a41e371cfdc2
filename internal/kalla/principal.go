package kalla

import "context"

// Role is what a person may do in Kalla. Roles are ranked: each one may do
// everything the ones below it may (an approver may also prepare), so a
// check asks for the least role an action needs. Four eyes is a separate
// rule (the approver of an action is not the person who prepared it), not a
// role.
type Role string

// The roles, least first.
const (
	// RoleViewer reads sources, recipes, runs, exceptions and the audit
	// trail.
	RoleViewer Role = "viewer"
	// RolePreparer also starts runs and acts on exceptions (accept,
	// reject, match, resolve, comment); actions above the four-eyes
	// threshold stay pending until approved.
	RolePreparer Role = "preparer"
	// RoleApprover also approves what another person prepared.
	RoleApprover Role = "approver"
	// RoleAdmin also manages sources, recipes, tokens and settings.
	RoleAdmin Role = "admin"
)

var roleRank = map[Role]int{RoleViewer: 1, RolePreparer: 2, RoleApprover: 3, RoleAdmin: 4}

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool { return roleRank[r] > 0 }

// Allows reports whether a person with role r may do what needs role need.
// An unknown role allows nothing.
func (r Role) Allows(need Role) bool {
	return roleRank[r] > 0 && roleRank[r] >= roleRank[need]
}

// Principal is the person a request acts for: the name recorded in the audit
// trail and the role checked before an action.
type Principal struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
}

type principalKey struct{}

// WithPrincipal returns a context carrying p, set by the API's
// authentication before a handler runs.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal the context carries; ok is false
// when authentication named nobody (a server without tokens, or a call
// from inside the process).
func PrincipalFrom(ctx context.Context) (p Principal, ok bool) {
	p, ok = ctx.Value(principalKey{}).(Principal)
	return p, ok
}
