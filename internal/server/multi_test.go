package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/engine"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/runner"
	"github.com/kalla-recon/kalla/internal/store"
	"github.com/kalla-recon/kalla/internal/testenv"
)

// testLease is the run lease of the servers the process tests start: short,
// so that a killed process's run is settled soon.
const testLease = 2 * time.Second

// interruptedWithin bounds the wait for a dead process's run to be marked
// interrupted: the lease, a reaper's interval (a third of it), and slack
// for a loaded machine.
const interruptedWithin = testLease + testLease/3 + 10*time.Second

// waitGone polls until path no longer exists.
func waitGone(t *testing.T, path string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, err := os.Stat(path)
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still exists after %s (%v)", path, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ownerPID is the process ID in a lease owner (host:pid:random).
func ownerPID(t *testing.T, owner string) int {
	t.Helper()
	parts := strings.Split(owner, ":")
	if len(parts) != 3 {
		t.Fatalf("lease owner %q is not host:pid:random", owner)
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil {
		t.Fatalf("lease owner %q: %v", owner, err)
	}
	return pid
}

// TestManyProcessesOneStore runs three `kalla serve` processes on one
// PostgreSQL store and one data folder: a web process (API, UI, no
// workers) and two workers. It SIGKILLs the worker executing a run and
// checks that a live process marks the run interrupted once the lease
// expires, while an event stream on the web process follows the run from
// the store; then it queues twenty runs and proves each was executed
// exactly once, by a worker, and that their results are served by the web
// process.
func TestManyProcessesOneStore(t *testing.T) {
	ctx := context.Background()
	pg := testenv.Postgres(t)
	dataDir := t.TempDir()
	common := []string{"--database-url", pg, "--lease", testLease.String()}
	web := startProcess(t, dataDir, append(common, "--role", "web")...)
	workers := map[int]*process{}
	for range 2 {
		w := startProcess(t, dataDir, append(common, "--role", "worker", "--max-concurrent-runs", "1")...)
		workers[w.cmd.Process.Pid] = w
	}
	s := &testServer{t: t, url: web.url, dataDir: dataDir, client: defaultClient()}
	st, err := store.Open(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// A worker answers its probes, and nothing else.
	for _, w := range workers {
		ws := &testServer{t: t, url: w.url, client: defaultClient()}
		ws.call("GET", "/healthz", nil, 200, nil)
		ws.call("GET", "/readyz", nil, 200, nil)
		if code, _ := ws.do("GET", "/api/runs", nil); code != http.StatusNotFound {
			t.Errorf("GET /api/runs on a worker: %d, want 404", code)
		}
	}

	// Kill the worker executing a run; the other processes notice.
	slow := s.startRun(map[string]any{"recipe": slowRecipe("slow")})
	type followed struct {
		evs []sseEvent
		err error
	}
	events := make(chan followed, 1)
	go func() {
		evs, err := followEvents(web.url, "", slow, 5*time.Minute)
		events <- followed{evs, err}
	}()
	s.waitRun(slow, 60*time.Second, "the match stage", func(r run) bool { return r.Stage == recon.StageMatch })
	rec, err := st.GetRun(ctx, slow)
	if err != nil {
		t.Fatal(err)
	}
	victim := workers[ownerPID(t, rec.Owner)]
	if victim == nil {
		t.Fatalf("run %s is held by %q, not by one of the workers", slow, rec.Owner)
	}
	// A process starting on the shared data folder while the run goes on
	// leaves the run's spill folder alone: it removes only what dead
	// processes left, and what a Kalla before locked folders left.
	spillOf := func(pid int) []string {
		m, _ := filepath.Glob(filepath.Join(dataDir, "tmp", fmt.Sprintf("%s%d-*", engine.SpillPrefix, pid)))
		return m
	}
	live := spillOf(victim.cmd.Process.Pid)
	if len(live) != 1 {
		t.Fatalf("spill folders of the running run: %v", live)
	}
	legacy := filepath.Join(dataDir, "tmp", "run-of-an-older-kalla")
	if err := os.MkdirAll(legacy, 0o750); err != nil {
		t.Fatal(err)
	}
	late := startProcess(t, dataDir, append(common, "--role", "web")...)
	if _, err := os.Stat(live[0]); err != nil {
		t.Fatalf("a starting process removed the spill folder of another's running run: %v", err)
	}
	if _, err := os.Stat(legacy); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the folder an older Kalla left is still there: %v", err)
	}
	late.cmd.Process.Signal(syscall.SIGTERM)
	<-late.exited
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.exited
	killed := time.Now()
	delete(workers, victim.cmd.Process.Pid)
	r := s.waitRun(slow, interruptedWithin, "interrupted", func(r run) bool { return r.Status.Done() })
	t.Logf("run of the killed worker marked %s %s after the kill (lease %s)", r.Status, time.Since(killed).Round(time.Millisecond), testLease)
	if r.Status != kalla.RunFailed || r.Error != runner.InterruptedReason {
		t.Fatalf("run of the killed worker: %s %q", r.Status, r.Error)
	}
	s.wantError("GET", "/api/runs/"+slow+"/files/summary.json", nil, 409, kalla.ECONFLICT)
	f := <-events
	if f.err != nil {
		t.Fatal(f.err)
	}
	sawMatch := false
	for _, ev := range f.evs {
		if ev.Event == "progress" && strings.Contains(ev.Data, `"stage":"`+recon.StageMatch+`"`) {
			sawMatch = true
		}
	}
	if last := f.evs[len(f.evs)-1]; !sawMatch || last.Event != "done" || !strings.Contains(last.Data, `"status":"failed"`) {
		t.Fatalf("events on the web process of a run another process executed: %+v", f.evs)
	}

	// A new worker replaces the dead one; twenty runs spread over the two.
	w := startProcess(t, dataDir, append(common, "--role", "worker", "--max-concurrent-runs", "1")...)
	workers[w.cmd.Process.Pid] = w
	var ids []string
	for range 20 {
		ids = append(ids, s.startRun(map[string]any{"recipe": smallRecipe()}))
	}
	perWorker := map[int]int{}
	for _, id := range ids {
		s.waitRun(id, 5*time.Minute, "completion", func(r run) bool { return r.Status.Done() })
		rec, err := st.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Status != kalla.RunCompleted || rec.Attempts != 1 {
			t.Fatalf("run %s: %s %q after %d claims", id, rec.Status, rec.Error, rec.Attempts)
		}
		pid := ownerPID(t, rec.Owner)
		if workers[pid] == nil {
			t.Fatalf("run %s was executed by %q, not by a live worker", id, rec.Owner)
		}
		perWorker[pid]++
		// Each execution logs "run started" once, in the process that
		// executes it: across all three processes, exactly one line.
		starts := 0
		for _, p := range append([]*process{web, victim}, values(workers)...) {
			starts += strings.Count(p.log(), fmt.Sprintf(`msg="run started" run=%s `, id))
		}
		if starts != 1 {
			t.Fatalf("run %s started %d times across the processes", id, starts)
		}
		// The web process serves the results a worker wrote.
		var sum kalla.Summary
		if err := json.Unmarshal(s.call("GET", "/api/runs/"+id+"/files/"+recon.SummaryFile, nil, 200, nil), &sum); err != nil || sum.RunID != id {
			t.Fatalf("summary of run %s from the web process: %+v, %v", id, sum, err)
		}
	}
	// The killed worker's spill folder went with the first engine a live
	// worker opened after it died.
	if left := spillOf(victim.cmd.Process.Pid); len(left) > 0 {
		t.Errorf("the killed worker's spill folder is still there: %v", left)
	}
	t.Logf("runs per worker: %v", perWorker)
	if len(perWorker) != 2 {
		t.Errorf("the twenty runs were not spread over both workers: %v", perWorker)
	}
	if strings.Contains(web.log(), `msg="run started"`) {
		t.Errorf("the web process executed a run:\n%s", web.log())
	}
}

func values(m map[int]*process) []*process {
	var out []*process
	for _, p := range m {
		out = append(out, p)
	}
	return out
}
