package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/recon"
	"github.com/kalla-recon/kalla/internal/version"
)

// Callbacks follow the original Kalla: a run queued with a callback_url gets
// POSTs to <callback_url>/progress while it runs (best effort, one attempt,
// at most one a second or one per stage), then one POST to
// <callback_url>/complete or <callback_url>/error, retried with exponential
// backoff because it is the one message a caller cannot do without. Posting
// happens on a goroutine per run: a slow or dead receiver never holds up a
// worker.

// ProgressCallback is the body of a POST to <callback_url>/progress.
type ProgressCallback struct {
	RunID string `json:"run_id"`
	// Stage is "staging", "matching" or "writing".
	Stage string `json:"stage"`
	// Progress is the run's overall fraction in [0, 1].
	Progress float64 `json:"progress"`
	// Source is the alias being staged (staging only).
	Source string `json:"source,omitempty"`
	// RowsStaged counts the rows of Source staged so far (staging only).
	RowsStaged int64 `json:"rows_staged,omitempty"`
}

// OutputPaths are the API paths of a completed run's result files.
type OutputPaths struct {
	Matched        string `json:"matched"`
	UnmatchedLeft  string `json:"unmatched_left"`
	UnmatchedRight string `json:"unmatched_right"`
	Summary        string `json:"summary"`
}

// CompleteCallback is the body of a POST to <callback_url>/complete.
type CompleteCallback struct {
	RunID               string      `json:"run_id"`
	Status              string      `json:"status"`
	MatchedCount        int64       `json:"matched_count"`
	UnmatchedLeftCount  int64       `json:"unmatched_left_count"`
	UnmatchedRightCount int64       `json:"unmatched_right_count"`
	OutputPaths         OutputPaths `json:"output_paths"`
}

// ErrorCallback is the body of a POST to <callback_url>/error, sent when a
// run failed or was cancelled.
type ErrorCallback struct {
	RunID  string `json:"run_id"`
	Status string `json:"status"`
	Error  string `json:"error"`
	// Code is the failure's error code, as the run records it
	// (RunRecord.ErrorCode); empty for a cancelled run.
	Code  string `json:"code,omitempty"`
	Stage string `json:"stage,omitempty"`
}

// progressCallbackEvery is the most often a run posts progress.
const progressCallbackEvery = time.Second

// callbackTimeout bounds one POST.
const callbackTimeout = 10 * time.Second

// callbacks posts every run's callbacks and lets Shutdown wait for the
// final ones still being retried.
type callbacks struct {
	policy  *CallbackPolicy
	client  *http.Client
	retries int
	backoff time.Duration
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func newCallbacks(cfg Config, log *slog.Logger) *callbacks {
	c := &callbacks{policy: cfg.Callbacks, client: cfg.Callbacks.client(), retries: cfg.CallbackRetries, backoff: cfg.CallbackBackoff, log: log}
	if c.retries <= 0 {
		c.retries = 5
	}
	if c.backoff <= 0 {
		c.backoff = 500 * time.Millisecond
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// shutdown waits for pending callbacks until ctx ends, then abandons them.
func (c *callbacks) shutdown(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		c.cancel()
		<-done
	}
	c.cancel()
}

// ValidCallbackURL checks that a callback URL is an absolute http(s) URL:
// nothing else (file:, gopher:, …) is ever posted to. Errors: EINVALID.
func ValidCallbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return kalla.Errorf(kalla.EINVALID, "callback_url %s must be an absolute http:// or https:// URL", kalla.Excerpt(kalla.Redact(raw)))
	}
	return nil
}

// sender posts one run's callbacks; nil when the run has none.
type sender struct {
	c     *callbacks
	runID string
	base  *url.URL
	prog  chan ProgressCallback
	end   chan func(context.Context)

	// used only by progress, which one goroutine calls
	lastStage string
	lastSent  time.Time
}

func (c *callbacks) sender(rec *kalla.RunRecord) *sender {
	if rec.CallbackURL == "" {
		return nil
	}
	if err := c.policy.CheckURL(rec.CallbackURL); err != nil {
		c.log.Warn("run's callback URL is refused: no callbacks", "run", rec.ID, "err", kalla.Redact(err.Error()))
		return nil
	}
	u, _ := url.Parse(rec.CallbackURL)
	s := &sender{c: c, runID: rec.ID, base: u, prog: make(chan ProgressCallback, 1), end: make(chan func(context.Context), 1)}
	c.wg.Add(1)
	go s.loop()
	return s
}

