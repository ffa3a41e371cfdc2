package server_test

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/exceptions/exctest"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/server"
)

// TestExceptionsOverHTTP works a run's exceptions through the API of a real
// server on each store: the items the run recorded, concurrent accepts of
// one pair (one 200, the rest 409), a manual match with its sums, four
// eyes, the run's summary, the CSV round trip and audit verify.
func TestExceptionsOverHTTP(t *testing.T) {
	forEachStore(t, func(t *testing.T, databaseURL string) {
		s := startServer(t, func(c *server.Config) {
			c.DatabaseURL = databaseURL
			c.ApprovalAmount = "1000"
		})
		writeFile(t, s.dataDir, "left.csv", exctest.LeftCSV)
		writeFile(t, s.dataDir, "right.csv", exctest.RightCSV)
		rec := exctest.Recipe(s.dataDir)
		id := s.startRun(map[string]any{"recipe": rec})
		s.waitRun(id, 2*time.Minute, "completed", func(r run) bool { return r.Status == "completed" })
		type page struct {
			Items []kalla.ExceptionItem `json:"items"`
			Total int64                 `json:"total"`
		}
		var p page
		// The items are recorded right after the run is (runner hook).
		for deadline := time.Now().Add(30 * time.Second); p.Total == 0 && time.Now().Before(deadline); {
			s.call("GET", "/api/exceptions?run_id="+id+"&limit=50", nil, 200, &p)
		}
		if p.Total != 10 {
			t.Fatalf("%d items, want 10", p.Total)
		}
		key := map[string]int64{}
		for _, it := range p.Items {
			key[it.Key] = it.ID
		}
		s.call("GET", "/api/exceptions?run_id="+id+"&side=pair&rule=tol10&max_difference=5", nil, 200, &p)
		if p.Total != 1 || p.Items[0].Key != "I3" {
			t.Fatalf("filtered pairs: %+v", p)
		}
		// recipe_id keeps the items of the runs of one recipe (the UI's
		// recipe filter).
		for recipe, want := range map[string]int64{rec.RecipeID: 10, "no-such-recipe": 0} {
			s.call("GET", "/api/exceptions?limit=1&recipe_id="+recipe, nil, 200, &p)
			if p.Total != want {
				t.Errorf("recipe_id=%s: %d items, want %d", recipe, p.Total, want)
			}
		}
		s.wantError("POST", "/api/exceptions/actions", map[string]any{"action": "accept", "items": []int64{key["I3"]}}, 400, kalla.EINVALID, "actor is required")

		// Six people accept the same pair at once.
		var wg sync.WaitGroup
		codes := make([]int, 6)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := fmt.Sprintf(`{"action":"accept","items":[%d],"actor":"p%d"}`, key["I3"], i)
				req := s.request("POST", "/api/exceptions/actions", body)
				resp, err := s.client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				codes[i] = resp.StatusCode
			}()
		}
		wg.Wait()
		if n200, n409 := count(codes, 200), count(codes, 409); n200 != 1 || n409 != 5 {
			t.Fatalf("concurrent accepts answered %v, want one 200 and five 409", codes)
		}

		var res struct {
			Action kalla.ExceptionAction `json:"action"`
			Match  map[string]string     `json:"match"`
		}
		s.wantError("POST", "/api/exceptions/actions", map[string]any{"action": "match", "actor": "ann", "items": []int64{key["I9"], key["P9"]}},
			400, kalla.EINVALID, "differ by -1.00", "tolerance 0.01")
		s.call("POST", "/api/exceptions/actions", map[string]any{"action": "match", "actor": "ann", "code": "bank fee",
			"items": []int64{key["I9"], key["P9"]}}, 200, &res)
		if res.Action.Result != "pending" || res.Match["difference"] != "-1.00" || res.Match["left_sum"] != "2000.00" {
			t.Fatalf("match: %+v", res)
		}
		s.wantError("POST", "/api/exceptions/actions", map[string]any{"action": "approve", "actor": "ann", "items": []int64{key["I9"]}},
			403, kalla.EFOUREYES, "prepared by ann")
		s.call("POST", "/api/exceptions/actions", map[string]any{"action": "approve", "actor": "cid", "items": []int64{key["I9"], key["P9"]}}, 200, &res)

		var sum map[string]json.RawMessage
		s.call("GET", "/api/runs/"+id+"/exceptions/summary", nil, 200, &sum)
		if !strings.Contains(string(sum["matched_by_hand"]), `"USD":"3999.00"`) || string(sum["matched_by_rule"]) != "2" {
			t.Errorf("summary: %s %s", sum["matched_by_hand"], sum["matched_by_rule"])
		}

		resp, err := s.client.Do(s.request("GET", "/api/runs/"+id+"/exceptions.csv?side=left", nil))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(resp.Body).ReadAll()
		resp.Body.Close()
		// I5, I7, I8, then their total: 100.00 + 1500.00 + 50.00 EUR.
		if err != nil || resp.StatusCode != 200 || len(rows) != 5 || rows[4][3] != "total" || rows[4][7] != "1650.00" || rows[4][10] != "EUR" {
			t.Fatalf("export: %d %d rows %v %v", resp.StatusCode, len(rows), rows, err)
		}
		for _, r := range rows[1:] {
			if r[5] == "I5" {
				r[17], r[18] = "resolve", "timing difference"
			}
			if r[5] == "I8" {
				r[0] = "424242"
				r[17] = "reject"
			}
		}
		var b strings.Builder
		csv.NewWriter(&b).WriteAll(rows)
		st, body := s.do("POST", "/api/exceptions/import?actor=ann", []byte(b.String()))
		if st != 400 || !strings.Contains(string(body), `"code":"not_found"`) || !strings.Contains(string(body), `"not applied"`) {
			t.Fatalf("import with an unknown id: %d %s", st, body)
		}
		rows[3][17] = ""
		b.Reset()
		csv.NewWriter(&b).WriteAll(rows)
		var imp struct {
			Applied bool `json:"applied"`
		}
		s.call("POST", "/api/exceptions/import?actor=ann", []byte(b.String()), 200, &imp)
		if !imp.Applied {
			t.Fatal("import not applied")
		}

		var detail struct {
			kalla.ExceptionItem
			History []kalla.AuditEntry `json:"history"`
		}
		s.call("GET", fmt.Sprintf("/api/exceptions/%d", key["I9"]), nil, 200, &detail)
		if detail.Status != "matched" || len(detail.History) != 2 || detail.History[1].Actor != "cid" {
			t.Fatalf("I9: %+v", detail)
		}
		var v struct {
			OK      bool  `json:"ok"`
			Entries int64 `json:"entries"`
		}
		s.call("GET", "/api/audit/verify", nil, 200, &v)
		if !v.OK || v.Entries != 6 {
			t.Fatalf("verify: %+v", v)
		}
	})
}

func count(codes []int, want int) int {
	n := 0
	for _, c := range codes {
		if c == want {
			n++
		}
	}
	return n
}
