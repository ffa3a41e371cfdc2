package engine_test

import (
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/duck"
)

// TestTimeZoneIsUTC runs a reconciliation on a machine set to Tokyo (a
// child process with TZ=Asia/Tokyo, since DuckDB reads the zone when a
// database opens). A TIMESTAMP WITH TIME ZONE must be written in UTC and
// cast to a DATE in UTC, as the Spark engine does: 20:00 UTC on 1 January
// is 05:00 on 2 January in Tokyo, so in the machine's zone the pair below
// would not match and the file would say +09.
func TestTimeZoneIsUTC(t *testing.T) {
	if os.Getenv("KALLA_TEST_TZ_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTimeZoneIsUTC$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "KALLA_TEST_TZ_CHILD=1", "TZ=Asia/Tokyo")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestTimeZoneIsUTC") {
			t.Fatalf("the run under TZ=Asia/Tokyo failed (%v):\n%s", err, out)
		}
		return
	}
	// The machine's zone is really Tokyo: a database opened without
	// duck.Open takes it.
	plain, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	var zone string
	err = plain.QueryRow("SELECT current_setting('TimeZone')").Scan(&zone)
	plain.Close()
	if err != nil || zone != "Asia/Tokyo" {
		t.Fatalf("DuckDB's zone without duck.Open = %q (%v), want Asia/Tokyo: the test would prove nothing", zone, err)
	}

	dir := t.TempDir()
	db, err := duck.Open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"COPY (SELECT 'L1' AS id, TIMESTAMPTZ '2024-01-01 20:00:00+00' AS ts) TO '" + filepath.Join(dir, "left.parquet") + "' (FORMAT parquet)",
		"COPY (SELECT 'R1' AS id, DATE '2024-01-01' AS d) TO '" + filepath.Join(dir, "right.parquet") + "' (FORMAT parquet)",
	} {
		if _, err := db.Exec(q); err != nil {
			db.Close()
			t.Fatal(err)
		}
	}
	db.Close()
	rec := map[string]any{"recipe_id": "tz",
		"match_sql": "SELECT l.id, r.id AS rid, l.ts FROM left_src l JOIN right_src r ON CAST(l.ts AS DATE) = r.d",
		"sources": map[string]any{
			"left":  map[string]any{"alias": "lefts", "uri": filepath.Join(dir, "left.parquet"), "primary_key": []string{"id"}},
			"right": map[string]any{"alias": "rights", "uri": filepath.Join(dir, "right.parquet"), "primary_key": []string{"id"}}}}
	data, _ := json.Marshal(rec)
	recipe := filepath.Join(dir, "recipe.json")
	if err := os.WriteFile(recipe, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runKalla(t, recipe)
	if r.code != 0 {
		t.Fatalf("kalla run exited %d: %s", r.code, r.stderr)
	}
	m := readCSV(t, filepath.Join(r.out, "matched.csv"))
	want := [][]string{{"L1", "R1", "2024-01-01 20:00:00+00"}}
	var got [][]string
	for _, row := range m.rows {
		got = append(got, row[:3])
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("matched (id, rid, ts) = %v, want %v (header %v)", got, want, m.header)
	}
}
