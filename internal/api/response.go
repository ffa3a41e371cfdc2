package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// apiFunc is a handler: it returns the data to send as JSON (200 unless
// wrapped in a response) or an error for the one error writer. Handlers
// that stream (files, events) write the response themselves and return
// written{}; they may still return an error as long as they have written
// nothing.
type apiFunc func(w http.ResponseWriter, r *http.Request) (any, error)

// response sets the status of a JSON answer; a nil body sends none.
type response struct {
	status int
	body   any
}

// written marks a response the handler has already written.
type written struct{}

func status(code int, body any) response { return response{status: code, body: body} }

// writeData writes a handler's data.
func (h *Handler) writeData(w http.ResponseWriter, data any) {
	switch d := data.(type) {
	case written:
	case response:
		if d.body == nil {
			w.WriteHeader(d.status)
			return
		}
		writeJSON(w, d.status, d.body)
	default:
		writeJSON(w, http.StatusOK, data)
	}
}

// errorJSON is the body of every error answer.
type errorJSON struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func errorBody(code, msg string) errorJSON {
	return errorJSON{Error: errorDetail{Code: code, Message: msg}}
}

// writeError is the one place an error becomes an HTTP answer: the kalla
// error code picks the status (kalla.HTTPStatus) and the user-facing
// message is sent with credentials masked; errors that were never
// classified are logged in full and answered with "internal error".
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := kalla.ErrorCode(err), kalla.Redact(kalla.ErrorMessage(err))
	st := kalla.HTTPStatus(code)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		code, st = kalla.EINVALID, http.StatusRequestEntityTooLarge
		msg = fmt.Sprintf("request body is larger than the limit of %d bytes", mbe.Limit)
	case r.Context().Err() != nil && errors.Is(err, context.Canceled):
		// The client went away; nobody reads the answer.
		return
	}
	if code == kalla.EINTERNAL {
		h.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", kalla.Redact(err.Error()))
	} else {
		h.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "code", code, "err", msg)
	}
	writeJSON(w, st, errorBody(code, msg))
}

// WriteError answers err in the API's error format, {"error": {"code",
// "message"}} with the status its code stands for, for the server's own
// refusals before a request reaches the API or the web UI (a foreign Host,
// another site's page). err must be a *kalla.Error whose message carries
// no credential.
func WriteError(w http.ResponseWriter, err error) {
	code := kalla.ErrorCode(err)
	writeJSON(w, kalla.HTTPStatus(code), errorBody(code, kalla.ErrorMessage(err)))
}

// writeJSON writes v as JSON with the status.
func writeJSON(w http.ResponseWriter, st int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		st = http.StatusInternalServerError
		buf.Reset()
		json.NewEncoder(&buf).Encode(errorBody(kalla.EINTERNAL, "internal error"))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(st)
	w.Write(buf.Bytes())
}

// decodeJSON reads the request body into v. Unknown fields are refused, as
// in recipes: a misspelt "conditons" must not silently load everything.
// Errors: EINVALID; an over-long body keeps its *http.MaxBytesError so the
// writer answers 413.
func decodeJSON(r *http.Request, v any) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if err := rejectNulls(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var ke *kalla.Error
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.As(err, &ke):
			return ke
		case errors.Is(err, io.EOF):
			return kalla.Errorf(kalla.EINVALID, "request body is empty: send a JSON object")
		}
		return kalla.Errorf(kalla.EINVALID, "request body is not valid JSON for this route: %s", jsonProblem(err))
	}
	if dec.More() {
		return kalla.Errorf(kalla.EINVALID, "request body has data after the JSON object")
	}
	return nil
}

// rejectNulls refuses a JSON body with a null anywhere in it, naming where.
// Go would read a null as the field's zero value (a null limit as 0, a null
// recipe as none), which is not what the client said; no field of the API
// is nullable (openapi.json). A body that is not JSON is left to the
// decoder to explain. Errors: EINVALID.
func rejectNulls(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil {
		return nil
	}
	if where, ok := findNull(doc, ""); ok {
		if where == "" {
			return kalla.Errorf(kalla.EINVALID, "request body is null: send a JSON object")
		}
		return kalla.Errorf(kalla.EINVALID, "%s is null: leave the field out or give it a value", where)
	}
	return nil
}

// findNull returns the path (a.b[2].c) of the first null in v, in key order.
func findNull(v any, path string) (string, bool) {
	switch v := v.(type) {
	case nil:
		return path, true
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if where, ok := findNull(v[k], p); ok {
				return where, true
			}
		}
	case []any:
		for i, e := range v {
			if where, ok := findNull(e, fmt.Sprintf("%s[%d]", path, i)); ok {
				return where, true
			}
		}
	}
	return "", false
}

// readBody reads the whole (size-limited) request body.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, kalla.WrapError(kalla.EINVALID, err, "cannot read the request body")
	}
	return b, nil
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be %s, not a JSON %s", te.Field, te.Type, te.Value)
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d: %v", se.Offset, se)
	}
	msg := err.Error()
	const prefix = "json: "
	if len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		msg = msg[len(prefix):]
	}
	return msg
}

// queryInt reads an optional integer query parameter, which must lie in
// [lo, hi] (the bounds openapi.json states): out of range is an error, not
// a value silently capped. Absent, it is def; present but empty, an error.
// Errors: EINVALID.
func queryInt(r *http.Request, name string, def, lo, hi int) (int, error) {
	q := r.URL.Query()
	if !q.Has(name) {
		return def, nil
	}
	s := q.Get(name)
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		if hi == math.MaxInt {
			return 0, kalla.Errorf(kalla.EINVALID, "query parameter %s=%q must be a whole number >= %d", name, s, lo)
		}
		return 0, kalla.Errorf(kalla.EINVALID, "query parameter %s=%q must be a whole number from %d to %d", name, s, lo, hi)
	}
	return n, nil
}
