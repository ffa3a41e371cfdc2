package engine_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

// TestMatchedKeys checks the identity columns of matched pairs for select
// lists that carry the keys themselves (reused, not stored twice), under a
// renamed duplicate name, under an alias, as a look-alike expression, or
// not at all, and that the SQL's own ORDER BY and LIMIT keep their meaning.
// The truth is worked by hand: P2 pays L1 and P1 pays L2.
func TestMatchedKeys(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"left.csv":  "id,amount\nL1,10\nL2,20\nL3,30\n",
		"right.csv": "id,ref,amount\nP1,L2,20\nP2,L1,10\nP3,L9,5\n",
	}
	writeFiles(t, dir, files)
	both := [][]string{{"L1", "P2", "1", "2"}, {"L2", "P1", "2", "1"}}
	cases := []struct {
		name, sql string
		want      [][]string // _left_id, _right_id, _left_row, _right_row
	}{
		{"both keys, same name", "SELECT r.id, l.id, l.amount FROM left_src l JOIN right_src r ON r.ref = l.id", both},
		{"aliased keys", "SELECT l.id AS inv, r.id AS pay FROM left_src l JOIN right_src r ON r.ref = l.id", both},
		{"look-alike expression", "SELECT lower(l.id) AS id, r.amount FROM left_src l JOIN right_src r ON r.ref = l.id", both},
		{"star", "SELECT * FROM left_src l JOIN right_src r ON r.ref = l.id", nil},
		{"one key", "SELECT l.id FROM lefts l JOIN rights r ON r.ref = l.id", both},
		{"own order and limit", "SELECT l.id, r.id FROM left_src l JOIN right_src r ON r.ref = l.id ORDER BY l.id DESC LIMIT 1", both[1:]},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			recipe := filepath.Join(dir, fmt.Sprintf("recipe%d.json", i))
			rec := map[string]any{"recipe_id": "keys", "match_sql": c.sql, "sources": map[string]any{
				"left":  map[string]any{"alias": "lefts", "uri": filepath.Join(dir, "left.csv"), "primary_key": []string{"id"}},
				"right": map[string]any{"alias": "rights", "uri": filepath.Join(dir, "right.csv"), "primary_key": []string{"id"}}}}
			data, _ := json.Marshal(rec)
			if err := os.WriteFile(recipe, data, 0o644); err != nil {
				t.Fatal(err)
			}
			r := runKalla(t, recipe)
			if r.code != 0 {
				t.Fatalf("kalla run exited %d: %s", r.code, r.stderr)
			}
			m := readCSV(t, filepath.Join(r.out, "matched.csv"))
			var got [][]string
			for _, row := range m.rows {
				var ids []string
				for _, col := range []string{"_left_id", "_right_id", "_left_row", "_right_row"} {
					k := slices.Index(m.header, col)
					if k < 0 {
						t.Fatalf("matched.csv lacks %s: %v", col, m.header)
					}
					ids = append(ids, row[k])
				}
				got = append(got, ids)
			}
			want := c.want
			if want == nil {
				want = both
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("matched identities = %v, want %v (header %v)", got, want, m.header)
			}
			// _rule is written from an ENUM, which Parquet must still
			// store as plain text for every reader.
			db, err := sql.Open("duckdb", "")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var typ, conv string
			err = db.QueryRow("SELECT type, converted_type FROM parquet_schema(?) WHERE name = '_rule'", filepath.Join(r.out, "matched.parquet")).Scan(&typ, &conv)
			if err != nil || typ != "BYTE_ARRAY" || conv != "UTF8" {
				t.Errorf("_rule is stored as %s/%s (%v), want BYTE_ARRAY/UTF8", typ, conv, err)
			}
		})
	}
}
