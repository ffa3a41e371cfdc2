package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
)

// testContract is the behaviour every backend must have. newURL returns the
// URL of a fresh, empty store; each subtest gets its own.
func testContract(t *testing.T, newURL func(t *testing.T) string) {
	cases := []struct {
		name string
		fn   func(t *testing.T, newURL func(t *testing.T) string)
	}{
		{"Migrations", testMigrations},
		{"ConcurrentOpen", testConcurrentOpen},
		{"PingClose", testPingClose},
		{"Sources", testSources},
		{"Recipes", testRecipes},
		{"CreateGetRun", testCreateGetRun},
		{"RunEngine", testRunEngine},
		{"ListRuns", testListRuns},
		{"ClaimOrder", testClaimOrder},
		{"ClaimExclusive", testClaimExclusive},
		{"ConcurrentLoad", testConcurrentLoad},
		{"Progress", testProgress},
		{"FinishRun", testFinishRun},
		{"RequestCancel", testRequestCancel},
		{"Leases", testLeases},
		{"ExpireConcurrent", testExpireConcurrent},
		{"CountRunsByStatus", testCountRunsByStatus},
		{"Timestamps", testTimestamps},
		{"Tokens", testTokens},
		{"TokenRace", testTokenRace},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, newURL)
		})
	}
}

