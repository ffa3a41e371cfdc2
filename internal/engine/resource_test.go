package engine

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kalla-recon/kalla/internal/file"
	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/rules"
)

// TestResourceKind: DuckDB's own messages (as this version writes them)
// are told apart: memory, spill space, a full disk, anything else.
func TestResourceKind(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{errors.New("Out of Memory Error: could not allocate block of size 256.0 KiB (3.7 GiB/3.7 GiB used)"), resourceMemory},
		{errors.New("Out of Memory Error: failed to pin block of size 256.0 KiB (95.1 MiB/95.3 MiB used)"), resourceMemory},
		{recipeErr(fmt.Errorf("match_sql: %w", errors.New("Out of Memory Error: failed to allocate data of size 4.0 KiB"))), resourceMemory},
		{errors.New("Out of Memory Error: failed to offload data block of size 256.0 KiB (2.5 MiB/2.6 MiB used).\nThis limit was set by the 'max_temp_directory_size' setting."), resourceDisk},
		{fmt.Errorf("write: %w", syscall.ENOSPC), resourceDisk},
		// Seen when a clean-up removed the spill folder during a 50M match.
		{recipeErr(fmt.Errorf("match_sql: %w", errors.New(`IO Error: Cannot open file "spill/kalla-duckdb-4608-2073892474/duckdb_temp_storage_DEFAULT-2.tmp": No such file or directory`))), resourceSpill},
		{errors.New(`IO Error: Could not read from file "/tmp/x/duckdb_temp_block-4611686018427388128.block": Input/output error`), resourceSpill},
		{errors.New(`IO Error: Cannot open file "/data/out/matched.parquet.partial": No such file or directory`), ""},
		{errors.New("Binder Error: column nope not found"), ""},
		{nil, ""},
	} {
		if got := resourceKind(c.err); got != c.want {
			t.Errorf("resourceKind(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	if n := offloadedBytes("failed to offload data block of size 32.0 KiB (18.0 MiB/18.0 MiB used)"); n != 18<<20 {
		t.Errorf("offloadedBytes = %d, want %d", n, 18<<20)
	}
	// A resource failure is never a recipe error, whatever wrapped it.
	e := &Engine{memLimit: "4GB"}
	err := e.resourceFailure(StageMatch, "", recipeErr(errors.New("match_sql: Out of Memory Error: could not allocate block")))
	if kalla.ErrorCode(err) != kalla.ERESOURCE || errors.Is(err, ErrRecipe) || !strings.Contains(err.Error(), "--memory-limit 4GB") {
		t.Errorf("resource failure: code %q, recipe %v: %v", kalla.ErrorCode(err), errors.Is(err, ErrRecipe), err)
	}
	e.tempDir = "/spill/kalla-duckdb-1-2"
	err = e.resourceFailure(StageMatch, "", recipeErr(errors.New(`match_sql: IO Error: Cannot open file "/spill/kalla-duckdb-1-2/duckdb_temp_storage_DEFAULT-2.tmp": No such file or directory`)))
	if kalla.ErrorCode(err) != kalla.ERESOURCE || errors.Is(err, ErrRecipe) || !strings.Contains(err.Error(), "stage match") || !strings.Contains(err.Error(), "/spill/kalla-duckdb-1-2") || !strings.Contains(err.Error(), "--temp-dir") {
		t.Errorf("lost spill file: code %q, recipe %v: %v", kalla.ErrorCode(err), errors.Is(err, ErrRecipe), err)
	}
}

// TestInspectOutOfMemory: staging for suggest (Inspect) under a limit too
// small for DuckDB's CSV buffers fails as a resource failure naming the
// stage, as a run would.
func TestInspectOutOfMemory(t *testing.T) {
	dir := t.TempDir()
	files, _, err := gen.Write(dir, gen.Standard(50_000))
	if err != nil {
		t.Fatal(err)
	}
	rec := gen.Recipe(files)
	var srcs [2]*file.Source
	for i, p := range []string{files.Invoices, files.Payments} {
		s, err := file.Open(t.Context(), p, file.Options{Type: kalla.SourceCSV})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		srcs[i] = s
	}
	e, err := Open(t.Context(), Options{MemoryLimit: "4MB", TempDir: filepath.Join(dir, "spill")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = e.Inspect(t.Context(), rec.Sources.Left, rec.Sources.Right, srcs[0], srcs[1])
	if kalla.ErrorCode(err) != kalla.ERESOURCE || !strings.Contains(err.Error(), "out of memory in stage stage_left") {
		t.Fatalf("Inspect at 4MB: code %q: %v", kalla.ErrorCode(err), err)
	}
}

// TestMemoryLimitLeavesRoom checks that a run's DuckDB gets less than the
// limit given, by the room measured for memory outside its buffers, and
// that small limits stay as given.
func TestMemoryLimitLeavesRoom(t *testing.T) {
	for _, c := range []struct {
		limit string
		want  int64 // memory_limit in bytes, within 2 % (DuckDB prints it rounded)
	}{
		{"4GiB", 3758431928},  // (1.15 x 4 GiB - 230 MiB) / 1.25
		{"512MiB", 300983255}, // (1.15 x 512 MiB - 230 MiB) / 1.25
		{"200MiB", 200 << 20},
	} {
		e, err := Open(t.Context(), Options{MemoryLimit: c.limit, TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		var text string
		if err := e.conn.QueryRowContext(t.Context(), "SELECT current_setting('memory_limit')").Scan(&text); err != nil {
			t.Fatal(err)
		}
		e.Close()
		if got := parseDuckSize(text); got < c.want*98/100 || got > c.want*102/100 {
			t.Errorf("limit %s: DuckDB memory_limit %s (%d bytes), want about %d", c.limit, text, got, c.want)
		}
	}
}

// TestMemoryLimitFlushesAllocator checks that a run under a memory limit
// has DuckDB's allocator return freed memory early, by thresholds that
// grow with the limit (8 MB and 32 MB at the smallest limits, which cut
// peak RSS at 5M rows under 512MB from 1.17x to 0.99x on 3 Dec; 1/64 and
// 1/32 of 4GB, which kept 50M staging from faulting its pages in again
// and again), and that a run without a limit keeps DuckDB's defaults.
func TestMemoryLimitFlushesAllocator(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		limit       string
		flush, bulk float64 // MiB
		bgt         string
	}{
		{"512MB", 7.6, 30.5, "true"}, // as before 6 Dec
		{"1GB", 14.8, 30.5, "true"},
		{"4GB", 59.1, 118.3, "true"}, // 3.7 GiB as DuckDB reads 4GB
		{"16GB", 128, 476.7, "true"},
		{"", 128, 512, "false"},
	} {
		e, err := Open(t.Context(), Options{MemoryLimit: c.limit, TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		var flush, bulk, bgt string
		err = e.conn.QueryRowContext(t.Context(), "SELECT current_setting('allocator_flush_threshold'), current_setting('allocator_bulk_deallocation_flush_threshold'), CAST(current_setting('allocator_background_threads') AS VARCHAR)").Scan(&flush, &bulk, &bgt)
		e.Close()
		if err != nil {
			t.Fatal(err)
		}
		// DuckDB 2.0 prints a size as it was set ("7812KiB") or in bytes
		// ("134217728B"), 1.5 always rounded ("7.6 MiB", which is 1 % off).
		near := func(text string, want float64) bool {
			got := float64(parseDuckSize(text)) / mib
			return got >= want*0.99 && got <= want*1.01
		}
		if !near(flush, c.flush) || !near(bulk, c.bulk) || bgt != c.bgt {
			t.Errorf("limit %q: allocator_flush_threshold %s, allocator_bulk_deallocation_flush_threshold %s, allocator_background_threads %s; want %.1f MiB, %.1f MiB, %s",
				c.limit, flush, bulk, bgt, c.flush, c.bulk, c.bgt)
		}
	}
}

// TestRulesSerialUnderMemoryLimit checks that a rules plan gets no second
// connection under a memory limit (its statements run one at a time, as
// the writes do) and gets one without a limit: at gen.Standard(10M) under
// 800MB the two sides' reasons, built at once, ran out of memory.
func TestRulesSerialUnderMemoryLimit(t *testing.T) {
	for _, c := range []struct {
		limit string
		fork  bool
	}{
		{"1GB", false},
		{"", true},
	} {
		e, err := Open(t.Context(), Options{MemoryLimit: c.limit, TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		_, fork := e.rulesDB().(rules.Forker)
		e.Close()
		if fork != c.fork {
			t.Errorf("limit %q: the rules plan can fork a connection: %v, want %v", c.limit, fork, c.fork)
		}
	}
}