func (s *sender) loop() {
	defer s.c.wg.Done()
	for {
		select {
		case p := <-s.prog:
			s.post(s.c.ctx, "progress", p, 1)
		case f := <-s.end:
			f(s.c.ctx)
			return
		}
	}
}

// progress queues a progress post, replacing one not yet sent, so the
// receiver sees the latest state and the run never waits.
func (s *sender) progress(cur progress, rec kalla.Recipe) {
	if s == nil {
		return
	}
	if cur.Stage == s.lastStage && time.Since(s.lastSent) < progressCallbackEvery {
		return
	}
	s.lastStage, s.lastSent = cur.Stage, time.Now()
	p := ProgressCallback{RunID: s.runID, Progress: cur.Fraction}
	switch cur.Stage {
	case recon.StageLeft:
		p.Stage, p.Source, p.RowsStaged = "staging", rec.Sources.Left.Alias, cur.Rows[0]
	case recon.StageRight:
		p.Stage, p.Source, p.RowsStaged = "staging", rec.Sources.Right.Alias, cur.Rows[1]
	case recon.StageMatch:
		p.Stage = "matching"
	default:
		p.Stage = "writing"
	}
	for {
		select {
		case s.prog <- p:
			return
		default:
		}
		select {
		case <-s.prog: // drop the stale one
		default:
		}
	}
}

func (s *sender) complete(sum *kalla.Summary) {
	if s == nil {
		return
	}
	files := "/api/runs/" + s.runID + "/files/"
	body := CompleteCallback{
		RunID: s.runID, Status: string(kalla.RunCompleted),
		MatchedCount: sum.MatchedCount, UnmatchedLeftCount: sum.UnmatchedLeftCount, UnmatchedRightCount: sum.UnmatchedRightCount,
		OutputPaths: OutputPaths{
			Matched:        files + recon.TableMatched + ".parquet",
			UnmatchedLeft:  files + recon.TableUnmatchedLeft + ".parquet",
			UnmatchedRight: files + recon.TableUnmatchedRight + ".parquet",
			Summary:        files + recon.SummaryFile,
		},
	}
	s.end <- func(ctx context.Context) { s.post(ctx, "complete", body, s.c.retries) }
}

func (s *sender) fail(status kalla.RunStatus, code, msg, stage string) {
	if s == nil {
		return
	}
	body := ErrorCallback{RunID: s.runID, Status: string(status), Error: msg, Code: code, Stage: stage}
	s.end <- func(ctx context.Context) { s.post(ctx, "error", body, s.c.retries) }
}

// post sends body to <base>/<path>, up to attempts times with doubling
// waits between them. Only network errors, 408, 429 and 5xx are retried:
// any other answer is final.
func (s *sender) post(ctx context.Context, path string, body any, attempts int) {
	u := *s.base
	u.Path = strings.TrimRight(u.Path, "/") + "/" + path
	u.RawPath = ""
	b, err := json.Marshal(body)
	if err != nil {
		return
	}
	wait := s.c.backoff
	tried := 0
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait *= 2
		}
		retry, err := s.postOnce(ctx, u.String(), b)
		tried++
		if err == nil {
			return
		}
		level := slog.LevelWarn
		if attempts == 1 {
			level = slog.LevelDebug // best-effort progress: the final post matters
		}
		s.c.log.Log(ctx, level, "run callback failed", "run", s.runID, "callback", path, "attempt", i+1, "err", kalla.Redact(err.Error()))
		if !retry {
			break
		}
	}
	if attempts > 1 {
		s.c.log.Error("run callback abandoned", "run", s.runID, "callback", path, "attempts", tried)
	}
}

func (s *sender) postOnce(ctx context.Context, target string, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, callbackTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kalla/"+version.Version)
	resp, err := s.c.client.Do(req)
	if err != nil {
		return true, err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return false, fmt.Errorf("answered %s: callbacks do not follow redirects", resp.Status)
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return true, fmt.Errorf("answered %s", resp.Status)
	default:
		return false, fmt.Errorf("answered %s", resp.Status)
	}
}
