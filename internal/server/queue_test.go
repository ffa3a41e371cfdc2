package server_test

import (
	"testing"
	"time"

	"github.com/kalla-recon/kalla/internal/gen"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/server"
)

// TestQueueBound fills the queue behind a run that occupies the only
// worker: the run beyond --max-queued-runs is refused with 429, a clear
// message and Retry-After, and a place freed by a cancel is taken again.
func TestQueueBound(t *testing.T) {
	s := startServer(t, func(c *server.Config) { c.MaxConcurrentRuns, c.MaxQueuedRuns = 1, 2 })
	slow := s.startRun(map[string]any{"recipe": slowRecipe("slow")})
	t.Cleanup(func() { s.do("POST", "/api/runs/"+slow+"/cancel", nil) })
	s.waitRun(slow, 60*time.Second, "running", func(r run) bool { return r.Status == kalla.RunRunning })
	small := map[string]any{"recipe": gen.Recipe(small)}
	first := s.startRun(small)
	s.startRun(small)

	msg := s.wantError("POST", "/api/runs", small, 429, kalla.ETOOMANY, "queue is full", "2 runs are waiting")
	t.Logf("refused: %s", msg)
	req := s.request("POST", "/api/runs", small)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("full queue: status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	s.call("POST", "/api/runs/"+first+"/cancel", nil, 202, nil)
	s.startRun(small)
	s.wantError("POST", "/api/runs", small, 429, kalla.ETOOMANY)
}
