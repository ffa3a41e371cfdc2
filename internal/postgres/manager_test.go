package postgres_test

import (
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/dbpool"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/sources"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// TestManager opens Postgres sources the way the server and the CLI do.
func TestManager(t *testing.T) {
	uri := testenv.Postgres(t)
	run(t, uri, `CREATE TABLE invoices AS SELECT g AS id, (g * 1.25)::numeric(12,2) AS amount FROM generate_series(1, 50) g`)
	mgr := sources.New(sources.Config{Pools: dbpool.Options{MaxConns: 2}})
	ctx := testCtx(t)
	for _, u := range []string{withTable(t, uri, "invoices"), strings.Replace(withTable(t, uri, "invoices"), "postgres://", "postgresql://", 1)} {
		src, err := mgr.OpenURI(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		pv, err := connector.Load(ctx, src, "invoices", []kalla.Filter{{Column: "amount", Op: kalla.OpGte, Values: []kalla.Scalar{{Text: "50", IsNumber: true}}}}, 5)
		src.Close()
		if err != nil || pv.TotalRows != 11 || pv.PreviewRows != 5 {
			t.Fatalf("Load = %+v, %v", pv, err)
		}
	}
	if st := mgr.PoolStats(); len(st) != 1 || st[0].MaxOpen > 2 || st[0].Leases != 0 || strings.Contains(st[0].Source, "table=") {
		t.Errorf("pool stats %+v", st)
	}
	_, err := mgr.Open(ctx, kalla.SourceSpec{URI: withTable(t, uri, "invoices"), Schema: map[string]string{"amount": "DOUBLE"}}, "")
	if kalla.ErrorCode(err) != kalla.EINVALID {
		t.Errorf("schema override on a table: %v", err)
	}
	src, err := mgr.Open(ctx, kalla.SourceSpec{Type: "postgres", URI: withTable(t, uri, "invoices")}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Close(); err != nil {
		t.Fatal(err)
	}
	src.Close()
	if err := mgr.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := mgr.OpenURI(ctx, withTable(t, uri, "invoices")); kalla.ErrorCode(err) != kalla.EUNAVAILABLE {
		t.Errorf("Open after Close: %v", err)
	}
	if st := mgr.PoolStats(); len(st) != 0 {
		t.Errorf("pools left after Close: %+v", st)
	}
}
