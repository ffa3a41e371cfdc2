package mysql_test

import (
	"strings"
	"testing"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/sources"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// TestManager opens MySQL and MariaDB sources the way the server and the
// CLI do.
func TestManager(t *testing.T) {
	uri := testenv.MySQL(t)
	run(t, uri, "CREATE TABLE payments (id INT, amount DECIMAL(12,2))", "INSERT INTO payments VALUES (1, 10.50), (2, 0.30), (3, 99.99)")
	mgr := sources.New(sources.Config{})
	defer mgr.Close()
	ctx := testCtx(t)
	for _, u := range []string{withTable(t, uri, "payments"), strings.Replace(withTable(t, uri, "payments"), "mysql://", "mariadb://", 1)} {
		src, err := mgr.OpenURI(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		pv, err := connector.Load(ctx, src, "payments", []kalla.Filter{{Column: "amount", Op: kalla.OpLt, Values: []kalla.Scalar{{Text: "11", IsNumber: true}}}}, 0)
		src.Close()
		if err != nil || pv.TotalRows != 2 || pv.PreviewRows != 2 || *pv.Rows[1][1] != "0.30" {
			t.Fatalf("Load = %+v, %v", pv, err)
		}
	}
	if st := mgr.PoolStats(); len(st) != 1 || strings.Contains(st[0].Source, "table=") {
		t.Errorf("pool stats %+v", st)
	}
}
