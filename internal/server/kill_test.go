package server_test

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/runner"
)

// buildKalla builds the kalla binary once per test binary.
var (
	buildOnce sync.Once
	kallaBin  string
	buildErr  error
)

func kallaBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kalla-bin-")
		if err != nil {
			buildErr = err
			return
		}
		kallaBin = filepath.Join(dir, "kalla")
		out, err := exec.Command("go", "build", "-o", kallaBin, "github.com/kalla-recon/kalla/cmd/kalla").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build kalla: %v", buildErr)
	}
	return kallaBin
}

// process is a `kalla serve` subprocess.
type process struct {
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	stderr strings.Builder
	exited chan error
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// startProcess runs `kalla serve` on 127.0.0.1:0 over dataDir and waits
// until it prints the address it serves on.
func startProcess(t *testing.T, dataDir string, extra ...string) *process {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--file-root", fixtureDir(t), "--threads", "2"}, extra...)
	cmd := exec.Command(kallaBinary(t), args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KALLA_") || strings.HasPrefix(kv, "KALLA_TEST_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, exited: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			if i := strings.Index(line, "serving on "); i >= 0 {
				f := strings.Fields(line[i+len("serving on "):])
				select {
				case ready <- f[0]:
				default:
				}
			}
		}
		io.Copy(io.Discard, pipe)
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.exited
		}
	})
	select {
	case p.url = <-ready:
	case err := <-p.exited:
		t.Fatalf("kalla serve exited: %v\n%s", err, p.log())
	case <-time.After(60 * time.Second):
		t.Fatalf("kalla serve did not start:\n%s", p.log())
	}
	return p
}

// TestKillAndRestart SIGKILLs `kalla serve` in the middle of a run,
// restarts it on the same data folder and checks that the run is recorded
// as failed, interrupted, once its lease expired, and that nothing of it is
// served, not even files that look finished. Then SIGTERM stops the server within its shutdown
// timeout, recording a run it had to cut short.
func TestKillAndRestart(t *testing.T) {
	dataDir := t.TempDir()
	p := startProcess(t, dataDir, "--lease", testLease.String())
	s := &testServer{t: t, url: p.url, dataDir: dataDir, client: defaultClient()}
	id := s.startRun(map[string]any{"recipe": slowRecipe("slow")})
	s.waitRun(id, 60*time.Second, "the match stage", func(r run) bool { return r.Stage == recon.StageMatch })
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited

	// What a process killed while writing could leave behind.
	out := runner.OutDir(dataDir, id)
	os.MkdirAll(out, 0o755)
	for _, name := range []string{"matched.parquet", recon.SummaryFile} {
		writeFile(t, out, name, `{"status": "completed"}`)
	}

	p = startProcess(t, dataDir, "--shutdown-timeout", "1s", "--lease", testLease.String())
	s.url = p.url
	// The lease the dead process held runs out; then the new process's
	// reaper settles the run.
	r := s.waitRun(id, interruptedWithin, "interrupted", func(r run) bool { return r.Status.Done() })
	if r.Status != kalla.RunFailed || !strings.HasPrefix(r.Error, "interrupted") {
		t.Fatalf("run after kill and restart: %s %q", r.Status, r.Error)
	}
	s.wantError("GET", "/api/runs/"+id+"/files/summary.json", nil, 409, kalla.ECONFLICT, "failed")
	s.wantError("GET", "/api/runs/"+id+"/files/matched.parquet", nil, 409, kalla.ECONFLICT)
	s.wantError("GET", "/api/runs/"+id+"/results/matched", nil, 409, kalla.ECONFLICT)
	// The reaper removes them right after recording the run failed.
	waitGone(t, out, 10*time.Second)
	// The restarted server runs new work.
	done := s.startRun(map[string]any{"recipe": smallRecipe()})
	s.waitRun(done, 30*time.Second, "completion", func(r run) bool { return r.Status == kalla.RunCompleted })

	// SIGTERM with a run in progress: stop within the shutdown timeout.
	cut := s.startRun(map[string]any{"recipe": slowRecipe("slow")})
	s.waitRun(cut, 60*time.Second, "the match stage", func(r run) bool { return r.Stage == recon.StageMatch })
	t0 := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("kalla serve exited with %v after SIGTERM:\n%s", err, p.log())
		}
	case <-time.After(time.Second + cancelWithin):
		t.Fatalf("kalla serve still running %s after SIGTERM", time.Since(t0))
	}
	t.Logf("SIGTERM with a running run: exited after %s", time.Since(t0).Round(time.Millisecond))
	if !strings.Contains(p.log(), "shutting down") {
		t.Errorf("no shutdown message:\n%s", p.log())
	}
	if r := readRunFromStore(t, dataDir, cut); r.Status != kalla.RunFailed || r.Error != runner.ErrShutdown.Error() {
		t.Errorf("run cut by SIGTERM: %s %q", r.Status, r.Error)
	}
	if r := readRunFromStore(t, dataDir, done); r.Status != kalla.RunCompleted {
		t.Errorf("completed run after SIGTERM: %s", r.Status)
	}
}

// TestMigrateCommand runs `kalla migrate` twice on a fresh data folder: the
// first applies the migrations, the second finds nothing to do; then
// `kalla serve` starts on the migrated store.
func TestMigrateCommand(t *testing.T) {
	dataDir := t.TempDir()
	for i, want := range []string{"applied: 0001_init", "is up to date"} {
		cmd := exec.Command(kallaBinary(t), "migrate", "--data-dir", dataDir)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) || (i == 1 && strings.Contains(string(out), "applied")) {
			t.Fatalf("kalla migrate (run %d): %v\n%s", i+1, err, out)
		}
	}
	p := startProcess(t, dataDir)
	s := &testServer{t: t, url: p.url, dataDir: dataDir, client: defaultClient()}
	s.call("GET", "/readyz", nil, 200, nil)
}
