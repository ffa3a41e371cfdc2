package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// Scale benchmark settings, from the environment (scripts/bench-scale.sh):
//
//	KALLA_BENCH_SCALE_DIR      folder for the data sets, kept between runs
//	                           (required: without it the benchmark skips)
//	KALLA_BENCH_SCALE          sizes as invoices:memory-limit pairs
//	                           (default "50000000:4GB,100000000:8GB")
//	KALLA_BENCH_SCALE_RECIPES  "sql", "rules" or "sql,rules" (default both)
//	KALLA_BENCH_REPS           repetitions of each side (default 1 here)
const defaultScale = "50000000:4GB,100000000:8GB"

// scaleSize is one data set of the scale benchmark and its memory cap.
type scaleSize struct {
	invoices int
	limit    string
}

func scaleSizes() ([]scaleSize, error) {
	spec := os.Getenv("KALLA_BENCH_SCALE")
	if spec == "" {
		spec = defaultScale
	}
	var out []scaleSize
	for _, p := range strings.Split(spec, ",") {
		n, limit, ok := strings.Cut(strings.TrimSpace(p), ":")
		v, err := strconv.Atoi(strings.ReplaceAll(n, "_", ""))
		if !ok || err != nil || v <= 0 || limit == "" {
			return nil, fmt.Errorf("KALLA_BENCH_SCALE: %q is not invoices:memory-limit (50000000:4GB)", p)
		}
		out = append(out, scaleSize{v, limit})
	}
	return out, nil
}

// scaleData generates gen.Standard(n) into dir/n<n> once: a later run finds
// truth.json there (written last) and reuses the files.
func scaleData(dir string, n int) (gen.Files, gen.Truth, time.Duration, error) {
	d := filepath.Join(dir, fmt.Sprintf("n%d", n))
	truthPath := filepath.Join(d, "truth.json")
	f := gen.Files{Invoices: filepath.Join(d, "invoices.csv"), Payments: filepath.Join(d, "payments.csv")}
	var t gen.Truth
	if b, err := os.ReadFile(truthPath); err == nil {
		if err := json.Unmarshal(b, &t); err != nil {
			return f, t, 0, fmt.Errorf("%s: %w", truthPath, err)
		}
		return f, t, 0, nil
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		return f, t, 0, err
	}
	t0 := time.Now()
	f, t, err := gen.Write(d, gen.Standard(n))
	if err != nil {
		return f, t, 0, err
	}
	took := time.Since(t0)
	b, _ := json.Marshal(t)
	return f, t, took, os.WriteFile(truthPath, b, 0o644)
}

// warmFiles reads both input files through once and returns the bytes
// read. Each side of a pair then starts with the inputs in the page cache
// as far as it holds them: otherwise whichever side runs first after
// other work (the other size, another recipe) reads its CSVs from disk
// and the other from memory. At 50M, right after the 100M runs, Kalla's
// staging took 46.7 s, against 33.3 s in the next pair, warm.
func warmFiles(f gen.Files) (int64, error) {
	var n int64
	buf := make([]byte, 1<<20)
	for _, p := range []string{f.Invoices, f.Payments} {
		fh, err := os.Open(p)
		if err != nil {
			return n, err
		}
		// Wrapped so that the copy reads through buf, 1 MiB at a time,
		// not through io.Discard's own small buffer.
		k, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{fh}, buf)
		fh.Close()
		n += k
		if err != nil {
			return n, fmt.Errorf("read %s: %w", p, err)
		}
	}
	return n, nil
}

// sample is one reading of a process's resident memory and spill folder.
type sample struct {
	at         time.Time
	rss, spill int64
}

// watchProcess samples pid's VmRSS and the disk use under spillDir every
// 250 ms until stop is closed.
func watchProcess(pid int, spillDir string, stop <-chan struct{}) *[]sample {
	var out []sample
	var mu sync.Mutex
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				s := sample{at: time.Now(), rss: vmRSS(pid), spill: treeUsage(spillDir)}
				mu.Lock()
				out = append(out, s)
				mu.Unlock()
			}
		}
	}()
	return &out
}

