package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/server"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// TestNoSecretLeaks plants credentials in a full scenario (a Postgres
// source with a real role's password, a Postgres and a MariaDB source
// whose wrong passwords make the real servers refuse them, an s3:// URI
// with credentials, a callback URL with api_key, key, sig and token) and
// greps every API answer, SSE stream, UI page, log line and written file
// for them. The metadata store's own file (kalla.db) is left out: it must
// keep the real URIs to connect with them, and it is never served.
func TestNoSecretLeaks(t *testing.T) {
	const (
		pgPW     = "PgPlanted7f3a"
		pgBadPW  = "PgWrong2b8c"
		myPW     = "MyPlanted5d1e"
		s3Secret = "S3Planted4c2b"
		cbAPIKey = "CbApiKey11x"
		cbKey    = "CbKey22y"
		cbSig    = "CbSig33z"
		cbToken  = "CbTok44w"
	)
	secrets := []string{pgPW, pgBadPW, myPW, s3Secret, cbAPIKey, cbKey, cbSig, cbToken}

	// A Postgres role whose password is planted, reading one table.
	pgAdmin := testenv.Postgres(t)
	role := fmt.Sprintf("leak_%d", time.Now().UnixNano())
	pgExec(t, pgAdmin, `CREATE TABLE ledger (entry_id bigint, ref text, booked numeric(12,2))`,
		`INSERT INTO ledger SELECT i, 'INV-' || lpad(i::text, 8, '0'), i FROM generate_series(1, 50) i`,
		fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, role, pgPW),
		fmt.Sprintf(`GRANT SELECT ON ledger TO %s`, role))
	t.Cleanup(func() { pgExec(t, pgAdmin, "DROP OWNED BY "+role, "DROP ROLE "+role) })
	withUser := func(raw, user, pw string) string {
		u, _ := url.Parse(raw)
		u.User = url.UserPassword(user, pw)
		return u.String()
	}
	pgURI := withTable(withUser(pgAdmin, role, pgPW), "ledger")
	pgBadURI := withTable(withUser(pgAdmin, role, pgBadPW), "ledger")
	my, _ := url.Parse(testenv.MySQL(t))
	myURI := withTable(withUser(my.String(), my.User.Username(), myPW), "payments")
	s3URI := "s3://AKIAPLANTED:" + s3Secret + "@bucket/payments.csv"

	var hookMu sync.Mutex
	hookGot := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hookMu.Lock()
		hookGot[filepath.Base(r.URL.Path)]++
		hookMu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	hookURL, _ := url.Parse(hook.URL)
	callback := hook.URL + "/hooks?api_key=" + cbAPIKey + "&key=" + cbKey + "&sig=" + cbSig + "&token=" + cbToken

	var logs testenv.LogBuffer
	s := startServer(t, func(c *server.Config) {
		c.CallbackHosts = []string{hookURL.Host}
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})

	type seen struct {
		where string
		text  string
	}
	var got []seen
	keep := func(where string, b []byte) { got = append(got, seen{where, string(b)}) }
	do := func(method, path string, body any) []byte {
		t.Helper()
		_, b := s.do(method, path, body)
		keep(method+" "+path, b)
		return b
	}

	// Sources: one that works, three the servers or Kalla refuse.
	do("POST", "/api/sources", map[string]string{"alias": "ledger", "uri": pgURI})
	do("POST", "/api/sources", map[string]string{"alias": "badpg", "uri": pgBadURI})
	do("POST", "/api/sources", map[string]string{"alias": "badmy", "uri": myURI, "source_type": "mysql"})
	do("POST", "/api/sources", map[string]string{"alias": "s3src", "uri": s3URI})
	do("GET", "/api/sources", nil)
	do("GET", "/api/sources/ledger", nil)
	do("POST", "/api/sources/badmy/load-scoped", map[string]any{"limit": 5})
	do("POST", "/api/sources/badpg/load-scoped", map[string]any{"limit": 5})

	rec := smallRecipe()
	rec.RecipeID = "leaks"
	rec.MatchSQL = "SELECT * FROM left_src l JOIN right_src r ON l.ref = r.invoice_id"
	rec.Sources.Left, rec.Sources.Right = kalla.SourceSpec{Alias: "ledger", URI: pgURI, PrimaryKey: []string{"entry_id"}}, rec.Sources.Left
	do("POST", "/api/recipes", rec)
	do("GET", "/api/recipes", nil)
	do("GET", "/api/recipes/leaks", nil)
	do("POST", "/api/recipes/validate", rec)
	do("POST", "/api/recipes/preview", map[string]any{"recipe": rec})

	failing := *rec
	failing.RecipeID = "leaks-failing"
	failing.Sources.Left = kalla.SourceSpec{Alias: "badmy", URI: myURI, Type: "mysql", PrimaryKey: []string{"entry_id"}}
	do("POST", "/api/recipes/validate", &failing)
	do("POST", "/api/recipes/preview", map[string]any{"recipe": &failing})

	var ids []string
	for _, body := range []map[string]any{
		{"recipe_id": "leaks", "callback_url": callback},
		{"recipe": &failing, "callback_url": callback},
	} {
		var out struct {
			RunID string `json:"run_id"`
		}
		if err := json.Unmarshal(do("POST", "/api/runs", body), &out); err != nil || out.RunID == "" {
			t.Fatalf("POST /api/runs: %v", err)
		}
		ids = append(ids, out.RunID)
		for _, ev := range s.follow(out.RunID, 2*time.Minute) {
			keep("SSE "+ev.Event+" of run "+out.RunID, []byte(ev.Data))
		}
	}
	if r := s.getRun(ids[0]); r.Status != kalla.RunCompleted || *r.MatchedCount != 50 {
		t.Fatalf("run with the planted Postgres password: %s %q", r.Status, r.Error)
	}
	if r := s.getRun(ids[1]); r.Status != kalla.RunFailed {
		t.Fatalf("run with the wrong MariaDB password: %s", r.Status)
	}
	for _, id := range ids {
		b := do("GET", "/api/runs/"+id, nil)
		if !strings.Contains(string(b), "api_key=xxxxx") {
			t.Errorf("run %s does not show its callback URL redacted: %s", id, b)
		}
		do("GET", "/api/runs/"+id+"/files/summary.json", nil)
	}
	do("GET", "/api/runs", nil)

	for _, page := range []string{"/", "/sources", "/sources/ledger", "/sources/badmy", "/recipes", "/recipes/leaks", "/recipes/new", "/runs", "/runs/" + ids[0], "/runs/" + ids[1]} {
		resp, err := s.client.Get(s.url + page)
		if err != nil {
			t.Fatalf("GET %s: %v", page, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		keep("page "+page, b)
	}

	// Both final callbacks arrive, so the posting path ran and logged.
	deadline := time.Now().Add(30 * time.Second)
	for {
		hookMu.Lock()
		n := hookGot["complete"] + hookGot["error"]
		hookMu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("callbacks received: %v", hookGot)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	keep("server log", []byte(logs.String()))

	files := 0
	err := filepath.WalkDir(s.dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), "kalla.db") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		keep("file "+strings.TrimPrefix(path, s.dataDir), b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 4 {
		t.Errorf("only %d files written: the scenario did not run", files)
	}

	for _, g := range got {
		for _, secret := range secrets {
			if i := strings.Index(g.text, secret); i >= 0 {
				t.Errorf("%s shows %s: …%s…", g.where, secret, g.text[max(0, i-120):min(len(g.text), i+60)])
			}
		}
	}
	t.Logf("grepped %d answers, streams, pages, files and the log (%d bytes)", len(got), len(logs.String()))
}

// TestErrorsQuoteAnExcerpt: an answer about huge user input quotes a
// bounded excerpt of it (a 100,000-character URI, a 60,000-value in
// filter).
func TestErrorsQuoteAnExcerpt(t *testing.T) {
	s := startServer(t, nil)
	long := strings.Repeat("a", 100000)
	values := make([]string, 60000)
	for i := range values {
		values[i] = fmt.Sprintf("v%d-%s", i, "x")
	}
	for name, req := range map[string][]any{
		"uri":          {"POST", "/api/sources", map[string]string{"alias": "long", "uri": "weird://" + long}},
		"file uri":     {"POST", "/api/sources", map[string]string{"alias": "long", "uri": "/nowhere/" + long + ".csv"}},
		"postgres uri": {"POST", "/api/sources", map[string]string{"alias": "long", "uri": "postgres://u:p@127.0.0.1:1/db?table=" + long}},
		"in filter": {"POST", "/api/recipes/preview", map[string]any{"recipe": smallRecipe(), "filters": map[string]any{
			"left": []map[string]any{{"column": "amount", "op": "in", "value": values}}}}},
	} {
		st, b := s.do(req[0].(string), req[1].(string), req[2])
		var e apiError
		if err := json.Unmarshal(b, &e); err != nil || st < 400 {
			t.Errorf("%s: %d %.300s", name, st, b)
			continue
		}
		if n := len(e.Error.Message); n > 2000 {
			t.Errorf("%s: a message of %d characters: %.300s", name, n, e.Error.Message)
		}
	}
}
