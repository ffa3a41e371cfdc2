package api

import (
	"context"
	_ "embed"
	"net/http"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/version"
)

// readyTimeout bounds the store ping of /readyz: a probe that hangs is
// worse than one that says "not ready".
const readyTimeout = 2 * time.Second

// healthz says the process is up and serving HTTP. It checks nothing else,
// so an orchestrator does not restart the server because the database
// blinked. It lists the engines runs may choose (spark only when the server
// was started with a Spark Connect endpoint), so a client or the UI offers
// only what will run.
func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) (any, error) {
	return map[string]any{"status": "ok", "version": version.Version, "engines": h.recon.Engines()}, nil
}

// readyz says the server can do its work: the metadata store answers. It
// answers 503, the probe convention, rather than the API's 502.
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) (any, error) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := h.store.Ping(ctx); err != nil {
		h.log.Warn("readiness: metadata store does not answer", "err", err)
		return status(http.StatusServiceUnavailable, errorBody(kalla.EUNAVAILABLE, "the metadata store does not answer")), nil
	}
	return map[string]string{"status": "ready"}, nil
}

// metrics serves Prometheus metrics.
func (h *Handler) metrics(w http.ResponseWriter, r *http.Request) (any, error) {
	if h.cfg.Metrics == nil {
		return nil, kalla.Errorf(kalla.ENOTFOUND, "metrics are not enabled")
	}
	h.cfg.Metrics.ServeHTTP(w, r)
	return written{}, nil
}

//go:embed openapi.json
var openapiDoc []byte

// openapi serves the hand-written OpenAPI document; a test keeps it in step
// with the route table.
func (h *Handler) openapi(w http.ResponseWriter, r *http.Request) (any, error) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(openapiDoc)
	return written{}, nil
}