// vmRSS reads a process's resident set size, 0 when it is gone.
func vmRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// treeUsage is the disk (allocated blocks) the files under dir take.
func treeUsage(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}

// window is a named span of a run, for per-stage peaks.
type window struct {
	name       string
	from, to   time.Time
	dur        time.Duration
	rss, spill int64
}

func peaks(ws []window, ss []sample) {
	for i := range ws {
		for _, s := range ss {
			if !s.at.Before(ws[i].from) && s.at.Before(ws[i].to) {
				ws[i].rss = max(ws[i].rss, s.rss)
				ws[i].spill = max(ws[i].spill, s.spill)
			}
		}
	}
}

// scaleRun is one measured run of either side.
type scaleRun struct {
	who      string
	wall     time.Duration
	peakRSS  int64 // from the kernel's rusage
	stages   []window
	err      error
	checkErr error
	// left is what the process left in its spill folder: Kalla must
	// leave nothing there (checked for Kalla's runs only).
	left []string
}

// runMeasured runs a command with its spill folder spill, sampling it.
func runMeasured(ctx context.Context, spill string, name string, args ...string) ([]byte, []sample, time.Time, scaleRun, error) {
	os.RemoveAll(spill)
	if err := os.MkdirAll(spill, 0o755); err != nil {
		return nil, nil, time.Time{}, scaleRun{}, err
	}
	defer os.RemoveAll(spill)
	var stdout, stderr strings.Builder
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, nil, t0, scaleRun{}, err
	}
	stop := make(chan struct{})
	ss := watchProcess(cmd.Process.Pid, spill, stop)
	err := cmd.Wait()
	close(stop)
	r := scaleRun{wall: time.Since(t0)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.peakRSS = ru.Maxrss << 10
	}
	time.Sleep(300 * time.Millisecond) // let the sampler see stop
	if entries, rerr := os.ReadDir(spill); rerr == nil {
		for _, e := range entries {
			r.left = append(r.left, e.Name())
		}
	}
	if err != nil {
		r.err = fmt.Errorf("%s: %v\n%s", filepath.Base(name), err, lastLines(stderr.String(), 5))
	}
	return []byte(stdout.String()), *ss, t0, r, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// BenchmarkScale runs Kalla and the hand-written DuckDB baseline on the 50M
