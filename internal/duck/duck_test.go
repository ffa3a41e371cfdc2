package duck_test

import (
	"context"
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
