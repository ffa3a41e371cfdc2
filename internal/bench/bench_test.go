package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// Settings, from the environment:
//
//	KALLA_BIN             the kalla binary to time (scripts/bench.sh builds
//	                      bin/kalla and sets it); unset: built into a temp dir
//	KALLA_BENCH_INVOICES  invoices to generate (default 1,000,000)
//	KALLA_BENCH_REPS      repetitions of each side (default 3)
//	KALLA_BENCH_SCHEMA=1  declare the amount columns DECIMAL(18,2) in the
//	                      recipe's schema, which spares Kalla measuring and
//	                      converting them (the default recipe declares none)
const (
	defaultInvoices = 1_000_000
	defaultReps     = 3
)

// fixture is the data and the binaries, made once per process.
type fixture struct {
	dir        string // removed by TestMain
	spec       gen.Spec
	files      gen.Files
	truth      gen.Truth
	genTime    time.Duration
	recipe     string
	schema     bool // the recipe declares the amount columns' types
	kallaBin   string
	plainBin   string
	leftBytes  int64
	rightBytes int64
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
	fixDir  string
)

// TestMain removes the generated data once the benchmark is done.
func TestMain(m *testing.M) {
	code := m.Run()
	if fixDir != "" {
		os.RemoveAll(fixDir)
	}
	os.Exit(code)
}

func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive integer", name, v)
	}
	return n, nil
}