// and 100M sets (KALLA_BENCH_SCALE) under the same memory cap, alternating,
// and prints for each stage its time, peak RSS and peak spill; every answer
// is checked against gen's truth. It skips unless KALLA_BENCH_SCALE_DIR
// names a folder (tens of GB): `make bench-scale DIR=...`.
func BenchmarkScale(b *testing.B) {
	dir := os.Getenv("KALLA_BENCH_SCALE_DIR")
	if dir == "" {
		b.Skip("KALLA_BENCH_SCALE_DIR is not set (make bench-scale DIR=...)")
	}
	sizes, err := scaleSizes()
	if err != nil {
		b.Fatal(err)
	}
	reps, err := envInt("KALLA_BENCH_REPS", 1)
	if err != nil {
		b.Fatal(err)
	}
	recipes := os.Getenv("KALLA_BENCH_SCALE_RECIPES")
	if recipes == "" {
		recipes = "sql,rules"
	}
	kallaBin := os.Getenv("KALLA_BIN")
	bins := filepath.Join(dir, "bin")
	if kallaBin == "" {
		kallaBin = filepath.Join(bins, "kalla")
		if err := goBuild("github.com/kalla-recon/kalla/cmd/kalla", kallaBin); err != nil {
			b.Fatal(err)
		}
	}
	plain := map[string]string{"sql": filepath.Join(bins, "plainduck"), "rules": filepath.Join(bins, "plainrules")}
	for _, name := range []string{"plainduck", "plainrules"} {
		if err := goBuild("github.com/kalla-recon/kalla/internal/bench/"+name, filepath.Join(bins, name)); err != nil {
			b.Fatal(err)
		}
	}
	ctx := b.Context()
	for range b.N {
		for _, sz := range sizes {
			files, truth, genTime, err := scaleData(dir, sz.invoices)
			if err != nil {
				b.Fatal(err)
			}
			fmt.Fprintf(os.Stdout, "\n== Kalla scale benchmark: gen.Standard(%s), %s invoices x %s payments, memory limit %s ==\n",
				thousands(sz.invoices), thousands(truth.Invoices), thousands(truth.Payments), sz.limit)
			if genTime > 0 {
				fmt.Fprintf(os.Stdout, "generated in %s into %s\n", secs(genTime), filepath.Dir(files.Invoices))
			}
			fmt.Fprintf(os.Stdout, "machine   load average %s\n", loadAverage())
			for _, kind := range strings.Split(recipes, ",") {
				kind = strings.TrimSpace(kind)
				rec := gen.Recipe(files)
				if kind == "rules" {
					rec = rulesRecipe(files, false)
				} else if kind != "sql" {
					b.Fatalf("KALLA_BENCH_SCALE_RECIPES: unknown recipe %q (sql, rules)", kind)
				}
				recipePath := filepath.Join(dir, fmt.Sprintf("recipe-%s-%d.json", kind, sz.invoices))
				data, _ := json.MarshalIndent(rec, "", "  ")
				if err := os.WriteFile(recipePath, data, 0o644); err != nil {
					b.Fatal(err)
				}
				var runs []scaleRun
				warm := func() {
					t0 := time.Now()
					n, err := warmFiles(files)
					if err != nil {
						b.Fatal(err)
					}
					fmt.Fprintf(os.Stderr, "read both CSVs (%s bytes) into the page cache in %s\n", thousands(int(n)), secs(time.Since(t0)))
				}
				for i := range reps {
					warm()
					k := scaleKalla(ctx, kallaBin, dir, recipePath, sz.limit, truth, kind == "rules")
					fmt.Fprintf(os.Stderr, "%s %s rep %d: kalla %s %v\n", thousands(sz.invoices), kind, i+1, secs(k.wall), errText(k))
					failed(b, k, sz, kind, i)
					runs = append(runs, k)
					warm()
					p := scalePlain(ctx, plain[kind], dir, files, sz.limit, truth)
					fmt.Fprintf(os.Stderr, "%s %s rep %d: plain %s %v\n", thousands(sz.invoices), kind, i+1, secs(p.wall), errText(p))
					failed(b, p, sz, kind, i)
					runs = append(runs, p)
				}
				writeScale(os.Stdout, kind, runs)
			}
		}
	}
}

// failed fails the benchmark, which goes on, when run r failed or gave a
// wrong answer: a wrong answer is never a measurement.
func failed(b *testing.B, r scaleRun, sz scaleSize, kind string, i int) {
	if r.err != nil || r.checkErr != nil {
		b.Errorf("%s %s rep %d: %s %s", thousands(sz.invoices), kind, i+1, r.who, errText(r))
	}
}

func errText(r scaleRun) string {
	switch {
	case r.err != nil:
		return "FAILED: " + r.err.Error()
	case r.checkErr != nil:
		return "WRONG: " + r.checkErr.Error()
	}
	if r.who == "kalla" {
		return "ok, answers checked, spill folder empty"
	}
	return "ok, answers checked"
}

