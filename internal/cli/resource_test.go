package cli_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/cli"
	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// kallaBinary builds cmd/kalla once per test into a temporary folder: the
// exit code and the signal handling are the process's, so they are checked
// on the real binary.
func kallaBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kalla")
	if b, err := exec.Command("go", "build", "-o", bin, "github.com/kalla-recon/kalla/cmd/kalla").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return bin
}

// resourceRecipe writes 300,000 generated invoices and their payments and a
// recipe over them with the given match SQL.
func resourceRecipe(t *testing.T, dir, matchSQL string) string {
	t.Helper()
	files, _, err := gen.Write(dir, gen.Standard(300_000))
	if err != nil {
		t.Fatal(err)
	}
	rec := gen.Recipe(files)
	rec.MatchSQL = matchSQL
	data, _ := json.Marshal(rec)
	path := filepath.Join(dir, "recipe-"+time.Now().Format("150405.000000000")+".json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runBinary runs the binary and returns its exit code and stderr.
func runBinary(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %s: %v", bin, err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// spillFolders lists the spill folders Kalla left in dir.
func spillFolders(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "kalla-duckdb-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// paddedSQL makes a match table of about 650 bytes a row (300,000 rows),
// far beyond a 100MB memory limit once sorted, so that the match spills.
const paddedSQL = `SELECT l.invoice_id, r.payment_id, repeat(l.customer, 100) AS pad
FROM left_src l JOIN right_src r ON r.reference_number = l.invoice_id`

// TestResourceFailuresExitOne: running out of memory or of spill space is
// not a usage error: the real binary exits 1 (not 2) with a message naming
// the flag to change, and removes its spill folder. An invalid recipe still
// exits 2.
func TestResourceFailuresExitOne(t *testing.T) {
	bin := kallaBinary(t)
	data := t.TempDir()

	t.Run("out of memory", func(t *testing.T) {
		// An ungrouped list() of 300,000 padded strings (about 150 MB) is
		// one aggregate state: DuckDB cannot spill it.
		recipe := resourceRecipe(t, data, `SELECT l.invoice_id, r.payment_id
FROM left_src l JOIN right_src r ON r.reference_number = l.invoice_id
JOIN (SELECT list(repeat(customer, 50)) AS xs FROM left_src) x ON len(x.xs) > 0`)
		spill := t.TempDir()
		code, stderr := runBinary(t, bin, "run", "--recipe", recipe, "--out", t.TempDir(), "--memory-limit", "100MB", "--temp-dir", spill)
		if code != cli.ExitFailed {
			t.Fatalf("exit %d, want %d\n%s", code, cli.ExitFailed, stderr)
		}
		for _, want := range []string{"out of memory in stage match", "raise --memory-limit", "--memory-limit 100MB", "Out of Memory Error"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
		if left := spillFolders(t, spill); len(left) > 0 {
			t.Errorf("spill folder left behind: %v", left)
		}
	})

	t.Run("out of disk", func(t *testing.T) {
		// A real full disk: a 20 MB tmpfs as the spill folder. Mounting
		// needs root (or CAP_SYS_ADMIN); without it the case cannot be
		// made real: skipped, saying so, on a developer's machine, and a
		// failure where the suite must not pass by skipping (CI runs as
		// root).
		spill := t.TempDir()
		if b, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", spill).CombinedOutput(); err != nil {
			if testenv.Required() {
				t.Fatalf("cannot mount a 20 MB tmpfs to fill (needs root), and the suite requires every case: %v %s", err, b)
			}
			t.Skipf("cannot mount a 20 MB tmpfs to fill (needs root): %v %s", err, b)
		}
		t.Cleanup(func() { exec.Command("umount", spill).Run() })
		recipe := resourceRecipe(t, data, paddedSQL)
		code, stderr := runBinary(t, bin, "run", "--recipe", recipe, "--out", t.TempDir(), "--memory-limit", "150MB", "--temp-dir", spill)
		if code != cli.ExitFailed {
			t.Fatalf("exit %d, want %d\n%s", code, cli.ExitFailed, stderr)
		}
		for _, want := range []string{"out of disk space in stage", "--temp-dir", "free", spill} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
		if left := spillFolders(t, spill); len(left) > 0 {
			t.Errorf("spill folder left behind: %v", left)
		}
	})

	t.Run("invalid recipe still exits 2", func(t *testing.T) {
		recipe := resourceRecipe(t, data, `SELECT l.invoice_id, r.nope FROM left_src l JOIN right_src r ON true`)
		code, stderr := runBinary(t, bin, "run", "--recipe", recipe, "--out", t.TempDir(), "--memory-limit", "100MB")
		if code != cli.ExitInvalid || !strings.Contains(stderr, "match_sql") {
			t.Fatalf("exit %d, want %d\n%s", code, cli.ExitInvalid, stderr)
		}
	})
}

// startStaged starts a spilling run of the padded recipe with --temp-dir
// spill and returns once it has made its spill folder and staged a side,
// with its stderr and a channel that receives its exit.
func startStaged(t *testing.T, bin, spill, out string) (*exec.Cmd, *syncBuffer, chan error) {
	t.Helper()
	recipe := resourceRecipe(t, t.TempDir(), paddedSQL)
	// A generous limit so the run completes if never stopped; it still
	// spills while sorting the padded match table.
	cmd := exec.Command(bin, "run", "--recipe", recipe, "--out", out, "--memory-limit", "300MB", "--temp-dir", spill, "--threads", "1")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.After(2 * time.Minute)
	for staged := false; !staged; {
		select {
		case err := <-exited:
			t.Fatalf("run ended before it could be stopped: %v\n%s", err, stderr.String())
		case <-deadline:
			t.Fatalf("no spill folder appeared\n%s", stderr.String())
		case <-time.After(20 * time.Millisecond):
			staged = len(spillFolders(t, spill)) > 0 && strings.Contains(stderr.String(), "done")
		}
	}
	return cmd, stderr, exited
}

// TestInterruptRemovesSpill: Ctrl-C (SIGINT) during a run that spills stops
// it, says so in words, exits ExitInterrupted, and leaves no spill folder
// and no summary behind.
func TestInterruptRemovesSpill(t *testing.T) {
	bin := kallaBinary(t)
	spill, out := t.TempDir(), t.TempDir()
	cmd, stderr, exited := startStaged(t, bin, spill, out)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := <-exited
	if err == nil {
		// The signal comes once a side is staged, seconds before the match
		// and the write are done: a run that completed anyway proves
		// nothing, and must not pass as if it had.
		t.Fatalf("the run completed before SIGINT arrived\n%s", stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != cli.ExitInterrupted {
		t.Errorf("interrupted run exited %d, want %d\n%s", code, cli.ExitInterrupted, stderr.String())
	}
	if msg := stderr.String(); !strings.Contains(msg, "kalla: interrupted: stopped before finishing") || strings.Contains(msg, "context canceled") {
		t.Errorf("an interrupted run should say it was interrupted, in words:\n%s", msg)
	}
	if left := spillFolders(t, spill); len(left) > 0 {
		t.Errorf("spill folder left behind after SIGINT: %v\n%s", left, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "summary.json")); err == nil {
		t.Errorf("an interrupted run wrote a summary")
	}
}

// TestKilledRunSpillRemovedByNext: a run killed outright (SIGKILL, as the
// kernel's out-of-memory killer does) cannot clean up: its spill folder
// stays. The next run on the same --temp-dir removes it and says so, and
// leaves nothing of its own.
func TestKilledRunSpillRemovedByNext(t *testing.T) {
	bin := kallaBinary(t)
	spill := t.TempDir()
	cmd, _, exited := startStaged(t, bin, spill, t.TempDir())
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	killed := spillFolders(t, spill)
	if len(killed) != 1 {
		t.Fatalf("after SIGKILL: spill folders %v, want the killed run's one", killed)
	}
	recipe := resourceRecipe(t, t.TempDir(), gen.MatchSQL)
	code, stderr := runBinary(t, bin, "run", "--recipe", recipe, "--out", t.TempDir(), "--temp-dir", spill)
	if code != cli.ExitOK {
		t.Fatalf("next run exited %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "removed the spill folder of a process that is gone") || !strings.Contains(stderr, killed[0]) {
		t.Errorf("the next run did not say it removed %s:\n%s", killed[0], stderr)
	}
	if left, _ := os.ReadDir(spill); len(left) > 0 {
		t.Errorf("left in the spill folder: %v", left)
	}
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
