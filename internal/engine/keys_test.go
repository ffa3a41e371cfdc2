package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/file"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// TestKeyWarnings checks the duplicate and NULL key counts against counts
// made in Go, for keys in every order the fast path may see: rising,
// falling, unsorted, with neighbours equal and with duplicates apart, and
// across the two halves the fast path compares at once.
func TestKeyWarnings(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		keys [][2]any // (k1, k2); nil is NULL
		pk   int      // 1 or 2 key columns
	}{
		{"rising unique", [][2]any{{1, 0}, {2, 0}, {3, 0}}, 1},
		{"falling unique", [][2]any{{3, 0}, {2, 0}, {1, 0}}, 1},
		{"unsorted unique", [][2]any{{2, 0}, {3, 0}, {1, 0}}, 1},
		{"rising with neighbours equal", [][2]any{{1, 0}, {2, 0}, {2, 0}, {3, 0}}, 1},
		{"falling with neighbours equal", [][2]any{{3, 0}, {3, 0}, {1, 0}}, 1},
		{"duplicates apart", [][2]any{{1, 0}, {2, 0}, {1, 0}}, 1},
		{"rising around a NULL", [][2]any{{1, 0}, {nil, 0}, {1, 0}}, 1},
		{"only NULLs", [][2]any{{nil, 0}, {nil, 0}}, 1},
		{"single row", [][2]any{{7, 0}}, 1},
		{"empty", nil, 1},
		{"composite rising", [][2]any{{1, 1}, {1, 2}, {2, 1}}, 2},
		{"composite equal neighbours", [][2]any{{1, 1}, {1, 1}, {2, 1}}, 2},
		{"composite NULL part", [][2]any{{1, 1}, {1, nil}, {1, nil}, {1, 1}}, 2},
		{"each half rising, repeated across", [][2]any{{1, 0}, {2, 0}, {1, 0}, {2, 0}}, 1},
		{"equal at the halves' seam", [][2]any{{1, 0}, {2, 0}, {2, 0}, {3, 0}}, 1},
		{"each half falling, rising at the seam", [][2]any{{2, 0}, {1, 0}, {4, 0}, {3, 0}}, 1},
		{"rising across the seam", [][2]any{{1, 0}, {2, 0}, {3, 0}, {4, 0}, {5, 0}}, 1},
		{"NULLs at the seam", [][2]any{{1, 0}, {nil, 0}, {nil, 0}, {1, 0}}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := openTest(t)
			if _, err := e.exec(ctx, "CREATE TABLE t (k1 INTEGER, k2 INTEGER)"); err != nil {
				t.Fatal(err)
			}
			for _, k := range c.keys {
				if _, err := e.exec(ctx, "INSERT INTO t VALUES (?, ?)", k[0], k[1]); err != nil {
					t.Fatal(err)
				}
			}
			pk := []string{"k1", "k2"}[:c.pk]
			s := &side{name: "left", table: "t", pk: pk, spec: kalla.SourceSpec{Alias: "src"}, ids: int64(len(c.keys))}
			ws, err := e.keyWarnings(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			// The truth, counted in Go.
			seen := map[string]int{}
			var nulls int64
			for _, k := range c.keys {
				parts := k[:c.pk]
				if strings.Contains(fmt.Sprint(parts...), "<nil>") {
					nulls++
					continue
				}
				seen[fmt.Sprint(parts...)]++
			}
			var dupRows int64
			for _, n := range seen {
				if n > 1 {
					dupRows += int64(n)
				}
			}
			got := map[string]int64{}
			for _, w := range ws {
				got[w.Code] = w.Count
			}
			if got[kalla.WarnDuplicateKeys] != dupRows || got[kalla.WarnNullKeys] != nulls {
				t.Errorf("warnings %+v; want %d duplicate rows and %d NULL rows", ws, dupRows, nulls)
			}
		})
	}
}

