package ui_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// slowLeftRows is how many rows the slow left source sends before it
// stops: more than the 65,536 after which the engine reports progress.
const slowLeftRows = 70_000

// TestSlowLeftSourceProgress runs a recipe whose left source (a
// PostgreSQL view) sends its first 70,000 rows and then waits on a lock
// the test holds, while the right one (another view, of three rows) is
// let through to the end once the left has reported rows.
// The run page, at 1280 and 390 px, must say that the left source is
// being read (never the right one, which finished long before), show each
// side's rows staged so far, and count the real time the run has been
// running, ticking on; once the lock is released the run completes and the
// page shows the outcome. Every wait is on what the page shows.
func TestSlowLeftSourceProgress(t *testing.T) {
	chromium(t)
	for _, width := range []int64{1280, 390} {
		t.Run(itoa(width), func(t *testing.T) { slowLeftRun(t, width) })
	}
}

func slowLeftRun(t *testing.T, width int64) {
	ctx := context.Background()
	pg := testenv.Postgres(t)
	admin, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	// The gates are STABLE, so counting a view (which the runner does
	// first) does not call them; staging reads the column and waits for
	// an advisory lock this session holds: the left view after its first
	// slowLeftRows rows, the right one after two of its three rows.
	for _, q := range []string{
		`CREATE TABLE ledger AS SELECT 'INV-' || g AS invoice_id, (g % 1000)::numeric(12,2) AS amount FROM generate_series(1, 100000) g`,
		`CREATE FUNCTION gate(id text, after int, lock int) RETURNS text LANGUAGE plpgsql STABLE AS $$
		 BEGIN
		   IF substr(id, 5)::int > after THEN PERFORM pg_advisory_xact_lock_shared(lock); END IF;
		   RETURN id;
		 END $$`,
		`CREATE VIEW slow_ledger AS SELECT gate(invoice_id, ` + itoaPlain(slowLeftRows) + `, 7714) AS invoice_id, amount FROM ledger`,
		`CREATE TABLE bank (payment_id text, reference_number text, amount numeric(12,2))`,
		`INSERT INTO bank VALUES ('PAY-1', 'INV-1', 1.00), ('PAY-2', 'INV-2', 2.00), ('PAY-3', 'INV-999999', 3.00)`,
		`CREATE VIEW slow_bank AS SELECT gate(payment_id, 2, 7715) AS payment_id, reference_number, amount FROM bank`,
		`SELECT pg_advisory_lock(7714)`,
		`SELECT pg_advisory_lock(7715)`,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	held := map[int]bool{7714: true, 7715: true}
	release := func(lock int) {
		if held[lock] {
			held[lock] = false
			if _, err := admin.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lock); err != nil {
				t.Errorf("release lock %d: %v", lock, err)
			}
		}
	}
	defer release(7714)
	defer release(7715)

	table := func(name string) string {
		u, err := url.Parse(pg)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("table", name)
		u.RawQuery = q.Encode()
		return u.String()
	}
	rec := &kalla.Recipe{
		RecipeID: "slow-left",
		MatchSQL: "SELECT l.invoice_id, r.payment_id FROM left_src l JOIN right_src r ON l.invoice_id = r.reference_number",
		Sources: kalla.Sources{
			Left:  kalla.SourceSpec{Alias: "ledger", Type: kalla.SourcePostgres, URI: table("slow_ledger"), PrimaryKey: []string{"invoice_id"}},
			Right: kalla.SourceSpec{Alias: "bank", Type: kalla.SourcePostgres, URI: table("slow_bank"), PrimaryKey: []string{"payment_id"}},
		},
	}
	dir := t.TempDir()
	s := startServer(t, nil, dir)
	apiCall(t, s.url, "", "POST", "/api/recipes", rec, nil)
	b := newTab(t, s.url)
	b.do("set the window width", emulate(width))
	run := queueRun(t, s, map[string]string{"recipe_id": rec.RecipeID})
	b.open("/runs/" + run)

	// Both sides are being read; the left has sent its first rows.
	b.waitText("#p-left", "65,536", 60*time.Second)
	b.waitText("#p-stage", "Reading the left source", 10*time.Second)
	b.waitText("#p-left-state", "reading", 10*time.Second)
	// The right side finishes while the left is still held: the page goes
	// on saying that the left source is being read.
	release(7715)
	b.waitText("#p-right", "3", 60*time.Second)
	b.waitText("#p-stage", "Reading the left source", 10*time.Second)
	b.waitText("#p-left-state", "reading", 10*time.Second)
	if got := b.text("#p-stage"); strings.Contains(got, "right") {
		t.Errorf("stage while the left source is slow: %q", got)
	}
	// The elapsed time is the run's, and it goes on counting.
	first := b.text("#elapsed")
	b.waitUntil("the elapsed time ticks on from "+first, `(() => { const e = document.getElementById("elapsed"); return e && e.textContent !== `+js(first)+` && /\d+(\.\d)? s$/.test(e.textContent) ? e.textContent : null; })()`, 30*time.Second)
	var api struct {
		Stage     string `json:"stage"`
		LeftRows  int64  `json:"left_rows_staged"`
		RightRows int64  `json:"right_rows_staged"`
	}
	apiCall(t, s.url, "", "GET", "/api/runs/"+run, nil, &api)
	if api.Stage != "stage_left" || api.RightRows != 3 || api.LeftRows < 65_536 {
		t.Errorf("the API says stage %q, left %d rows, right %d rows while the left source is held", api.Stage, api.LeftRows, api.RightRows)
	}
	if wide := b.scrollWidth(); wide > width {
		t.Errorf("the run page is %d px wide in a %d px window", wide, width)
	}

	release(7714)
	b.waitText("main h2", "Result", 120*time.Second)
	b.waitText("#c-matched", "2", 10*time.Second)
	b.waitText(".meta", "took", 10*time.Second)
}
