package spark_test

import (
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/spark"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// TestConcurrentRunsOwnTheirData: two runs over the same source at once
// each see the source as it was when they read it, and the first one's
// cleanup leaves the other's data alone. Spark's cache is the server's,
// shared by every session, and finds cached data by plan: two runs reading
// the same file or table make the same plan. Run A stages its left side
// and waits (in its progress callback) while A4 and A5 come to match their
// payments (the file gains them; the table's rows change their amounts)
// and run B runs start to end; B must match them (not read A's cached
// rows), and A must finish on the rows it read (not read them again when
// B's cleanup drops what they share).
func TestConcurrentRunsOwnTheirData(t *testing.T) {
	e := newEngine(t)
	right := filepath.Join(t.TempDir(), "right.csv")
	if err := os.WriteFile(right, []byte("ref,paid\nA1,10.00\nA2,20.00\nA4,40.00\nA5,50.00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		// source makes the left source, where A1 and A2 match, and
		// returns its URI and a function making A4 and A5 match too.
		source func(t *testing.T) (string, func())
		// left is how many records the left side has before and after.
		left [2]int64
	}{
		{"csv", func(t *testing.T) (string, func()) {
			path := filepath.Join(t.TempDir(), "left.csv")
			write := func(data string) {
				if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
					t.Error(err)
				}
			}
			write("id,amount\nA1,10.00\nA2,20.00\nA3,30.00\n")
			return path, func() { write("id,amount\nA1,10.00\nA2,20.00\nA3,30.00\nA4,40.00\nA5,50.00\n") }
		}, [2]int64{3, 5}},
		{"postgres", func(t *testing.T) (string, func()) {
			uri := testenv.Postgres(t)
			db, err := sql.Open("pgx", uri)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if _, err := db.ExecContext(t.Context(), `CREATE TABLE ledger (id text PRIMARY KEY, amount numeric(18,2));
INSERT INTO ledger VALUES ('A1', 10), ('A2', 20), ('A3', 30), ('A4', 99), ('A5', 99)`); err != nil {
				t.Fatal(err)
			}
			return uri + "?table=ledger", func() {
				// The same rows, keys and bounds: only the amounts change.
				if _, err := db.ExecContext(t.Context(), `UPDATE ledger SET amount = CASE id WHEN 'A4' THEN 40 ELSE 50 END WHERE id IN ('A4', 'A5')`); err != nil {
					t.Error(err)
				}
			}
		}, [2]int64{5, 5}},
	} {
		t.Run(c.name, func(t *testing.T) {
			left, grow := c.source(t)
			b, err := json.Marshal(map[string]any{
				"recipe_id": "own-data-" + c.name,
				"match_sql": "SELECT l.id, r.ref FROM left_src l JOIN right_src r ON r.ref = l.id AND r.paid = l.amount",
				"sources": map[string]any{
					"left":  map[string]any{"alias": "ledger", "uri": left, "primary_key": []string{"id"}},
					"right": map[string]any{"alias": "bank", "uri": right, "primary_key": []string{"ref"}},
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			rec, err := kalla.ParseRecipe(b)
			if err != nil {
				t.Fatal(err)
			}
			var once sync.Once
			var sumB *kalla.Summary
			var errB error
			progress := func(ev engine.Event) {
				if ev.Stage != engine.StageLeft || !ev.Done {
					return
				}
				once.Do(func() {
					grow()
					sumB, errB = e.Execute(t.Context(), spark.Job{Recipe: rec, OutDir: t.TempDir(), RunID: "b"})
				})
			}
			sumA, errA := e.Execute(t.Context(), spark.Job{Recipe: rec, OutDir: t.TempDir(), RunID: "a", Progress: progress})
			if errB != nil {
				t.Fatalf("run B: %v", errB)
			}
			if sumB == nil {
				t.Fatal("run B never ran: run A sent no event for its staged left side")
			}
			if sumB.LeftCount != c.left[1] || sumB.MatchedCount != 4 || sumB.UnmatchedLeftCount != c.left[1]-4 || sumB.UnmatchedRightCount != 0 {
				t.Errorf("run B: %d left records, %d pairs, %d and %d unmatched; want %d, 4, %d, 0 (the source as B read it)",
					sumB.LeftCount, sumB.MatchedCount, sumB.UnmatchedLeftCount, sumB.UnmatchedRightCount, c.left[1], c.left[1]-4)
			}
			if errA != nil {
				t.Fatalf("run A: %v", errA)
			}
			if sumA.LeftCount != c.left[0] || sumA.MatchedCount != 2 || sumA.UnmatchedLeftCount != c.left[0]-2 || sumA.UnmatchedRightCount != 2 {
				t.Errorf("run A: %d left records, %d pairs, %d and %d unmatched; want %d, 2, %d, 2 (the source as A read it)",
					sumA.LeftCount, sumA.MatchedCount, sumA.UnmatchedLeftCount, sumA.UnmatchedRightCount, c.left[0], c.left[0]-2)
			}
		})
	}
}
