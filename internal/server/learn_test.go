package server_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kalla-recon/kalla/internal/exceptions"
	"github.com/kalla-recon/kalla/internal/exceptions/exctest"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/learn"
	"github.com/kalla-recon/kalla/internal/server"
)

// TestLearnAndEvidenceOverHTTP drives both halves of issue 15's last
// points through a real server on each store: three manual matches on a
// run whose recipe misses payments quoting invoices without "INV-", a
// learned proposal checked against the answer worked out by hand
// (exctest.InvoicesCSV: 2 open pairs, INV-1005~P5 and INV-1006~P6), its
// acceptance (a new recipe version, an audit entry), then the run's
// evidence zip downloaded by a viewer, every file's SHA-256 checked against
// the manifest and the outputs against summary.json, and an audit row
// changed in the store behind Kalla's back named in the next export.
func TestLearnAndEvidenceOverHTTP(t *testing.T) {
	forEachStore(t, func(t *testing.T, databaseURL string) {
		s := startServer(t, func(c *server.Config) {
			c.DatabaseURL = databaseURL
			c.ApprovalAmount = "1000000"
		})
		for name, body := range exctest.LearnFiles {
			writeFile(t, s.dataDir, name, body)
		}
		rec := exctest.LearnRecipe(s.dataDir)
		s.call("POST", "/api/recipes", rec, 201, nil)
		id := s.startRun(map[string]any{"recipe_id": rec.RecipeID})
		s.waitRun(id, 2*time.Minute, "completed", func(r run) bool { return r.Status == "completed" })
		var p struct {
			Items []kalla.ExceptionItem `json:"items"`
			Total int64                 `json:"total"`
		}
		for deadline := time.Now().Add(30 * time.Second); p.Total == 0 && time.Now().Before(deadline); {
			s.call("GET", "/api/exceptions?run_id="+id+"&limit=50", nil, 200, &p)
		}
		key := map[string]int64{}
		for _, it := range p.Items {
			key[it.Key] = it.ID
		}
		s.wantError("POST", "/api/recipes/learn-test/learn", nil, 400, kalla.EINVALID, "nobody has matched records by hand")
		for _, pair := range [][2]string{{"INV-1002", "P2"}, {"INV-1003", "P3"}, {"INV-1004", "P4"}} {
			body := map[string]any{"action": "match", "items": []int64{key[pair[0]], key[pair[1]]}, "actor": "ann"}
			if pair[0] == "INV-1004" {
				body["code"] = "bank fee"
			}
			s.call("POST", "/api/exceptions/actions", body, 200, nil)
		}

		var prop learn.Proposal
		s.call("POST", "/api/recipes/learn-test/learn?run_id="+id, nil, 200, &prop)
		var got []string
		for _, pp := range prop.Impact.Pairs {
			got = append(got, pp.Left+"~"+pp.Right+":"+pp.Effect)
		}
		slices.Sort(got)
		want := []string{"INV-1002~P2:confirms", "INV-1003~P3:confirms", "INV-1004~P4:confirms", "INV-1005~P5:match", "INV-1006~P6:match"}
		if prop.Impact.WouldMatch != 2 || !slices.Equal(got, want) || len(prop.Examples) != 3 {
			t.Fatalf("proposal impact %+v, pairs %v, want %v", prop.Impact, got, want)
		}
		diff := strings.Join(prop.Diff, "\n")
		if !strings.Contains(diff, "invoice_id (without ^INV-) = reference") || !strings.Contains(diff, "amount within 1 % of amount") {
			t.Fatalf("diff:\n%s", diff)
		}
		// Nothing saved yet.
		var stored kalla.StoredRecipe
		s.call("GET", "/api/recipes/learn-test", nil, 200, &stored)
		if len(stored.Recipe.Rules) != 1 {
			t.Fatalf("recipe changed before acceptance: %+v", stored.Recipe.Rules)
		}
		s.wantError("POST", "/api/recipes/learn-test/learn/accept", map[string]any{"proposal": "0123456789abcdef", "run_id": id, "actor": "carol"}, 409, kalla.ECONFLICT, "no longer current")
		var acc learn.Accepted
		s.call("POST", "/api/recipes/learn-test/learn/accept", map[string]any{"proposal": prop.ID, "run_id": id, "actor": "carol"}, 200, &acc)
		s.call("GET", "/api/recipes/learn-test", nil, 200, &stored)
		if len(stored.Recipe.Rules) != len(prop.After.Rules) || acc.Audit.Action != learn.ActLearn || acc.Audit.RunID != id {
			t.Fatalf("after acceptance: rules %d, audit %+v", len(stored.Recipe.Rules), acc.Audit)
		}

		// The evidence, downloaded by a viewer.
		// (The first token closes the open loopback server.)
		var adminTok, viewer newToken
		s.call("POST", "/api/tokens", map[string]string{"name": "root", "role": "admin"}, 201, &adminTok)
		s.as(adminTok.Token).call("POST", "/api/tokens", map[string]string{"name": "vera", "role": "viewer"}, 201, &viewer)
		v := s.as(viewer.Token)
		files := evidence(t, v, id)
		var m exceptions.EvidenceManifest
		if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
			t.Fatal(err)
		}
		if len(m.Files) != len(files)-1 || !m.OutputsVerified || !m.AuditOK {
			t.Fatalf("manifest lists %d of %d files: %+v", len(m.Files), len(files)-1, m)
		}
		for _, f := range m.Files {
			sum := sha256.Sum256(files[f.Name])
			if hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(files[f.Name])) != f.Bytes {
				t.Fatalf("%s does not match the manifest", f.Name)
			}
		}
		var sum kalla.Summary
		if err := json.Unmarshal(files["summary.json"], &sum); err != nil {
			t.Fatal(err)
		}
		for _, o := range sum.Outputs {
			h := sha256.Sum256(files["outputs/"+o.Name])
			if hex.EncodeToString(h[:]) != o.SHA256 {
				t.Fatalf("outputs/%s does not match summary.json", o.Name)
			}
		}
		var audit exceptions.EvidenceAuditFile
		if err := json.Unmarshal(files["audit.json"], &audit); err != nil {
			t.Fatal(err)
		}
		// 6 item entries (three matches of two records) and the learned rule.
		if len(audit.Entries) != 7 || !audit.EntriesIntact || !audit.Verification.OK {
			t.Fatalf("audit.json: %d entries, intact %v, %+v", len(audit.Entries), audit.EntriesIntact, audit.Verification)
		}
		for i, e := range audit.Entries {
			if e.ComputeHash() != e.Hash || i > 0 && e.PrevHash != audit.Entries[i-1].Hash {
				t.Fatalf("entry %d does not chain", e.Seq)
			}
		}
		var dec struct {
			Items []exceptions.EvidenceDecision `json:"items"`
		}
		if err := json.Unmarshal(files["decisions.json"], &dec); err != nil {
			t.Fatal(err)
		}
		matched := 0
		for _, d := range dec.Items {
			if d.Status == kalla.ExcMatched {
				matched++
				if d.Decision != "match" || d.Actor != "ann" || d.MatchGroup == "" {
					t.Fatalf("decision: %+v", d)
				}
			}
		}
		if len(dec.Items) != len(p.Items) || matched != 6 {
			t.Fatalf("decisions: %d items, %d matched", len(dec.Items), matched)
		}
		for name, b := range files {
			if strings.Contains(string(b), viewer.Token) || strings.Contains(string(b), adminTok.Token) || databaseURL != "" && strings.Contains(string(b), databaseURL) {
				t.Fatalf("%s holds a credential", name)
			}
		}

		// An audit row changed behind Kalla's back: the next export says
		// which.
		seq := audit.Entries[2].Seq
		tamper(t, databaseURL, s.dataDir, "UPDATE audit_log SET actor = 'mallory' WHERE seq = "+strconv.FormatInt(seq, 10))
		files = evidence(t, v, id)
		if err := json.Unmarshal(files["audit.json"], &audit); err != nil {
			t.Fatal(err)
		}
		if audit.Verification.OK || audit.Verification.FirstBad != seq || audit.EntriesIntact || !slices.Equal(audit.BadEntries, []int64{seq}) {
			t.Fatalf("after tampering with entry %d: %+v, bad %v", seq, audit.Verification, audit.BadEntries)
		}
		if err := json.Unmarshal(files["manifest.json"], &m); err != nil || m.AuditOK {
			t.Fatalf("manifest after tampering: %+v %v", m, err)
		}
	})
}

// evidence downloads a run's evidence zip and returns its files by name.
func evidence(t *testing.T, s *testServer, id string) map[string][]byte {
	t.Helper()
	resp, err := s.client.Do(s.request("GET", "/api/runs/"+id+"/evidence.zip", nil))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("evidence: %d %s %v", resp.StatusCode, body, err)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = b
	}
	return out
}

// tamper drops the audit log's guard and runs q on the store directly.
func tamper(t *testing.T, databaseURL, dataDir, q string) {
	t.Helper()
	ctx := context.Background()
	if strings.HasPrefix(databaseURL, "postgres") {
		conn, err := pgx.Connect(ctx, databaseURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		for _, stmt := range []string{"ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change", q} {
			if _, err := conn.Exec(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	// The server is still up and may be writing (its workers' leases):
	// wait for its lock as the store does, instead of failing at once
	// with SQLITE_BUSY.
	db, err := sql.Open("sqlite", filepath.Join(dataDir, "kalla.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{"DROP TRIGGER audit_log_no_update", q} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
}