// goBuild builds a main package into out.
func goBuild(pkg, out string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// prepare generates the data set, writes the recipe and builds the binaries.
func prepare() (*fixture, error) {
	n, err := envInt("KALLA_BENCH_INVOICES", defaultInvoices)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kalla-bench-")
	if err != nil {
		return nil, err
	}
	fixDir = dir
	f := &fixture{dir: dir, spec: gen.Standard(n)}
	t0 := time.Now()
	if f.files, f.truth, err = gen.Write(dir, f.spec); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	f.genTime = time.Since(t0)
	for _, x := range []struct {
		path string
		n    *int64
	}{{f.files.Invoices, &f.leftBytes}, {f.files.Payments, &f.rightBytes}} {
		st, err := os.Stat(x.path)
		if err != nil {
			return nil, err
		}
		*x.n = st.Size()
	}
	recipe := gen.Recipe(f.files)
	if os.Getenv("KALLA_BENCH_SCHEMA") == "1" {
		recipe.Sources.Left.Schema = map[string]string{"amount": "DECIMAL(18,2)"}
		recipe.Sources.Right.Schema = map[string]string{"paid_amount": "DECIMAL(18,2)"}
		f.schema = true
	}
	rec, err := json.MarshalIndent(recipe, "", "  ")
	if err != nil {
		return nil, err
	}
	f.recipe = filepath.Join(dir, "recipe.json")
	if err := os.WriteFile(f.recipe, rec, 0o644); err != nil {
		return nil, err
	}
	f.kallaBin = os.Getenv("KALLA_BIN")
	if f.kallaBin == "" {
		f.kallaBin = filepath.Join(dir, "kalla")
		if err := goBuild("github.com/kalla-recon/kalla/cmd/kalla", f.kallaBin); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(f.kallaBin); err != nil {
		return nil, fmt.Errorf("KALLA_BIN: %w", err)
	}
	f.plainBin = filepath.Join(dir, "plainduck")
	if err := goBuild("github.com/kalla-recon/kalla/internal/bench/plainduck", f.plainBin); err != nil {
		return nil, err
	}
	return f, nil
}

// timed runs a command and returns its stdout, wall time and CPU time. A
// failure includes stderr.
func timed(ctx context.Context, name string, args ...string) ([]byte, timing, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	err := cmd.Run()
	t := timing{Wall: time.Since(t0)}
	if cmd.ProcessState != nil {
		t.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return nil, t, fmt.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.Bytes(), t, nil
}

func (f *fixture) runKalla(ctx context.Context, out string) (kallaRun, error) {
	stdout, d, err := timed(ctx, f.kallaBin, "run", "--recipe", f.recipe, "--out", out, "--json")
	if err != nil {
		return kallaRun{}, err
	}
	var s kalla.Summary
	if err := json.Unmarshal(stdout, &s); err != nil {
		return kallaRun{}, fmt.Errorf("kalla --json printed no summary: %v\n%s", err, stdout)
	}
	for _, o := range s.Outputs {
		if _, err := os.Stat(filepath.Join(out, o.Name)); err != nil {
			return kallaRun{}, fmt.Errorf("kalla output: %w", err)
		}
	}
	return kallaRun{timing: d, Summary: &s}, checkKalla(&s, f.truth)
}

func (f *fixture) runPlain(ctx context.Context, out string) (plainRun, error) {
	stdout, d, err := timed(ctx, f.plainBin, "-invoices", f.files.Invoices, "-payments", f.files.Payments, "-out", out)
	if err != nil {
		return plainRun{}, err
	}
	var r plainResult
	if err := json.Unmarshal(stdout, &r); err != nil {
		return plainRun{}, fmt.Errorf("plainduck printed no result: %v\n%s", err, stdout)
	}
	return plainRun{timing: d, Result: &r}, checkPlain(&r, f.truth)
}

// BenchmarkKallaVsPlainDuckDB times `kalla run` end to end against the same
// reconciliation in plain DuckDB, alternating the two, and prints a report.
// Every run's answer is checked against gen's truth and a wrong answer fails
// the benchmark. It reports the medians and their ratio; it asserts nothing
// about speed. Run it once: -benchtime 1x.
// alternate runs Kalla and the plain baseline reps times each, in turn,
// so that drift in the machine (page cache, other load, thermal) falls on
// both sides alike, and adds their timings to r. label names the
// benchmark in the progress lines and the output folders; check, when
// set, checks each of Kalla's summaries beyond the common checks.
func (f *fixture) alternate(ctx context.Context, r *report, reps int, label string, check func(*kalla.Summary) error) error {
	prefix := ""
	if label != "" {
		prefix = label + " "
	}
	for i := range reps {
		out := filepath.Join(f.dir, fmt.Sprintf("out-%s-kalla-%d", label, i))
		k, err := f.runKalla(ctx, out)
		if err == nil && check != nil {
			err = check(k.Summary)
		}
		if err != nil {
			return err
		}
		os.RemoveAll(out)
		r.Kalla = append(r.Kalla, k)
		r.DuckDB = k.Summary.EngineVersion

		out = filepath.Join(f.dir, fmt.Sprintf("out-%s-plain-%d", label, i))
		p, err := f.runPlain(ctx, out)
		if err != nil {
			return err
		}
		os.RemoveAll(out)
		r.Plain = append(r.Plain, p)
		fmt.Fprintf(os.Stderr, "%srep %d/%d: kalla %s, plain %s\n", prefix, i+1, reps, secs(k.Wall), secs(p.Wall))
	}
	return nil
}

func BenchmarkKallaVsPlainDuckDB(b *testing.B) {
	fixOnce.Do(func() { fix, fixErr = prepare() })
	if fixErr != nil {
		b.Fatal(fixErr)
	}
	reps, err := envInt("KALLA_BENCH_REPS", defaultReps)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	for range b.N {
		r := &report{
			Spec: fix.spec, Truth: fix.truth, GenTime: fix.genTime, CPUs: runtime.NumCPU(), KallaBin: fix.kallaBin,
			LeftMB: float64(fix.leftBytes) / 1e6, RightMB: float64(fix.rightBytes) / 1e6,
			LoadBefore: loadAverage(), Schema: fix.schema,
		}
		if err := fix.alternate(ctx, r, reps, "engine", nil); err != nil {
			b.Fatal(err)
		}
		r.LoadAfter = loadAverage()
		r.write(os.Stdout)
		b.ReportMetric(r.kallaMedian().Seconds(), "kalla-s")
		b.ReportMetric(r.plainMedian().Seconds(), "plain-s")
		b.ReportMetric(r.ratio(), "kalla/plain")
	}
}
