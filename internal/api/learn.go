package api

import (
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/kalla-recon/kalla/internal/exceptions"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/learn"
	"github.com/kalla-recon/kalla/internal/runner"
	"github.com/kalla-recon/kalla/internal/scratch"
)

// learnRequest is the body of POST /api/recipes/{id}/learn/accept.
type learnRequest struct {
	// RunID is the run the rules are tried on; the recipe's last
	// completed run when empty.
	RunID string `json:"run_id"`
	// Proposal is the ID of the proposal being accepted.
	Proposal string `json:"proposal"`
	// Actor names the person on a server without tokens.
	Actor string `json:"actor"`
	Note  string `json:"note"`
}

// learner returns the learner, EUNAVAILABLE when the handler was made
// without one.
func (h *Handler) learner() (*learn.Learner, error) {
	if h.cfg.Learn == nil {
		return nil, kalla.Errorf(kalla.EUNAVAILABLE, "learning rules is not enabled on this server")
	}
	return h.cfg.Learn, nil
}

// learnRule proposes a rule learned from the manual matches on the
// recipe's runs, tried on a run's own output files (never its sources):
// the recipe before and after, the change in words, and what the new
// rules would match among the run's still-open records. Nothing is saved.
// Errors: 400 when there is nothing to learn from or no rule was found
// (the message says why), 404 unknown recipe or run, 409 run not
// completed.
func (h *Handler) learnRule(w http.ResponseWriter, r *http.Request) (any, error) {
	l, err := h.learner()
	if err != nil {
		return nil, err
	}
	release, err := h.engineSlot(r.Context())
	if err != nil {
		return nil, err
	}
	defer release()
	return l.Propose(r.Context(), r.PathValue("id"), r.URL.Query().Get("run_id"))
}

// acceptLearnedRule saves a proposal as the recipe's new version, if it is
// still the one reviewed, and appends the change to the audit chain (with
// the run's ID, so it is part of the run's evidence). Errors: 400 no
// proposal ID or nothing to learn, 404, 409 the proposal or the recipe
// changed since.
func (h *Handler) acceptLearnedRule(w http.ResponseWriter, r *http.Request) (any, error) {
	l, err := h.learner()
	if err != nil {
		return nil, err
	}
	var req learnRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	who, err := exceptions.Actor(r.Context(), req.Actor)
	if err != nil {
		return nil, err
	}
	release, err := h.engineSlot(r.Context())
	if err != nil {
		return nil, err
	}
	defer release()
	return l.Accept(r.Context(), r.PathValue("id"), req.RunID, req.Proposal, who, req.Note)
}

// runEvidence sends a completed run's evidence package (a zip): its output
// files exactly as written, checked against summary.json first, the
// decisions layer, the audit entries touching the run with the chain's
// verification, and a manifest of SHA-256s. Errors: 404 unknown run, 409
// run not completed or an output changed since the run wrote it.
func (h *Handler) runEvidence(w http.ResponseWriter, r *http.Request) (any, error) {
	svc, err := h.exceptionsService()
	if err != nil {
		return nil, err
	}
	rec, err := h.lookupRun(r, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	// Packed into a temporary file first: a refusal (a changed output)
	// is then an error response, not a cut-off download.
	// In a folder this process holds (package scratch): the copy of a
	// killed process is removed by the next one.
	f, remove, err := scratch.CreateTemp("", "kalla-evidence-", "*.zip")
	if err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	defer remove()
	defer f.Close()
	if _, err := svc.WriteEvidence(r.Context(), f, rec.ID, runner.OutDir(h.cfg.DataDir, rec.ID)); err != nil {
		return nil, err
	}
	size, err := f.Seek(0, 1)
	if err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/zip")
	hdr.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="evidence-%s.zip"`, rec.ID))
	hdr.Set("Content-Length", strconv.FormatInt(size, 10))
	io.Copy(w, f)
	return written{}, nil
}