func scaleKalla(ctx context.Context, bin, dir, recipe, limit string, truth gen.Truth, rules bool) scaleRun {
	out := filepath.Join(dir, "out-kalla")
	spill := filepath.Join(dir, "spill-kalla")
	defer os.RemoveAll(out)
	stdout, ss, _, r, err := runMeasured(ctx, spill, bin, "run", "--recipe", recipe, "--out", out, "--json", "--memory-limit", limit, "--temp-dir", spill)
	r.who = "kalla"
	if err != nil {
		r.err = err
		return r
	}
	if r.err != nil {
		return r
	}
	var s kalla.Summary
	if err := json.Unmarshal(stdout, &s); err != nil {
		r.err = fmt.Errorf("kalla printed no summary: %v", err)
		return r
	}
	r.checkErr = checkKalla(&s, truth)
	if r.checkErr == nil && rules {
		r.checkErr = checkRules(&s, truth)
	}
	if r.checkErr == nil && len(r.left) > 0 {
		r.checkErr = fmt.Errorf("kalla left %s in its --temp-dir %s", strings.Join(r.left, ", "), spill)
	}
	// The stages in time: both sides stage at once from StartedAt, then
	// the match, then the write.
	at := s.StartedAt
	dur := map[string]time.Duration{}
	spilled := map[string]int64{}
	for _, st := range s.Stages {
		dur[st.Name] = time.Duration(st.DurationMS) * time.Millisecond
		spilled[st.Name] = st.SpillBytes
	}
	staging := max(dur["stage_left"], dur["stage_right"])
	ws := []window{{name: "staging (both sides)", from: at, to: at.Add(staging), dur: staging}}
	at = at.Add(staging)
	for _, n := range []string{"match", "write"} {
		ws = append(ws, window{name: n, from: at, to: at.Add(dur[n]), dur: dur[n]})
		at = at.Add(dur[n])
	}
	peaks(ws, ss)
	// The engine's own spill figures (sampled inside the run) beside the
	// outside ones.
	ws[0].spill = max(ws[0].spill, spilled["stage_left"])
	ws[1].spill = max(ws[1].spill, spilled["match"])
	ws[2].spill = max(ws[2].spill, spilled["write"])
	r.stages = ws
	return r
}

func scalePlain(ctx context.Context, bin, dir string, files gen.Files, limit string, truth gen.Truth) scaleRun {
	out := filepath.Join(dir, "out-plain")
	spill := filepath.Join(dir, "spill-plain")
	defer os.RemoveAll(out)
	stdout, ss, t0, r, err := runMeasured(ctx, spill, bin, "-invoices", files.Invoices, "-payments", files.Payments, "-out", out, "-memory-limit", limit, "-temp-dir", spill)
	r.who = "plain"
	if err != nil {
		r.err = err
		return r
	}
	if r.err != nil {
		return r
	}
	var res plainResult
	if err := json.Unmarshal(stdout, &res); err != nil {
		r.err = fmt.Errorf("baseline printed no result: %v", err)
		return r
	}
	r.checkErr = checkPlain(&res, truth)
	// Its statements run one after the other, after process start-up.
	at := t0.Add(r.wall - time.Duration(res.DurationMS)*time.Millisecond)
	var ws []window
	for _, st := range res.Steps {
		d := time.Duration(st.DurationMS * float64(time.Millisecond))
		ws = append(ws, window{name: st.Name, from: at, to: at.Add(d), dur: d})
		at = at.Add(d)
	}
	peaks(ws, ss)
	r.stages = ws
	return r
}

func gib(n int64) string { return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30)) }

// writeScale prints each run's stages with time, peak RSS and peak spill.
func writeScale(w io.Writer, kind string, runs []scaleRun) {
	fmt.Fprintf(w, "\n-- recipe %s --\n", kind)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tstage\ttime\tpeak RSS\tpeak spill\t")
	var kw, pw []time.Duration
	for _, r := range runs {
		for _, s := range r.stages {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", r.who, s.name, secs(s.dur), gib(s.rss), gib(s.spill))
		}
		fmt.Fprintf(tw, "%s\tWHOLE RUN\t%s\t%s\t\t%s\n", r.who, secs(r.wall), gib(r.peakRSS), errText(r))
		if r.err == nil && r.checkErr == nil {
			if r.who == "kalla" {
				kw = append(kw, r.wall)
			} else {
				pw = append(pw, r.wall)
			}
		}
	}
	tw.Flush()
	if len(kw) > 0 && len(pw) > 0 {
		fmt.Fprintf(w, "ratio kalla/plain (median wall) = %.2f\n", ratio(median(kw), median(pw)))
	}
}