func testMigrations(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	u := newURL(t)

	s := open(t, u, store.WithoutMigrations())
	if _, err := s.ListSources(ctx); err == nil {
		t.Fatal("ListSources worked before any migration")
	}
	applied, err := s.Migrate(ctx)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if want := []string{"0001_init", "0002_leases", "0003_error_code", "0004_run_engine", "0005_exceptions", "0006_tokens"}; !reflect.DeepEqual(applied, want) {
		t.Fatalf("Migrate applied %q, want %q", applied, want)
	}
	applied, err = s.Migrate(ctx)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second Migrate = %q, %v; want nothing applied", applied, err)
	}
	if err := s.UpsertSource(ctx, &kalla.RegisteredSource{Alias: "kept", URI: "a.csv"}); err != nil {
		t.Fatal(err)
	}
	// Each applied migration is recorded once, with when it was applied.
	rows, err := rawDB(t, u).QueryContext(ctx, "SELECT version, applied_at FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var versions []string
	for rows.Next() {
		var v string
		var at any
		if err := rows.Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		if at == nil {
			t.Errorf("migration %s has no applied_at", v)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"0001_init", "0002_leases", "0003_error_code", "0004_run_engine", "0005_exceptions", "0006_tokens"}; !reflect.DeepEqual(versions, want) {
		t.Fatalf("schema_migrations holds %q, want %q", versions, want)
	}

	// Opening again (as a restarted server does) applies nothing and keeps
	// the data.
	s2 := open(t, u)
	applied, err = s2.Migrate(ctx)
	if err != nil || len(applied) != 0 {
		t.Fatalf("Migrate after reopening = %q, %v; want nothing applied", applied, err)
	}
	if _, err := s2.GetSource(ctx, "kept"); err != nil {
		t.Fatalf("GetSource after reopening: %v", err)
	}
}

// rawDB opens the database behind a store URL directly, to look at what the
// store wrote.
func rawDB(t *testing.T, u string) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", u
	if !strings.HasPrefix(u, "postgres") {
		driver, dsn = "sqlite", strings.TrimPrefix(u, "sqlite://")
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// testConcurrentOpen opens one fresh store from several goroutines at once,
// as processes starting together do: each migration must apply exactly once.
func testConcurrentOpen(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	u := newURL(t)
	const n = 4
	stores := make([]*store.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = store.Open(ctx, u) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Open %d: %v", i, errs[i])
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	s := open(t, u, store.WithoutMigrations())
	applied, err := s.Migrate(ctx)
	if err != nil || len(applied) != 0 {
		t.Fatalf("Migrate after concurrent opens = %q, %v; want nothing applied", applied, err)
	}
}

func testPingClose(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	s, err := store.Open(ctx, newURL(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping after Close succeeded")
	}
}

func testSources(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	clk := newClock()
	s := open(t, newURL(t), store.WithClock(clk.Now))

	// The store keeps the raw URI: redaction is the caller's job when it
	// shows one.
	const raw = "postgres://kalla:p%40ss w0rd!@db.example.com:5432/erp?sslmode=require&password=q"
	bank := &kalla.RegisteredSource{Alias: "bank", URI: raw, SourceType: "postgres", Status: "ok"}
	if err := s.UpsertSource(ctx, bank); err != nil {
		t.Fatalf("UpsertSource: %v", err)
	}
	if bank.CreatedAt.IsZero() || !bank.CreatedAt.Equal(bank.UpdatedAt) {
		t.Fatalf("new source: created %v, updated %v; want both set and equal", bank.CreatedAt, bank.UpdatedAt)
	}
	got, err := s.GetSource(ctx, "bank")
	if err != nil {
		t.Fatalf("GetSource: %v", err)
	}
	if !reflect.DeepEqual(got, bank) {
		t.Fatalf("GetSource = %+v, want %+v", got, bank)
	}
	if got.URI != raw {
		t.Fatalf("URI = %q, want the raw %q", got.URI, raw)
	}

	// An update by alias replaces the fields and keeps created_at.
	created := bank.CreatedAt
	upd := &kalla.RegisteredSource{Alias: "bank", URI: "postgres://kalla:new@db2/erp", SourceType: "postgres", Status: "error", StatusMessage: "connection refused"}
	if err := s.UpsertSource(ctx, upd); err != nil {
		t.Fatalf("UpsertSource again: %v", err)
	}
	if !upd.CreatedAt.Equal(created) || !upd.UpdatedAt.After(created) {
		t.Fatalf("updated source: created %v (want %v), updated %v (want later)", upd.CreatedAt, created, upd.UpdatedAt)
	}
	got, err = s.GetSource(ctx, "bank")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, upd) {
		t.Fatalf("GetSource after update = %+v, want %+v", got, upd)
	}

	for _, a := range []string{"ledger", "ap_invoices"} {
		if err := s.UpsertSource(ctx, &kalla.RegisteredSource{Alias: a, URI: a + ".csv", SourceType: "csv"}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.ListSources(ctx)
	if err != nil {
		t.Fatalf("ListSources: %v", err)
	}
	var aliases []string
	for _, src := range list {
		aliases = append(aliases, src.Alias)
	}
	if want := []string{"ap_invoices", "bank", "ledger"}; !reflect.DeepEqual(aliases, want) {
		t.Fatalf("ListSources aliases = %q, want %q", aliases, want)
	}

	if err := s.DeleteSource(ctx, "bank"); err != nil {
		t.Fatalf("DeleteSource: %v", err)
	}
	_, err = s.GetSource(ctx, "bank")
	wantCode(t, err, kalla.ENOTFOUND)
	wantCode(t, s.DeleteSource(ctx, "bank"), kalla.ENOTFOUND)
	wantCode(t, s.UpsertSource(ctx, &kalla.RegisteredSource{URI: "x.csv"}), kalla.EINVALID)
	wantCode(t, s.UpsertSource(ctx, &kalla.RegisteredSource{Alias: "x"}), kalla.EINVALID)

	empty := open(t, newURL(t))
	list, err = empty.ListSources(ctx)
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("ListSources on an empty store = %v, %v; want an empty, non-nil slice", list, err)
	}
}

// testRecipe returns a recipe that exercises every part of the JSON form:
// filters with array and exact-decimal values, a schema, CSV options.
func testRecipe(id string) kalla.Recipe {
	return kalla.Recipe{
		RecipeID:         id,
		Name:             "Bank vs ledger",
		Description:      "Daily cash reconciliation",
		MatchSQL:         "SELECT l.id AS left_id, r.id AS right_id FROM left_src l JOIN right_src r ON l.ref = r.ref",
		MatchDescription: "same reference",
		Sources: kalla.Sources{
			Left: kalla.SourceSpec{
				Alias: "bank", URI: "postgres://u:pw@db/erp?sslmode=disable", PrimaryKey: []string{"id"},
				Filters: []kalla.Filter{
					{Column: "booked_on", Op: kalla.OpBetween, IsArray: true, Values: []kalla.Scalar{{Text: "2026-01-01"}, {Text: "2026-01-31"}}},
					{Column: "amount", Op: kalla.OpGt, Values: []kalla.Scalar{{Text: "100.10", IsNumber: true}}},
				},
			},
			Right: kalla.SourceSpec{
				Alias: "ledger", Type: kalla.SourceCSV, URI: "s3://bucket/ledger.csv", PrimaryKey: []string{"entry", "line"},
				Schema: map[string]string{"amount": "DECIMAL(18,2)"},
				CSV:    &kalla.CSVOptions{Delimiter: ";"},
			},
		},
	}
}

func testRecipes(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	clk := newClock()
	s := open(t, newURL(t), store.WithClock(clk.Now))

	r := &kalla.StoredRecipe{ID: "cash-daily", Name: "Cash daily", Recipe: testRecipe("cash-daily")}
	if err := s.CreateRecipe(ctx, r); err != nil {
		t.Fatalf("CreateRecipe: %v", err)
	}
	if r.CreatedAt.IsZero() || !r.CreatedAt.Equal(r.UpdatedAt) {
		t.Fatalf("new recipe: created %v, updated %v", r.CreatedAt, r.UpdatedAt)
	}
	got, err := s.GetRecipe(ctx, "cash-daily")
	if err != nil {
		t.Fatalf("GetRecipe: %v", err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("GetRecipe = %+v\nwant %+v", got, r)
	}

	dup := &kalla.StoredRecipe{ID: "cash-daily", Name: "other", Recipe: testRecipe("cash-daily")}
	wantCode(t, s.CreateRecipe(ctx, dup), kalla.ECONFLICT)
	if got, _ := s.GetRecipe(ctx, "cash-daily"); got.Name != "Cash daily" {
		t.Fatalf("a conflicting create changed the recipe: name %q", got.Name)
	}
	wantCode(t, s.CreateRecipe(ctx, &kalla.StoredRecipe{}), kalla.EINVALID)

	upd := &kalla.StoredRecipe{ID: "cash-daily", Name: "Cash daily v2", Recipe: testRecipe("cash-daily")}
	upd.Recipe.MatchSQL += " AND l.amount = r.amount"
	if err := s.PutRecipe(ctx, upd); err != nil {
		t.Fatalf("PutRecipe: %v", err)
	}
	if !upd.CreatedAt.Equal(r.CreatedAt) || !upd.UpdatedAt.After(r.UpdatedAt) {
		t.Fatalf("PutRecipe: created %v (want %v), updated %v (want later)", upd.CreatedAt, r.CreatedAt, upd.UpdatedAt)
	}
	got, err = s.GetRecipe(ctx, "cash-daily")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, upd) {
		t.Fatalf("GetRecipe after PutRecipe = %+v\nwant %+v", got, upd)
	}
	wantCode(t, s.PutRecipe(ctx, &kalla.StoredRecipe{ID: "missing", Recipe: testRecipe("missing")}), kalla.ENOTFOUND)

	if err := s.CreateRecipe(ctx, &kalla.StoredRecipe{ID: "ap-weekly", Recipe: testRecipe("ap-weekly")}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListRecipes(ctx)
	if err != nil {
		t.Fatalf("ListRecipes: %v", err)
	}
	if len(list) != 2 || list[0].ID != "ap-weekly" || list[1].ID != "cash-daily" {
		t.Fatalf("ListRecipes = %+v, want ap-weekly then cash-daily", list)
	}

	if err := s.DeleteRecipe(ctx, "cash-daily"); err != nil {
		t.Fatalf("DeleteRecipe: %v", err)
	}
	_, err = s.GetRecipe(ctx, "cash-daily")
	wantCode(t, err, kalla.ENOTFOUND)
	wantCode(t, s.DeleteRecipe(ctx, "cash-daily"), kalla.ENOTFOUND)
}

// newRun returns a run to queue, with filters and a callback.
func newRun(id string) *kalla.RunRecord {
	return &kalla.RunRecord{
		ID:       id,
		RecipeID: "cash-daily",
		Recipe:   testRecipe("cash-daily"),
		Filters: &kalla.RunFilters{
			Left: []kalla.Filter{{Column: "booked_on", Op: kalla.OpEq, Values: []kalla.Scalar{{Text: "2026-02-01"}}}},
		},
		CallbackURL: "https://hooks.example.com/kalla",
		OutDir:      "/var/lib/kalla/runs/" + id,
	}
}

func mustCreateRun(t *testing.T, s *store.Store, run *kalla.RunRecord) *kalla.RunRecord {
	t.Helper()
	if err := s.CreateRun(context.Background(), run); err != nil {
		t.Fatalf("CreateRun %s: %v", run.ID, err)
	}
	return run
}

func mustGetRun(t *testing.T, s *store.Store, id string) *kalla.RunRecord {
	t.Helper()
	run, err := s.GetRun(context.Background(), id)
	if err != nil {
		t.Fatalf("GetRun %s: %v", id, err)
	}
	return run
}

// testOwner is the lease owner of the runs tests claim.
const testOwner = "test-process"

// held returns the lease run id is held under now (the zero lease for a run
// never claimed or unknown).
func held(t *testing.T, s *store.Store, id string) kalla.Lease {
	t.Helper()
	run, err := s.GetRun(context.Background(), id)
	if err != nil {
		return kalla.Lease{}
	}
	return run.Lease()
}

func mustClaim(t *testing.T, s *store.Store) *kalla.RunRecord {
	t.Helper()
	run, err := s.ClaimRun(context.Background(), testOwner, time.Minute)
	if err != nil {
		t.Fatalf("ClaimRun: %v", err)
	}
	return run
}

// testRunEngine: the engine a run was queued for survives every read (get,
// list, claim: the worker that claims it must run it there), and a run
// written without one (queued before migration 0004) reads as "", the
// default engine.
func testRunEngine(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	u := newURL(t)
	s := open(t, u)

	onSpark := newRun("run-spark")
	onSpark.Engine = kalla.EngineSpark
	mustCreateRun(t, s, onSpark)
	if got := mustGetRun(t, s, "run-spark"); got.Engine != kalla.EngineSpark {
		t.Fatalf("GetRun engine = %q, want spark", got.Engine)
	}
	list, err := s.ListRuns(ctx, store.RunQuery{})
	if err != nil || len(list) != 1 || list[0].Engine != kalla.EngineSpark {
		t.Fatalf("ListRuns = %+v, %v; want the run on spark", list, err)
	}
	claimed := mustClaim(t, s)
	if claimed.ID != "run-spark" || claimed.Engine != kalla.EngineSpark {
		t.Fatalf("ClaimRun = %s on %q, want run-spark on spark", claimed.ID, claimed.Engine)
	}

	// As an older Kalla wrote it: no engine column in the INSERT.
	db := rawDB(t, u)
	q := "INSERT INTO runs (id, recipe_id, recipe_json, callback_url, status, out_dir, created_at) VALUES ('run-old', 'cash-daily', '{}', '', 'queued', '/tmp/x', ?)"
	var at any = time.Now().UTC()
	if strings.HasPrefix(u, "postgres") {
		q = strings.Replace(q, "?", "$1", 1)
	} else {
		at = time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	}
	if _, err := db.ExecContext(ctx, q, at); err != nil {
		t.Fatalf("insert a run as before migration 0004: %v", err)
	}
	if got := mustGetRun(t, s, "run-old"); got.Engine != "" {
		t.Fatalf("a run stored without an engine reads as %q, want \"\" (the default)", got.Engine)
	}
}

func testCreateGetRun(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	s := open(t, newURL(t), store.WithClock(newClock().Now))

	run := newRun("run-1")
	run.Engine = kalla.EngineDuckDB
	run.Status, run.Progress, run.Error = kalla.RunCompleted, 0.5, "ignored" // CreateRun resets these
	mustCreateRun(t, s, run)
	if run.Status != kalla.RunQueued || run.Progress != 0 || run.Error != "" || run.CreatedAt.IsZero() {
		t.Fatalf("CreateRun left %+v", run)
	}
	got := mustGetRun(t, s, "run-1")
	if !reflect.DeepEqual(got, run) {
		t.Fatalf("GetRun = %+v\nwant %+v", got, run)
	}

	noFilters := newRun("run-2")
	noFilters.Filters, noFilters.CallbackURL = nil, ""
	mustCreateRun(t, s, noFilters)
	if got := mustGetRun(t, s, "run-2"); got.Filters != nil || !reflect.DeepEqual(got, noFilters) {
		t.Fatalf("GetRun without filters = %+v\nwant %+v", got, noFilters)
	}

	wantCode(t, s.CreateRun(ctx, newRun("run-1")), kalla.ECONFLICT)
	wantCode(t, s.CreateRun(ctx, newRun("")), kalla.EINVALID)
	_, err := s.GetRun(ctx, "nope")
	wantCode(t, err, kalla.ENOTFOUND)
}

func runIDs(runs []*kalla.RunRecord) []string {
	ids := []string{}
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	return ids
}

func testListRuns(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	s := open(t, newURL(t), store.WithClock(newClock().Now))

	// IDs sort against creation order, so the order must come from
	// created_at.
	for i, id := range []string{"e", "d", "c", "b", "a"} {
		run := newRun(id)
		if i%2 == 1 {
			run.RecipeID = "other"
		}
		mustCreateRun(t, s, run)
	}
	mustClaim(t, s) // e is running

	for _, c := range []struct {
		name string
		q    store.RunQuery
		want []string
	}{
		{"all", store.RunQuery{}, []string{"a", "b", "c", "d", "e"}},
		{"limit", store.RunQuery{Limit: 2}, []string{"a", "b"}},
		{"limit offset", store.RunQuery{Limit: 2, Offset: 1}, []string{"b", "c"}},
		{"offset only", store.RunQuery{Offset: 3}, []string{"d", "e"}},
		{"past the end", store.RunQuery{Offset: 10}, []string{}},
		{"status", store.RunQuery{Status: kalla.RunQueued}, []string{"a", "b", "c", "d"}},
		{"status running", store.RunQuery{Status: kalla.RunRunning}, []string{"e"}},
		{"recipe", store.RunQuery{RecipeID: "other"}, []string{"b", "d"}},
		{"recipe and status", store.RunQuery{RecipeID: "cash-daily", Status: kalla.RunQueued, Limit: 1}, []string{"a"}},
		{"no match", store.RunQuery{RecipeID: "none"}, []string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.ListRuns(ctx, c.q)
			if err != nil {
				t.Fatalf("ListRuns: %v", err)
			}
			if ids := runIDs(got); !reflect.DeepEqual(ids, c.want) {
				t.Fatalf("ListRuns(%+v) = %q, want %q", c.q, ids, c.want)
			}
		})
	}
	full, err := s.ListRuns(ctx, store.RunQuery{Status: kalla.RunRunning})
	if err != nil {
		t.Fatal(err)
	}
	if want := mustGetRun(t, s, "e"); !reflect.DeepEqual(full[0], want) {
		t.Fatalf("ListRuns record = %+v\nGetRun record = %+v", full[0], want)
	}

	for _, q := range []store.RunQuery{{Status: "paused"}, {Limit: -1}, {Offset: -1}} {
		_, err := s.ListRuns(ctx, q)
		wantCode(t, err, kalla.EINVALID)
	}
}

func testClaimOrder(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	s := open(t, newURL(t), store.WithClock(newClock().Now))

	_, err := s.ClaimRun(ctx, testOwner, time.Minute)
	wantCode(t, err, kalla.ENOTFOUND)

	order := []string{"run-z", "run-b", "run-m", "run-a"}
	for _, id := range order {
		mustCreateRun(t, s, newRun(id))
	}
	// A cancelled run is never claimed.
	if _, err := s.RequestCancel(ctx, "run-b"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"run-z", "run-m", "run-a"} {
		run := mustClaim(t, s)
		if run.ID != want {
			t.Fatalf("ClaimRun = %s, want %s (creation order)", run.ID, want)
		}
		if run.Status != kalla.RunRunning || run.StartedAt == nil || run.StartedAt.Before(run.CreatedAt) {
			t.Fatalf("claimed run: status %s, started %v, created %v", run.Status, run.StartedAt, run.CreatedAt)
		}
		if got := mustGetRun(t, s, want); !reflect.DeepEqual(got, run) {
			t.Fatalf("GetRun after claim = %+v\nClaimRun returned %+v", got, run)
		}
	}
	_, err = s.ClaimRun(ctx, testOwner, time.Minute)
	wantCode(t, err, kalla.ENOTFOUND)
}

// testClaimExclusive claims M runs from N goroutines spread over two Store
// values on one database (as two processes would be): each run is claimed
// exactly once.
func testClaimExclusive(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	u := newURL(t)
	stores := []*store.Store{open(t, u), open(t, u)}
	const runs, workers = 60, 8
	for i := range runs {
		mustCreateRun(t, stores[0], newRun(fmt.Sprintf("run-%03d", i)))
	}

	var mu sync.Mutex
	claimed := map[string]int{}
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		s := stores[w%len(stores)]
		wg.Go(func() {
			for {
				run, err := s.ClaimRun(ctx, testOwner, time.Minute)
				if errors.Is(err, store.ErrNotFound) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				claimed[run.ID]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("ClaimRun: %v", err)
	}
	if len(claimed) != runs {
		t.Fatalf("%d runs claimed, want %d", len(claimed), runs)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("run %s claimed %d times", id, n)
		}
	}
	counts, err := stores[1].CountRunsByStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[kalla.RunRunning] != runs || counts[kalla.RunQueued] != 0 {
		t.Fatalf("counts after claiming = %v", counts)
	}
}

// testConcurrentLoad runs what a server does at once: API requests queueing,
// reading and cancelling runs while two workers claim, report progress and
// finish them. Every run must end in exactly one final state.
func testConcurrentLoad(t *testing.T, newURL func(t *testing.T) string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	u := newURL(t)
	api, workerStore := open(t, u), open(t, u)
	const producers, perProducer = 4, 15
	total := producers * perProducer

	var produced atomic.Int32
	var finished sync.Map // run ID -> final status the worker set
	errs := make(chan error, 100)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}

	var producersWG, workersWG sync.WaitGroup
	for p := range producers {
		producersWG.Go(func() {
			for i := range perProducer {
				id := fmt.Sprintf("p%d-%02d", p, i)
				if err := api.CreateRun(ctx, newRun(id)); err != nil {
					fail(err)
					return
				}
				produced.Add(1)
				if _, err := api.GetRun(ctx, id); err != nil {
					fail(err)
				}
				if _, err := api.ListRuns(ctx, store.RunQuery{Limit: 10}); err != nil {
					fail(err)
				}
				if i%5 == 0 {
					// Cancelling races the workers: any outcome but an
					// error other than a conflict is fine.
					if _, err := api.RequestCancel(ctx, id); err != nil && kalla.ErrorCode(err) != kalla.ECONFLICT {
						fail(err)
					}
				}
				if err := api.UpsertSource(ctx, &kalla.RegisteredSource{Alias: fmt.Sprintf("src_%d", p), URI: "x.csv"}); err != nil {
					fail(err)
				}
			}
		})
	}
	var producing atomic.Bool
	producing.Store(true)
	for range 2 {
		workersWG.Go(func() {
			for ctx.Err() == nil {
				run, err := workerStore.ClaimRun(ctx, testOwner, time.Minute)
				if errors.Is(err, store.ErrNotFound) {
					if !producing.Load() {
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					fail(err)
					return
				}
				for _, p := range []float64{0.25, 0.5, 1} {
					if err := workerStore.UpdateRunProgress(ctx, run.ID, run.Lease(), "match", p, 10, 20); err != nil {
						fail(err)
					}
				}
				cur, err := workerStore.GetRun(ctx, run.ID)
				if err != nil {
					fail(err)
					continue
				}
				final := kalla.RunCompleted
				if cur.CancelRequested {
					final = kalla.RunCancelled
				}
				if err := workerStore.FinishRun(ctx, run.ID, run.Lease(), final, &kalla.Summary{RunID: run.ID}, ""); err != nil {
					fail(err)
				}
				if _, dup := finished.LoadOrStore(run.ID, final); dup {
					fail(fmt.Errorf("run %s finished twice", run.ID))
				}
			}
		})
	}
	producersWG.Wait()
	producing.Store(false)
	workersWG.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent use: %v", err)
	}
	if t.Failed() {
		return
	}

	all, err := api.ListRuns(ctx, store.RunQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != total || int(produced.Load()) != total {
		t.Fatalf("%d runs listed, %d produced, want %d", len(all), produced.Load(), total)
	}
	for _, run := range all {
		if !run.Status.Done() || run.FinishedAt == nil {
			t.Errorf("run %s ended %s (finished %v)", run.ID, run.Status, run.FinishedAt)
			continue
		}
		if run.StartedAt != nil && (run.StartedAt.Before(run.CreatedAt) || run.FinishedAt.Before(*run.StartedAt)) {
			t.Errorf("run %s: created %v, started %v, finished %v: out of order", run.ID, run.CreatedAt, *run.StartedAt, *run.FinishedAt)
		}
		if run.FinishedAt.Before(run.CreatedAt) {
			t.Errorf("run %s finished %v before it was created %v", run.ID, *run.FinishedAt, run.CreatedAt)
		}
		if v, ok := finished.Load(run.ID); ok {
			if run.Status != v.(kalla.RunStatus) {
				t.Errorf("run %s is %s, its worker set %s", run.ID, run.Status, v)
			}
		} else if run.Status != kalla.RunCancelled || run.StartedAt != nil {
			t.Errorf("run %s was never claimed but is %s (started %v)", run.ID, run.Status, run.StartedAt)
		}
	}
}

func testProgress(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	s := open(t, newURL(t))
	mustCreateRun(t, s, newRun("r1"))

	wantCode(t, s.UpdateRunProgress(ctx, "r1", held(t, s, "r1"), "stage", 0.1, 1, 1), kalla.ECONFLICT) // still queued
	mustClaim(t, s)
	if err := s.UpdateRunProgress(ctx, "r1", held(t, s, "r1"), "stage_left", 0.4, 1_000_000, 0); err != nil {
		t.Fatalf("UpdateRunProgress: %v", err)
	}
	if err := s.UpdateRunProgress(ctx, "r1", held(t, s, "r1"), "stage_right", 0.7, 1_000_000, 3_000_000_000); err != nil {
		t.Fatalf("UpdateRunProgress: %v", err)
	}
	got := mustGetRun(t, s, "r1")
	if got.Stage != "stage_right" || got.Progress != 0.7 || got.LeftRows != 1_000_000 || got.RightRows != 3_000_000_000 || got.Status != kalla.RunRunning {
		t.Fatalf("after progress: %+v", got)
	}

	for name, c := range map[string]struct {
		progress    float64
		left, right int64
	}{
		"negative progress": {-0.1, 0, 0},
		"progress over one": {1.5, 0, 0},
		"negative rows":     {0.5, -1, 0},
	} {
		t.Run(name, func(t *testing.T) {
			wantCode(t, s.UpdateRunProgress(ctx, "r1", held(t, s, "r1"), "x", c.progress, c.left, c.right), kalla.EINVALID)
		})
	}
	wantCode(t, s.UpdateRunProgress(ctx, "nope", held(t, s, "nope"), "x", 0.5, 0, 0), kalla.ENOTFOUND)

	if err := s.FinishRun(ctx, "r1", held(t, s, "r1"), kalla.RunCompleted, nil, ""); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.UpdateRunProgress(ctx, "r1", held(t, s, "r1"), "late", 0.9, 0, 0), kalla.ECONFLICT)
	if got := mustGetRun(t, s, "r1"); got.Stage != "stage_right" {
		t.Fatalf("a late progress report changed a finished run: stage %q", got.Stage)
	}
}

func testSummary(runID string) *kalla.Summary {
	start := time.Date(2026, 11, 25, 9, 0, 0, 123456789, time.UTC)
	return &kalla.Summary{
		RecipeID: "cash-daily", RunID: runID, Status: "completed",
		LeftCount: 1000, RightCount: 998, MatchedCount: 990, MatchedLeftRecords: 990, MatchedRightRecords: 990,
		UnmatchedLeftCount: 10, UnmatchedRightCount: 8, MatchRateLeft: 0.99, MatchRateRight: 990.0 / 998,
		Sources: kalla.SummarySources{
			Left:  kalla.SummarySource{Alias: "bank", Type: "postgres", URI: "postgres://u:xxxxx@db/erp", PrimaryKey: []string{"id"}, Columns: []kalla.Column{{Name: "id", DataType: "bigint"}}},
			Right: kalla.SummarySource{Alias: "ledger", Type: "csv", URI: "ledger.csv", PrimaryKey: []string{"entry"}, Columns: []kalla.Column{{Name: "entry", DataType: "VARCHAR", Nullable: true}}},
		},
		Stages:       []kalla.StageTiming{{Name: "stage_left", DurationMS: 12}},
		Outputs:      []kalla.OutputFile{{Name: "matched.csv", Table: "matched", Format: "csv", Rows: 990, Bytes: 12345, SHA256: "ab12"}},
		Warnings:     []kalla.Warning{{Code: kalla.WarnDuplicateKeys, Side: "left", Message: "2 duplicate keys", Count: 2}},
		KallaVersion: "0.1.0", EngineVersion: "duckdb 1.5.6",
		StartedAt: start, FinishedAt: start.Add(1500 * time.Millisecond), DurationMS: 1500,
	}
}

func testFinishRun(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	s := open(t, newURL(t), store.WithClock(newClock().Now))
	for _, id := range []string{"ok", "bad", "queued"} {
		mustCreateRun(t, s, newRun(id))
	}
	mustClaim(t, s)
	mustClaim(t, s)

	wantCode(t, s.FinishRun(ctx, "ok", held(t, s, "ok"), kalla.RunRunning, nil, ""), kalla.EINVALID)
	wantCode(t, s.FinishRun(ctx, "ok", held(t, s, "ok"), kalla.RunQueued, nil, ""), kalla.EINVALID)

	sum := testSummary("ok")
	if err := s.FinishRun(ctx, "ok", held(t, s, "ok"), kalla.RunCompleted, sum, ""); err != nil {
		t.Fatalf("FinishRun completed: %v", err)
	}
	got := mustGetRun(t, s, "ok")
	if got.Status != kalla.RunCompleted || got.FinishedAt == nil || got.FinishedAt.Before(*got.StartedAt) || got.Error != "" {
		t.Fatalf("completed run: %+v", got)
	}
	if !reflect.DeepEqual(got.Summary, sum) {
		t.Fatalf("summary = %+v\nwant %+v", got.Summary, sum)
	}

	if err := s.FinishRunCode(ctx, "bad", held(t, s, "bad"), kalla.RunFailed, nil, kalla.EUNAVAILABLE, `source "bank": connection refused`); err != nil {
		t.Fatalf("FinishRun failed: %v", err)
	}
	got = mustGetRun(t, s, "bad")
	if got.Status != kalla.RunFailed || got.Error != `source "bank": connection refused` || got.ErrorCode != kalla.EUNAVAILABLE || got.Summary != nil || got.FinishedAt == nil {
		t.Fatalf("failed run: %+v", got)
	}

	// A finished run keeps its outcome.
	before := mustGetRun(t, s, "ok")
	wantCode(t, s.FinishRun(ctx, "ok", held(t, s, "ok"), kalla.RunFailed, nil, "late"), kalla.ECONFLICT)
	if after := mustGetRun(t, s, "ok"); !reflect.DeepEqual(after, before) {
		t.Fatalf("a second FinishRun changed the run:\n%+v\nwas\n%+v", after, before)
	}
	wantCode(t, s.FinishRun(ctx, "queued", held(t, s, "queued"), kalla.RunCompleted, nil, ""), kalla.ECONFLICT)
	wantCode(t, s.FinishRun(ctx, "nope", held(t, s, "nope"), kalla.RunCompleted, nil, ""), kalla.ENOTFOUND)
}

func testRequestCancel(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	s := open(t, newURL(t), store.WithClock(newClock().Now))
	for _, id := range []string{"running", "queued"} {
		mustCreateRun(t, s, newRun(id))
	}
	mustClaim(t, s)

	// A queued run is cancelled at once.
	st, err := s.RequestCancel(ctx, "queued")
	if err != nil || st != kalla.RunCancelled {
		t.Fatalf("RequestCancel(queued) = %s, %v; want cancelled", st, err)
	}
	got := mustGetRun(t, s, "queued")
	if got.Status != kalla.RunCancelled || got.FinishedAt == nil || got.StartedAt != nil {
		t.Fatalf("cancelled queued run: %+v", got)
	}
	st, err = s.RequestCancel(ctx, "queued")
	wantCode(t, err, kalla.ECONFLICT)
	if st != kalla.RunCancelled {
		t.Fatalf("RequestCancel of a cancelled run returned status %q", st)
	}

	// A running run is asked to stop and stays running until its worker
	// finishes it.
	for range 2 {
		st, err = s.RequestCancel(ctx, "running")
		if err != nil || st != kalla.RunRunning {
			t.Fatalf("RequestCancel(running) = %s, %v; want running", st, err)
		}
		got = mustGetRun(t, s, "running")
		if got.Status != kalla.RunRunning || !got.CancelRequested || got.FinishedAt != nil {
			t.Fatalf("running run after cancel request: %+v", got)
		}
	}
	if err := s.FinishRun(ctx, "running", held(t, s, "running"), kalla.RunCancelled, nil, ""); err != nil {
		t.Fatalf("worker FinishRun cancelled: %v", err)
	}
	st, err = s.RequestCancel(ctx, "running")
	wantCode(t, err, kalla.ECONFLICT)
	if st != kalla.RunCancelled {
		t.Fatalf("RequestCancel of a finished run returned status %q", st)
	}

	_, err = s.RequestCancel(ctx, "nope")
	wantCode(t, err, kalla.ENOTFOUND)
}

// testLeases: a claim holds its run under a lease its owner renews; a run
// whose lease expired is failed (or queued again, or cancelled when asked
// to) by whoever expires leases, once; the old holder can then write
// nothing to it.
func testLeases(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	u := newURL(t)
	clk := newClock()
	s := open(t, u, store.WithClock(clk.Now))
	for _, id := range []string{"a", "b", "c", "d", "legacy", "e"} {
		mustCreateRun(t, s, newRun(id))
	}
	claim := func(owner string, ttl time.Duration, want string) *kalla.RunRecord {
		t.Helper()
		run, err := s.ClaimRun(ctx, owner, ttl)
		if err != nil || run.ID != want {
			t.Fatalf("ClaimRun(%s) = %v, %v; want run %s", owner, run, err, want)
		}
		if run.Owner != owner || run.LeaseExpires == nil || !run.LeaseExpires.Equal(run.StartedAt.Add(ttl)) {
			t.Fatalf("claimed run %s: owner %q, lease until %v, started %v", want, run.Owner, run.LeaseExpires, run.StartedAt)
		}
		return run
	}
	wantCode(t, func() error { _, err := s.ClaimRun(ctx, "", time.Minute); return err }(), kalla.EINVALID)
	wantCode(t, func() error { _, err := s.ClaimRun(ctx, "p1", 0); return err }(), kalla.EINVALID)
	a := claim("p1", time.Minute, "a")
	b := claim("p2", time.Minute, "b")
	c := claim("p1", 10*time.Minute, "c")
	claim("p1", time.Minute, "d")
	claim("p1", time.Hour, "legacy")
	if a.Attempts != 1 || a.Lease() != (kalla.Lease{Owner: "p1", Attempt: 1}) {
		t.Fatalf("first claim of a: attempts %d, lease %+v", a.Attempts, a.Lease())
	}
	if st, err := s.RequestCancel(ctx, "d"); err != nil || st != kalla.RunRunning {
		t.Fatalf("RequestCancel d = %s, %v", st, err)
	}
	// A running run from before leases existed has no expiry.
	if _, err := rawDB(t, u).ExecContext(ctx, "UPDATE runs SET lease_expires_at = NULL WHERE id = 'legacy'"); err != nil {
		t.Fatal(err)
	}

	ended, requeued, err := s.ExpireLeases(ctx, 1, "")
	if err != nil || len(requeued) != 0 || !reflect.DeepEqual(ended, []string{"legacy"}) {
		t.Fatalf("ExpireLeases before any lease expired = %q, %q, %v; want only the run without a lease", ended, requeued, err)
	}

	// Renewal: only under the lease that holds the run.
	if err := s.RenewLease(ctx, "b", b.Lease(), time.Minute); err != nil {
		t.Fatalf("RenewLease: %v", err)
	}
	for _, l := range []kalla.Lease{{Owner: "p1", Attempt: 1}, {Owner: "p2", Attempt: 2}, {}} {
		err := s.RenewLease(ctx, "b", l, time.Minute)
		wantCode(t, err, kalla.ECONFLICT)
		if !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("RenewLease under %+v: %v, want ErrLeaseLost", l, err)
		}
	}
	wantCode(t, s.RenewLease(ctx, "nope", b.Lease(), time.Minute), kalla.ENOTFOUND)
	wantCode(t, s.RenewLease(ctx, "b", b.Lease(), 0), kalla.EINVALID)

	// Two minutes later, a's and d's leases have expired. b's has too, but
	// its owner renews before anyone expires it: nobody else has it yet.
	clk.Advance(2 * time.Minute)
	if err := s.RenewLease(ctx, "b", b.Lease(), time.Minute); err != nil {
		t.Fatalf("RenewLease after the expiry, before any takeover: %v", err)
	}
	const reason = "interrupted: test"
	ended, requeued, err = s.ExpireLeases(ctx, 1, reason)
	sort.Strings(ended)
	if err != nil || len(requeued) != 0 || !reflect.DeepEqual(ended, []string{"a", "d"}) {
		t.Fatalf("ExpireLeases = %q, %q, %v; want a and d ended", ended, requeued, err)
	}
	if got := mustGetRun(t, s, "a"); got.Status != kalla.RunFailed || got.Error != reason || got.FinishedAt == nil ||
		got.Owner != "p1" || got.Attempts != 1 || got.LeaseExpires != nil {
		t.Fatalf("expired run a: %+v", got)
	}
	if got := mustGetRun(t, s, "d"); got.Status != kalla.RunCancelled || got.FinishedAt == nil {
		t.Fatalf("expired run d, asked to cancel: %+v", got)
	}
	for _, id := range []string{"b", "c"} {
		if got := mustGetRun(t, s, id); got.Status != kalla.RunRunning {
			t.Fatalf("run %s with a live lease: %+v", id, got)
		}
	}
	// The old holder of a can record nothing more.
	before := mustGetRun(t, s, "a")
	wantCode(t, s.FinishRun(ctx, "a", a.Lease(), kalla.RunCompleted, testSummary("a"), ""), kalla.ECONFLICT)
	wantCode(t, s.UpdateRunProgress(ctx, "a", a.Lease(), "match", 0.9, 1, 1), kalla.ECONFLICT)
	wantCode(t, s.RenewLease(ctx, "a", a.Lease(), time.Minute), kalla.ECONFLICT)
	if got := mustGetRun(t, s, "a"); !reflect.DeepEqual(got, before) {
		t.Fatalf("the old holder changed run a:\n%+v\nwas\n%+v", got, before)
	}

	// With a second attempt allowed, expired runs are queued again.
	if err := s.UpdateRunProgress(ctx, "c", c.Lease(), "match", 0.5, 10, 20); err != nil {
		t.Fatal(err)
	}
	clk.Advance(11 * time.Minute)
	ended, requeued, err = s.ExpireLeases(ctx, 2, reason)
	sort.Strings(requeued)
	if err != nil || len(ended) != 0 || !reflect.DeepEqual(requeued, []string{"b", "c"}) {
		t.Fatalf("ExpireLeases(2) = %q, %q, %v; want b and c queued again", ended, requeued, err)
	}
	if got := mustGetRun(t, s, "c"); got.Status != kalla.RunQueued || got.Progress != 0 || got.Stage != "" ||
		got.LeftRows != 0 || got.StartedAt != nil || got.LeaseExpires != nil || got.Attempts != 1 {
		t.Fatalf("run c queued again: %+v", got)
	}
	// The same process may claim a run again: the old claim stays dead.
	b2 := claim("p3", time.Minute, "b")
	c2 := claim("p1", time.Minute, "c")
	if b2.Attempts != 2 || c2.Lease() == c.Lease() {
		t.Fatalf("second claims: b attempts %d, c lease %+v (first %+v)", b2.Attempts, c2.Lease(), c.Lease())
	}
	wantCode(t, s.FinishRun(ctx, "b", b.Lease(), kalla.RunCompleted, nil, ""), kalla.ECONFLICT)
	wantCode(t, s.FinishRun(ctx, "c", c.Lease(), kalla.RunCompleted, nil, ""), kalla.ECONFLICT)
	if err := s.FinishRun(ctx, "c", c2.Lease(), kalla.RunCompleted, nil, ""); err != nil {
		t.Fatalf("FinishRun under the second claim: %v", err)
	}
	// A run claimed as often as allowed is failed, not queued a third time.
	clk.Advance(2 * time.Minute)
	ended, requeued, err = s.ExpireLeases(ctx, 2, reason)
	if err != nil || len(requeued) != 0 || !reflect.DeepEqual(ended, []string{"b"}) {
		t.Fatalf("ExpireLeases after the second attempt = %q, %q, %v; want b ended", ended, requeued, err)
	}
	if got := mustGetRun(t, s, "b"); got.Status != kalla.RunFailed || got.Owner != "p3" || got.Attempts != 2 {
		t.Fatalf("run b after its second lease expired: %+v", got)
	}
	for id, want := range map[string]kalla.RunStatus{"c": kalla.RunCompleted, "e": kalla.RunQueued} {
		if got := mustGetRun(t, s, id); got.Status != want {
			t.Fatalf("run %s: %s, want %s", id, got.Status, want)
		}
	}
}

// testExpireConcurrent: processes expiring leases at the same time settle
// each run once.
func testExpireConcurrent(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	u := newURL(t)
	clk := newClock()
	stores := []*store.Store{open(t, u, store.WithClock(clk.Now)), open(t, u, store.WithClock(clk.Now))}
	const runs = 30
	for i := range runs {
		mustCreateRun(t, stores[0], newRun(fmt.Sprintf("run-%03d", i)))
		if _, err := stores[0].ClaimRun(ctx, testOwner, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Hour)
	var mu sync.Mutex
	settled := map[string]int{}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			ended, requeued, err := stores[w%2].ExpireLeases(ctx, 1+w%2, "interrupted")
			if err != nil {
				t.Errorf("ExpireLeases: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range append(ended, requeued...) {
				settled[id]++
			}
		})
	}
	wg.Wait()
	if len(settled) != runs {
		t.Fatalf("%d runs settled, want %d", len(settled), runs)
	}
	for id, n := range settled {
		if n != 1 {
			t.Errorf("run %s settled %d times", id, n)
		}
	}
}

func testCountRunsByStatus(t *testing.T, newURL func(t *testing.T) string) {
	ctx := context.Background()
	s := open(t, newURL(t), store.WithClock(newClock().Now))
	counts, err := s.CountRunsByStatus(ctx)
	if err != nil {
		t.Fatalf("CountRunsByStatus: %v", err)
	}
	zero := map[kalla.RunStatus]int{kalla.RunQueued: 0, kalla.RunRunning: 0, kalla.RunCompleted: 0, kalla.RunFailed: 0, kalla.RunCancelled: 0}
	if !reflect.DeepEqual(counts, zero) {
		t.Fatalf("counts on an empty store = %v, want %v", counts, zero)
	}
	for i := range 7 {
		mustCreateRun(t, s, newRun(fmt.Sprintf("r%d", i)))
	}
	for range 4 {
		mustClaim(t, s) // r0..r3
	}
	if err := s.FinishRun(ctx, "r0", held(t, s, "r0"), kalla.RunCompleted, nil, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, "r1", held(t, s, "r1"), kalla.RunFailed, nil, "boom"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequestCancel(ctx, "r6"); err != nil {
		t.Fatal(err)
	}
	counts, err = s.CountRunsByStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[kalla.RunStatus]int{kalla.RunQueued: 2, kalla.RunRunning: 2, kalla.RunCompleted: 1, kalla.RunFailed: 1, kalla.RunCancelled: 1}
	if !reflect.DeepEqual(counts, want) {
		t.Fatalf("counts = %v, want %v", counts, want)
	}
}

// testTimestamps checks that every timestamp comes back exactly as the
// store handed it out: in UTC, with sub-second precision, under the fake
// clock (nanoseconds, non-UTC zone) and the real one.
func testTimestamps(t *testing.T, newURL func(t *testing.T) string) {
	for name, opts := range map[string][]store.Option{
		"fake clock": {store.WithClock(newClock().Now)},
		"real clock": nil,
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, newURL(t), opts...)

			src := &kalla.RegisteredSource{Alias: "a", URI: "a.csv"}
			if err := s.UpsertSource(ctx, src); err != nil {
				t.Fatal(err)
			}
			rec := &kalla.StoredRecipe{ID: "r", Recipe: testRecipe("r")}
			if err := s.CreateRecipe(ctx, rec); err != nil {
				t.Fatal(err)
			}
			run := mustCreateRun(t, s, newRun("run"))
			claimed := mustClaim(t, s)
			if err := s.FinishRun(ctx, "run", held(t, s, "run"), kalla.RunCompleted, nil, ""); err != nil {
				t.Fatal(err)
			}
			finished := mustGetRun(t, s, "run")
			gotSrc, err := s.GetSource(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			gotRec, err := s.GetRecipe(ctx, "r")
			if err != nil {
				t.Fatal(err)
			}

			pairs := []struct {
				what      string
				want, got time.Time
			}{
				{"source created_at", src.CreatedAt, gotSrc.CreatedAt},
				{"source updated_at", src.UpdatedAt, gotSrc.UpdatedAt},
				{"recipe created_at", rec.CreatedAt, gotRec.CreatedAt},
				{"recipe updated_at", rec.UpdatedAt, gotRec.UpdatedAt},
				{"run created_at", run.CreatedAt, finished.CreatedAt},
				{"run started_at", *claimed.StartedAt, *finished.StartedAt},
			}
			for _, p := range pairs {
				if p.got != p.want { // == checks the location too
					t.Errorf("%s read back as %v, written as %v", p.what, p.got, p.want)
				}
				if p.got.Location() != time.UTC {
					t.Errorf("%s is in %v, want UTC", p.what, p.got.Location())
				}
			}
			all := []time.Time{run.CreatedAt, *finished.StartedAt, *finished.FinishedAt, src.CreatedAt, rec.CreatedAt}
			if name == "fake clock" {
				// The fake clock carries nanoseconds: the store keeps
				// microseconds, on both backends.
				for _, ts := range all {
					if ts.Nanosecond()%1000 != 0 || ts.Nanosecond() == 0 {
						t.Errorf("timestamp %v: want microsecond precision, sub-second part kept", ts)
					}
				}
			}
			if !sort.SliceIsSorted(all[:3], func(i, j int) bool { return all[i].Before(all[j]) }) {
				t.Errorf("created, started, finished out of order: %v", all[:3])
			}
		})
	}
}
