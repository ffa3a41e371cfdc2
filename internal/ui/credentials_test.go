package ui_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kalla-recon/kalla/internal/testenv"
)

// pgExec runs statements on a PostgreSQL database.
func pgExec(t *testing.T, uri string, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, uri)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// get fetches a path of the server as a plain HTTP client and returns the
// body.
func get(t *testing.T, base, path string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d: %.300s", path, resp.StatusCode, b)
	}
	return string(b)
}

var assetRef = regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`)

// TestNoCredentialsInPages registers a PostgreSQL table through the UI
// with its password typed in the password field, builds a recipe over it
// in the builder (whose URIs are only ever the masked ones) and runs it,
// which proves the server kept the real password; then it looks for the
// password, plain and URL-encoded, in every page as served and as the
// browser holds it after the scripts ran, in every script and style the
// pages load, and in the API answers the pages read. A wrong password is
// refused with the server's message, which does not echo it either.
func TestNoCredentialsInPages(t *testing.T) {
	chromium(t)
	pg := testenv.Postgres(t)
	u, err := url.Parse(pg)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	if len(password) < 4 {
		t.Fatalf("the test database's URI %s has no password worth looking for", u.Redacted())
	}
	data := newDataset(t, 2000)
	invoices := readCSV(t, data.files.Invoices)
	var values []string
	for i, inv := range invoices[:300] {
		values = append(values, "('L-"+strconv.Itoa(i+1)+"', '"+inv["invoice_id"]+"', "+inv["amount"]+")")
	}
	pgExec(t, pg, `CREATE TABLE ledger (entry_id text PRIMARY KEY, invoice_ref text, booked numeric(12,2))`,
		`INSERT INTO ledger VALUES `+strings.Join(values, ", "))
	noPassword := *u
	noPassword.User = url.User(u.User.Username())
	q := noPassword.Query()
	q.Set("table", "ledger")
	noPassword.RawQuery = q.Encode()

	s := startServer(t, nil, data.dir)
	apiCall(t, s.url, "", "POST", "/api/sources", map[string]string{"alias": "invoices", "uri": data.files.Invoices}, nil)
	b := newTab(t, s.url)

	// A wrong password: the server's message, without the password.
	b.open("/sources")
	b.typeInto("#uri-alias", "ledger")
	b.choose("#uri-type", "postgres")
	b.typeInto("#uri-uri", noPassword.String())
	b.typeInto("#uri-password", "not-the-"+password)
	b.click("#uri-form button[type=submit]")
	msg := b.waitText("#uri-form .alert", "rejected the user name or password", 30*time.Second)
	if strings.Contains(msg, password) {
		t.Errorf("the error shows the password: %q", msg)
	}

	// The right one, typed in its own field.
	b.typeInto("#uri-password", password)
	b.click("#uri-form button[type=submit]")
	b.waitText(".flash", "Registered source “ledger”", 30*time.Second)
	b.waitText(`[data-health="ledger"]`, "300 rows", 20*time.Second)
	if v := b.value("#uri-password"); v != "" {
		t.Errorf("the password field still holds a value after registering")
	}

	// A recipe over it, built and saved in the builder, then run.
	b.open("/recipes/new")
	b.typeInto("#r-id", "ledger-check")
	b.choose("#left-source", "src:invoices")
	b.choose("#right-source", "src:ledger")
	b.waitText("#pairs", "invoice_ref", 30*time.Second)
	b.click("#write-sql")
	b.click("#validate")
	b.waitText("#check-result", "The recipe would run", 30*time.Second)
	b.click("#preview-match")
	b.waitText("#preview-result", "Preview on samples", 60*time.Second)
	b.click("#save")
	b.waitText("#saved", "Saved recipe", 30*time.Second)
	b.open("/recipes")
	b.click(`button[data-run="ledger-check"]`)
	b.waitText("#c-matched", "300", 60*time.Second)
	runID := strings.TrimPrefix(b.location(), s.url+"/runs/")

	secrets := []string{password, url.QueryEscape(password), url.PathEscape(password)}
	check := func(where, text string) {
		t.Helper()
		for _, sec := range secrets {
			if strings.Contains(text, sec) {
				t.Errorf("%s contains the password", where)
			}
		}
	}
	pages := map[string]string{ // path → something to wait for once its scripts ran
		"/":                     "ledger-check",
		"/sources":              "300 rows",
		"/sources/ledger":       "rows in the source",
		"/recipes":              "ledger-check",
		"/recipes/new":          "Choose a source",
		"/recipes/ledger-check": "invoice_ref",
		"/runs":                 "ledger-check",
		"/runs/" + runID:        "Pairs 1–",
	}
	if raw := get(t, s.url, "/sources"); !strings.Contains(raw, u.User.Username()+":xxxxx@") {
		t.Errorf("the sources page does not show the URI masked")
	}
	assets := map[string]bool{}
	for path, want := range pages {
		raw := get(t, s.url, path)
		check("the HTML of "+path, raw)
		for _, m := range assetRef.FindAllStringSubmatch(raw, -1) {
			assets[m[1]] = true
		}
		b.open(path)
		b.waitText("main", want, 30*time.Second)
		check("the page "+path+" as the browser holds it", b.html())
	}
	if len(assets) < 5 {
		t.Errorf("only %d scripts and styles found in the pages", len(assets))
	}
	for a := range assets {
		check("the asset "+a, get(t, s.url, a))
	}
	for _, p := range []string{"/api/sources", "/api/sources/ledger", "/api/recipes", "/api/recipes/ledger-check", "/api/runs", "/api/runs/" + runID} {
		check("the API answer "+p, get(t, s.url, p))
	}
}
