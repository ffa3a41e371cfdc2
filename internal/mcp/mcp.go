// Package mcp is Kalla's Model Context Protocol server, built on the
// official Go SDK: the tools an assistant calls (list_sources,
// preview_source, suggest_recipe, check_recipe, start_run, get_run,
// get_results, explain_record, and with a language model configured
// filter_from_text and rule_from_text), resources for recipes and run
// summaries, and progress notifications for runs it waits on.
//
// Every tool is a client of Kalla's own HTTP API, served in-process: a tool
// call becomes one or more requests that go through the same http.Handler
// `kalla serve` mounts under /api/, carrying the caller's credentials. The
// API's token check, validation, file-root and URI policy, redaction and
// error codes therefore apply to an assistant exactly as to the token's
// owner, by construction: the package holds no store, no source and no
// engine of its own, and can do nothing the API would refuse.
//
// Over HTTP (/mcp on `kalla serve`, NewHTTPHandler) the caller's
// Authorization header (or the web UI's session cookie) is what each API
// request carries, and a request the API would not admit is refused before
// the MCP session starts. Over stdio (`kalla mcp`, NewServer with
// Config.Token) the local user is the operator, who holds the configured
// token.
package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kalla-recon/kalla/internal/api"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/version"
)

// Config configures the MCP server.
type Config struct {
	// API is Kalla's HTTP API handler (*api.Handler), which serves every
	// tool call in-process. Required.
	API http.Handler
	// Token, for stdio only, is sent as the bearer token of every API
	// request: the operator running `kalla mcp` holds the server's token.
	// Over HTTP it must stay empty: each request carries its caller's
	// own credentials.
	Token string
	// LLM, when its URL and model are set, adds filter_from_text and
	// rule_from_text. Without it those tools are not listed.
	LLM LLMConfig
	// Logger receives one line per tool call (the tool, its outcome and
	// duration). Nil discards.
	Logger *slog.Logger
}

// service holds what every tool handler needs.
type service struct {
	api   http.Handler
	token string
	llm   *llmClient
	log   *slog.Logger
}

// NewServer returns the MCP server with Kalla's tools and resources.
func NewServer(cfg Config) *sdk.Server {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &service{api: cfg.API, token: cfg.Token, log: log}
	if cfg.LLM.Enabled() {
		s.llm = newLLMClient(cfg.LLM)
	}
	srv := sdk.NewServer(&sdk.Implementation{Name: "kalla", Title: "Kalla reconciliation", Version: version.Version}, &sdk.ServerOptions{
		Instructions: "Kalla reconciles two sources of records (files, S3, PostgreSQL, MySQL). " +
			"Typical flow: list_sources, preview_source, suggest_recipe (two registered sources, optional example pairs), " +
			"check_recipe, start_run (wait_seconds to wait with progress), get_run, get_results, explain_record.",
		Logger: log,
	})
	s.addTools(srv)
	s.addResources(srv)
	return srv
}

// HTTPHandler is the streamable HTTP endpoint (/mcp) of a server.
type HTTPHandler struct {
	h          http.Handler
	authorized func(*http.Request) bool
	ctx        context.Context
	cancel     context.CancelFunc
}

// NewHTTPHandler returns the streamable HTTP endpoint for srv. A request
// that authorized refuses (the API's own check: bearer token or the UI's
// session) is answered 401 in the API's error format before any MCP
// message is read. Host and cross-origin checks are the server's guard's,
// in front of this handler, so the SDK's own localhost check (which knows
// nothing of --allowed-host) is off.
func NewHTTPHandler(srv *sdk.Server, authorized func(*http.Request) bool) *HTTPHandler {
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, &sdk.StreamableHTTPOptions{
		DisableLocalhostProtection: true,
		SessionTimeout:             30 * time.Minute,
	})
	ctx, cancel := context.WithCancel(context.Background())
	return &HTTPHandler{h: h, authorized: authorized, ctx: ctx, cancel: cancel}
}

// ServeHTTP admits the API's callers and serves MCP.
func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kalla"`)
		api.WriteError(w, kalla.Errorf(kalla.EUNAUTHORIZED, "missing or wrong API token: send \"Authorization: Bearer <token>\" (the same token as the API's)"))
		return
	}
	ctx, stop := context.WithCancel(r.Context())
	defer stop()
	defer context.AfterFunc(h.ctx, stop)()
	h.h.ServeHTTP(w, r.WithContext(ctx))
}

// Shutdown ends every open MCP stream (a connected client holds one open
// for as long as it stays connected), so that the HTTP server's graceful
// shutdown is not held up by them; clients reconnect to another instance
// or later.
func (h *HTTPHandler) Shutdown() { h.cancel() }

// identity returns the credentials an API request made for req carries:
// over HTTP the caller's own Authorization and Cookie headers, nothing
// else; over stdio the configured token.
func (s *service) identity(extra *sdk.RequestExtra) http.Header {
	h := http.Header{}
	if extra != nil && extra.Header != nil {
		for _, k := range []string{"Authorization", "Cookie"} {
			if v := extra.Header.Values(k); len(v) > 0 {
				h[k] = append([]string(nil), v...)
			}
		}
		return h
	}
	if s.token != "" {
		h.Set("Authorization", "Bearer "+s.token)
	}
	return h
}

// apiError is an error answer of the API: its code and message, which a
// tool passes on as is.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// recorder is the http.ResponseWriter of an in-process API request.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// newRequest builds an in-process API request with the caller's identity.
func newRequest(ctx context.Context, id http.Header, method, path string, query url.Values, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	u := &url.URL{Path: path}
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if rd == nil {
		req.Body = http.NoBody
	}
	req.Header = id.Clone()
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.RemoteAddr = "mcp"
	return req, nil
}

// call serves one API request in-process and decodes its JSON answer into
// out (when not nil). An error answer becomes an *apiError.
func (s *service) call(ctx context.Context, id http.Header, method, path string, query url.Values, body, out any) error {
	req, err := newRequest(ctx, id, method, path, query, body)
	if err != nil {
		return err
	}
	rec := &recorder{header: http.Header{}}
	s.api.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status >= 400 {
		return decodeAPIError(rec.status, rec.body.Bytes())
	}
	if out == nil || rec.status == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return fmt.Errorf("decode the answer of %s %s: %w", method, path, err)
	}
	return nil
}

// decodeAPIError reads the API's error body {"error": {"code", "message"}}.
func decodeAPIError(status int, body []byte) error {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" {
		return &apiError{Status: status, Code: "internal", Message: fmt.Sprintf("the API answered %d: %s", status, kalla.Excerpt(strings.TrimSpace(string(body))))}
	}
	return &apiError{Status: status, Code: e.Error.Code, Message: e.Error.Message}
}

// invalid is a tool error for bad arguments, in the API's words.
func invalid(format string, args ...any) error {
	return &apiError{Status: http.StatusBadRequest, Code: string(kalla.EINVALID), Message: fmt.Sprintf(format, args...)}
}
