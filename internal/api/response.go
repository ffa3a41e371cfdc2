package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	dec := json.NewDecoder(r.Body)
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

// queryInt reads an optional integer query parameter. Errors: EINVALID.
func queryInt(r *http.Request, name string, def int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, kalla.Errorf(kalla.EINVALID, "query parameter %s=%q must be a whole number >= 0", name, s)
	}
	return n, nil
}
