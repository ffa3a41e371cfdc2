package mcp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// streamWriter is the http.ResponseWriter of an in-process event stream:
// what the API writes goes into a pipe the tool reads as it comes.
type streamWriter struct {
	header http.Header
	pw     *io.PipeWriter

	mu     sync.Mutex
	status int
}

func (w *streamWriter) Header() http.Header { return w.header }

func (w *streamWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status == 0 {
		w.status = code
	}
}

func (w *streamWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.pw.Write(b)
}

// Flush is a no-op: the pipe hands every write to the reader at once.
func (w *streamWriter) Flush() {}

func (w *streamWriter) code() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
}

// runEvent is the data of the API's "progress" event.
type runEvent struct {
	Status          string  `json:"status"`
	Stage           string  `json:"stage"`
	Progress        float64 `json:"progress"`
	LeftRowsStaged  int64   `json:"left_rows_staged"`
	RightRowsStaged int64   `json:"right_rows_staged"`
}

// follow reads the run's event stream (GET /api/runs/{id}/events) until the
// run finishes or ctx ends, and reports each advance as an MCP progress
// notification when the tool call carried a progress token. Progress only
// ever increases, as MCP requires, from 0 to 1 when the run completes.
func (s *service) follow(ctx context.Context, id http.Header, req *sdk.CallToolRequest, runID string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hr, err := newRequest(ctx, id, "GET", "/api/runs/"+url.PathEscape(runID)+"/events", nil, nil)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	sw := &streamWriter{header: http.Header{}, pw: pw}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.api.ServeHTTP(sw, hr)
		pw.Close()
	}()
	defer func() {
		cancel()
		pr.Close() // unblocks a handler still writing
		<-done
	}()

	var token any
	if req != nil && req.Params != nil {
		token = req.Params.GetProgressToken()
	}
	last := -1.0
	notify := func(ev runEvent) {
		if token == nil || req.Session == nil || ev.Progress <= last {
			return
		}
		last = ev.Progress
		msg := ev.Status
		if ev.Stage != "" {
			msg += ": " + ev.Stage
		}
		msg += fmt.Sprintf(" (%d left, %d right rows staged)", ev.LeftRowsStaged, ev.RightRowsStaged)
		// A client that went away stops reading; the run goes on.
		_ = req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: token, Progress: ev.Progress, Total: 1, Message: msg})
	}

	br := bufio.NewReader(pr)
	first, err := br.Peek(1)
	if err != nil && len(first) == 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("follow run %s: the event stream ended at once", runID)
	}
	if code := sw.code(); code >= 400 {
		body, _ := io.ReadAll(br)
		return decodeAPIError(code, body)
	}
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	event, data := "", ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "":
			switch event {
			case "progress":
				var ev runEvent
				if err := json.Unmarshal([]byte(data), &ev); err == nil {
					notify(ev)
				}
			case "done":
				return nil
			case "error":
				return decodeAPIError(http.StatusInternalServerError, []byte(data))
			}
			event, data = "", ""
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}
