package ui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// issued is the answer to POST /api/tokens.
type issued struct {
	Name  string     `json:"name"`
	Role  kalla.Role `json:"role"`
	Token string     `json:"token"`
}

// TestSignInAsAPerson: people sign in with their own named tokens; the
// header names them and their role, pages hide what the role may not do,
// the API refuses it when tried anyway, the token is in no page, and
// revoking a token ends its session.
func TestSignInAsAPerson(t *testing.T) {
	chromium(t)
	data := newDataset(t, 200)
	s := startServer(t, nil, data.dir)
	// The first token comes from the still-open server and closes it.
	var ada, vic, pat issued
	apiCall(t, s.url, "", "POST", "/api/tokens", map[string]string{"name": "ada", "role": "admin"}, &ada)
	apiCall(t, s.url, ada.Token, "POST", "/api/tokens", map[string]string{"name": "vic", "role": "viewer"}, &vic)
	apiCall(t, s.url, ada.Token, "POST", "/api/tokens", map[string]string{"name": "pat@example.com", "role": "preparer"}, &pat)
	if vic.Token == "" || pat.Token == "" {
		t.Fatalf("tokens not issued: %+v %+v", vic, pat)
	}
	rec := gen.Recipe(data.files)
	if st := apiCall(t, s.url, ada.Token, "POST", "/api/recipes", rec, nil); st != 201 {
		t.Fatalf("create recipe: %d", st)
	}
	apiCall(t, s.url, ada.Token, "POST", "/api/sources", map[string]string{"alias": "payments", "uri": data.files.Payments}, nil)
	b := newTab(t, s.url)

	hidden := func(css string) bool {
		got, err := b.poll(`(() => { const e = document.querySelector(`+js(css)+`); return e ? String(getComputedStyle(e).display === "none") : null; })()`, 10*time.Second)
		if got == nil {
			t.Fatalf("no %s on the page: %v", css, err)
		}
		return *got == "true"
	}

	// A viewer reads, and sees no action a viewer cannot take.
	b.open("/sources")
	b.waitText("h1", "Sign in", 10*time.Second)
	b.typeInto("#token", vic.Token)
	b.click("form button[type=submit]")
	b.waitText("h1", "Sources", 10*time.Second)
	b.waitText("#who", "Signed in as vic (viewer)", 10*time.Second)
	if !hidden("#register") || !hidden(`[data-delete="payments"]`) {
		t.Errorf("a viewer sees the register form or the delete button")
	}
	b.open("/recipes")
	b.waitText("h1", "Recipes", 10*time.Second)
	if !hidden(`[data-run="` + rec.RecipeID + `"]`) {
		t.Errorf("a viewer sees the Run button")
	}
	if strings.Contains(b.html(), vic.Token) {
		t.Errorf("a page holds the token")
	}
	// Tried anyway from the page, the API refuses with the role needed.
	b.eval("post as the viewer", `(() => { window.__st = null; fetch("/api/runs", {method: "POST", headers: {"X-Kalla-UI": "1", "Content-Type": "application/json"},
		body: JSON.stringify({recipe_id: `+js(rec.RecipeID)+`})}).then(r => r.text().then(t => { window.__st = r.status + " " + t; })); return true; })()`)
	got, err := b.poll(`window.__st`, 10*time.Second)
	if got == nil || !strings.HasPrefix(*got, "403 ") || !strings.Contains(*got, "vic (viewer) may not POST /api/runs: that needs the preparer role") {
		t.Errorf("a viewer's run from the page: %v %v", got, err)
	}

	// A preparer may start runs, not register sources.
	b.click(".signout button")
	b.waitText("h1", "Sign in", 10*time.Second)
	b.typeInto("#token", pat.Token)
	b.click("form button[type=submit]")
	b.waitText("#who", "Signed in as pat@example.com (preparer)", 10*time.Second)
	b.open("/runs")
	b.waitText("h1", "Runs", 10*time.Second)
	if hidden("#start") {
		t.Errorf("a preparer does not see the start form")
	}
	b.click("#start-form[data-ready] button[type=submit]")
	if got, err := b.poll(`location.pathname.startsWith("/runs/") ? location.pathname : null`, 20*time.Second); got == nil {
		t.Errorf("a preparer's run from the runs page did not start: %v", err)
	}
	b.open("/sources")
	b.waitText("h1", "Sources", 10*time.Second)
	if !hidden("#register") {
		t.Errorf("a preparer sees the register form")
	}

	// Revoking the token ends the session at the next page.
	apiCall(t, s.url, ada.Token, "DELETE", "/api/tokens/pat@example.com", nil, nil)
	b.open("/runs")
	b.waitText("h1", "Sign in", 10*time.Second)
	b.typeInto("#token", pat.Token)
	b.click("form button[type=submit]")
	b.waitText(".alert", "was revoked", 10*time.Second)
}
