package duck_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/duck"
)

// TestTimeZoneIsUTC runs in a zone far from UTC: every connection of the
// database, including ones opened after Open returned, must write a
// TIMESTAMP WITH TIME ZONE in UTC, as the Spark engine does.
func TestTimeZoneIsUTC(t *testing.T) {
	t.Setenv("TZ", "Asia/Tokyo")
	ctx := context.Background()
	db, err := duck.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(3)
	for i := range 3 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var zone, text string
		if err := c.QueryRowContext(ctx, "SELECT current_setting('TimeZone'), CAST(TIMESTAMPTZ '2024-01-02 03:04:05+02' AS VARCHAR)").Scan(&zone, &text); err != nil {
			t.Fatal(err)
		}
		if zone != "UTC" || text != "2024-01-02 01:04:05+00" {
			t.Errorf("connection %d: zone %q, timestamp written %q; want UTC, 2024-01-02 01:04:05+00", i, zone, text)
		}
	}
}

// TestSameSQL checks, on a connection opened after Open returned, what
// Open keeps as DuckDB 1.5 had it (an all-NULL column is INTEGER, the
// arrow lambda) and what it takes from 2.0 (integer division by zero is an
// error that names the expression).
func TestSameSQL(t *testing.T) {
	ctx := context.Background()
	db, err := duck.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(2)
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var typ, arrow, word string
	if err := c.QueryRowContext(ctx, `SELECT (SELECT column_type FROM (DESCRIBE SELECT NULL AS x)),
		CAST(list_transform([1, 2], x -> x * 10) AS VARCHAR), CAST(list_transform([1, 2], lambda x: x * 10) AS VARCHAR)`).Scan(&typ, &arrow, &word); err != nil {
		t.Fatal(err)
	}
	if typ != "INTEGER" || arrow != "[10, 20]" || word != "[10, 20]" {
		t.Errorf("NULL column %s, arrow lambda %s, lambda word %s; want INTEGER, [10, 20], [10, 20]", typ, arrow, word)
	}
	var n any
	err = c.QueryRowContext(ctx, "SELECT v // d FROM (VALUES (7, 0)) t(v, d)").Scan(&n)
	if err == nil || !strings.Contains(err.Error(), "Division by zero") || !strings.Contains(err.Error(), "(v // d)") {
		t.Errorf("7 // 0 gave %v, error %v; want a division by zero naming (v // d)", n, err)
	}
}