// TestKeysOrderedHalves checks that the fast path proves keys in order
// through both halves and their seam, and refuses a repeat on either
// side of the seam or across it.
func TestKeysOrderedHalves(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		sql  string // the keys, in row order
		want bool
	}{
		{"rising", "SELECT i FROM range(1000) r(i)", true},
		{"falling", "SELECT 1000 - i FROM range(1000) r(i)", true},
		{"repeat across the seam", "SELECT CASE WHEN i = 600 THEN 100 ELSE i END FROM range(1000) r(i)", false},
		{"equal at the seam", "SELECT CASE WHEN i = 500 THEN 499 ELSE i END FROM range(1000) r(i)", false},
		{"halves rising, second below first", "SELECT CASE WHEN i < 500 THEN i + 1000 ELSE i END FROM range(1000) r(i)", false},
		{"repeat inside the first half", "SELECT CASE WHEN i = 10 THEN 9 ELSE i END FROM range(1000) r(i)", false},
		{"text rising by length first", "SELECT 'K' || i FROM range(1000) r(i)", true},
		{"text falling by length first", "SELECT 'K' || (1000 - i) FROM range(1000) r(i)", true},
		{"text by length first, repeat across the seam", "SELECT 'K' || CASE WHEN i = 600 THEN 100 ELSE i END FROM range(1000) r(i)", false},
		{"text by length first, then shorter", "SELECT 'K' || CASE WHEN i = 700 THEN 5 ELSE i END FROM range(1000) r(i)", false},
		{"text, the second half below the first", "SELECT 'K' || CASE WHEN i < 500 THEN i + 100 ELSE i END FROM range(1000) r(i)", false},
		{"text, distinct halves rising byte by byte across the seam", "SELECT 'K' || CASE WHEN i < 500 THEN i + 1000 ELSE i END FROM range(1000) r(i)", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := openTest(t)
			if _, err := e.exec(ctx, "CREATE TABLE t AS SELECT * FROM ("+c.sql+") r(k)"); err != nil {
				t.Fatal(err)
			}
			s := &side{name: "left", table: "t", pk: []string{"k"}, ids: 1000}
			var err error
			if s.cols, err = e.describe(ctx, "t"); err != nil {
				t.Fatal(err)
			}
			got, err := e.keysOrdered(ctx, s, qi("k"), qi("k")+" IS NULL")
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("keysOrdered = %v, want %v", got, c.want)
			}
		})
	}
}

// TestKeysProvenBySource stages real CSV files: a key the file source
// proved distinct while it read it (connector.DistinctNoter) skips the
// search for repeats, and its NULLs are still counted; a proof of another
// column than the key, or a file that proves nothing, leaves the search to
// DuckDB, which finds the repeats.
func TestKeysProvenBySource(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name, text, pk, distinct string
		dups, nulls              int64
	}{
		{"sorted key with a NULL", "ref,name\nA,x\n,y\nB,z\n", "ref", "ref", 0, 1},
		{"repeated key", "ref,name\nA,x\nB,y\nA,z\n", "ref", "", 2, 0},
		{"another column proven", "ref,name\nA,x\nB,x\nC,y\n", "name", "ref", 2, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := openTest(t)
			path := filepath.Join(t.TempDir(), "src.csv")
			if err := os.WriteFile(path, []byte(c.text), 0o644); err != nil {
				t.Fatal(err)
			}
			src, err := file.Open(ctx, path, file.Options{Type: kalla.SourceCSV})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			s := &side{name: "left", table: "__kalla_left", stage: StageLeft, names: sideNames{view: "left_src", alias: "src"},
				spec: kalla.SourceSpec{Alias: "src", PrimaryKey: []string{c.pk}}}
			if err := e.stageSide(ctx, s, src, nil, func(int64) {}); err != nil {
				t.Fatal(err)
			}
			if s.distinct != c.distinct {
				t.Errorf("distinct = %q, want %q", s.distinct, c.distinct)
			}
			ws, err := e.keyWarnings(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			var dups, nulls int64
			for _, w := range ws {
				switch w.Code {
				case kalla.WarnDuplicateKeys:
					dups = w.Count
				case kalla.WarnNullKeys:
					nulls = w.Count
				}
			}
			if dups != c.dups || nulls != c.nulls {
				t.Errorf("warnings %+v: %d duplicate and %d NULL rows, want %d and %d", ws, dups, nulls, c.dups, c.nulls)
			}
			if want := c.dups == 0 && c.nulls == 0; s.uniqueKey != want {
				t.Errorf("uniqueKey = %v, want %v", s.uniqueKey, want)
			}
		})
	}
}
