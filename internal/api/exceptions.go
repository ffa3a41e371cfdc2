package api

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"

	"github.com/kalla-recon/kalla/internal/exceptions"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// Paging bounds of GET /api/exceptions.
const (
	defaultExceptionList = 100
	maxExceptionList     = 1000
)

// exceptionsService returns the service, EUNAVAILABLE when the handler was
// made without one.
func (h *Handler) exceptionsService() (*exceptions.Service, error) {
	if h.cfg.Exceptions == nil {
		return nil, kalla.Errorf(kalla.EUNAVAILABLE, "exceptions are not enabled on this server")
	}
	return h.cfg.Exceptions, nil
}

// queryFloat reads an optional number query parameter. Errors: EINVALID.
func queryFloat(r *http.Request, name string) (*float64, error) {
	q := r.URL.Query()
	if !q.Has(name) {
		return nil, nil
	}
	f, err := strconv.ParseFloat(q.Get(name), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, kalla.Errorf(kalla.EINVALID, "query parameter %s=%q must be a number", name, q.Get(name))
	}
	return &f, nil
}

// exceptionFilter reads a filter from the query string.
func exceptionFilter(r *http.Request) (exceptions.Filter, error) {
	q := r.URL.Query()
	// Given but empty is a mistake (a form left blank), not "any".
	for _, name := range []string{"status", "kind", "side", "age"} {
		if q.Has(name) && q.Get(name) == "" {
			return exceptions.Filter{}, kalla.Errorf(kalla.EINVALID, "query parameter %s is empty: leave it out, or give a value", name)
		}
	}
	f := exceptions.Filter{RunID: q.Get("run_id"), RecipeID: q.Get("recipe_id"), Status: q.Get("status"), Kind: q.Get("kind"), Side: q.Get("side"),
		Rule: q.Get("rule"), Reason: q.Get("reason"), Assignee: q.Get("assignee"), Age: q.Get("age")}
	var err error
	if f.MinAmount, err = queryFloat(r, "min_amount"); err != nil {
		return f, err
	}
	if f.MaxAmount, err = queryFloat(r, "max_amount"); err != nil {
		return f, err
	}
	if f.MaxDifference, err = queryFloat(r, "max_difference"); err != nil {
		return f, err
	}
	return f, nil
}

// listExceptions pages through the exception items a filter selects, in
// id order. Errors: 400.
func (h *Handler) listExceptions(w http.ResponseWriter, r *http.Request) (any, error) {
	svc, err := h.exceptionsService()
	if err != nil {
		return nil, err
	}
	f, err := exceptionFilter(r)
	if err != nil {
		return nil, err
	}
	limit, err := queryInt(r, "limit", defaultExceptionList, 1, maxExceptionList)
	if err != nil {
		return nil, err
	}
	offset, err := queryInt(r, "offset", 0, 0, math.MaxInt)
	if err != nil {
		return nil, err
	}
	return svc.List(r.Context(), f, limit, offset)
}

var exceptionID = regexp.MustCompile(`^[1-9][0-9]{0,17}$`)

// getException returns one item with its action history. Errors: 404.
func (h *Handler) getException(w http.ResponseWriter, r *http.Request) (any, error) {
	svc, err := h.exceptionsService()
	if err != nil {
		return nil, err
	}
	raw := r.PathValue("id")
	if !exceptionID.MatchString(raw) {
		return nil, kalla.Errorf(kalla.ENOTFOUND, "exception %q does not exist", kalla.Excerpt(raw))
	}
	id, _ := strconv.ParseInt(raw, 10, 64)
	return svc.Get(r.Context(), id)
}

// actOnExceptions applies one action to the items listed or filtered, all
// or none. Errors: 400 bad request, 403 role or four eyes, 404 unknown
// item, 409 an item whose state does not allow the action or that changed
// meanwhile.
func (h *Handler) actOnExceptions(w http.ResponseWriter, r *http.Request) (any, error) {
	svc, err := h.exceptionsService()
	if err != nil {
		return nil, err
	}
	var req exceptions.ActionRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	return svc.Act(r.Context(), req)
}

// verifyAudit recomputes the audit chain and names the first entry changed
// or removed. A broken chain is an answer (ok false), not an error.
func (h *Handler) verifyAudit(w http.ResponseWriter, r *http.Request) (any, error) {
	svc, err := h.exceptionsService()
	if err != nil {
		return nil, err
	}
	return svc.Verify(r.Context())
}

// exceptionSummary counts and sums a run's decisions. Errors: 404.
func (h *Handler) exceptionSummary(w http.ResponseWriter, r *http.Request) (any, error) {
	svc, err := h.exceptionsService()
	if err != nil {
		return nil, err
	}
	rec, err := h.lookupRun(r, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return svc.Summary(r.Context(), rec)
}

// exportExceptions sends a run's open and pending items, narrowed by the
// list's filters, as a sheet with an empty decision column to fill in and
// import. Errors: 400 bad filter or too many items, 404 unknown run.
func (h *Handler) exportExceptions(format string) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) (any, error) {
		svc, err := h.exceptionsService()
		if err != nil {
			return nil, err
		}
		rec, err := h.lookupRun(r, r.PathValue("id"))
		if err != nil {
			return nil, err
		}
		f, err := exceptionFilter(r)
		if err != nil {
			return nil, err
		}
		f.RunID = rec.ID
		var buf bytes.Buffer
		if err := svc.Export(r.Context(), f, format, &buf); err != nil {
			return nil, err
		}
		hdr := w.Header()
		hdr.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="exceptions-%s.%s"`, rec.ID, format))
		if format == "csv" {
			hdr.Set("Content-Type", "text/csv; charset=utf-8")
		} else {
			hdr.Set("Content-Type", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
		}
		hdr.Set("Content-Length", strconv.Itoa(buf.Len()))
		w.Write(buf.Bytes())
		return written{}, nil
	}
}

// importExceptions applies an edited sheet (CSV or XLSX body), each row
// with a decision as an action, all or none. With a refused row it answers
// 400 with every row's outcome and applies nothing. The actor is the
// signed-in person, or ?actor= on a server without tokens.
func (h *Handler) importExceptions(w http.ResponseWriter, r *http.Request) (any, error) {
	svc, err := h.exceptionsService()
	if err != nil {
		return nil, err
	}
	res, err := svc.Import(r.Context(), r.URL.Query().Get("actor"), r.Body)
	if err != nil {
		if res == nil {
			return nil, err
		}
		return status(http.StatusBadRequest, map[string]any{"applied": false, "rows": res.Rows,
			"error": errorBody(kalla.ErrorCode(err), kalla.ErrorMessage(err)).Error}), nil
	}
	return res, nil
}
