package api

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/kalla-recon/kalla/internal/connector"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// aliasPattern is the form of a registered source's alias: a plain SQL name,
// as recipes require of theirs, so a registered source can be named in a
// recipe's match SQL as is.
var aliasPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Source statuses.
const (
	sourceOK = "ok"
)

// sourceRequest is the body of POST /api/sources.
type sourceRequest struct {
	Alias      string `json:"alias"`
	URI        string `json:"uri"`
	SourceType string `json:"source_type"`
}

// listSources lists registered sources, URIs redacted.
func (h *Handler) listSources(w http.ResponseWriter, r *http.Request) (any, error) {
	list, err := h.store.ListSources(r.Context())
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []*kalla.RegisteredSource{}
	}
	return map[string]any{"sources": list}, nil
}

// createSource registers (or re-registers) a source under its alias once
// its URI has been checked and a connection to it tested, so that the
// store holds only sources that worked when they were registered. The
// answer shows the URI redacted. Errors: 400 for a bad alias, URI or type
// or a path outside the file roots, 404 when the file or table does not
// exist, 502 when the source cannot be reached.
func (h *Handler) createSource(w http.ResponseWriter, r *http.Request) (any, error) {
	var req sourceRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	req.Alias, req.URI = strings.TrimSpace(req.Alias), strings.TrimSpace(req.URI)
	if !aliasPattern.MatchString(req.Alias) {
		return nil, kalla.Errorf(kalla.EINVALID, "alias %q must be a plain SQL name: letters, digits and \"_\", not starting with a digit, at most 63 characters", req.Alias)
	}
	if req.URI == "" {
		return nil, kalla.Errorf(kalla.EINVALID, "uri is required (a file path, s3://, https://, postgres:// or mysql:// URI)")
	}
	spec := kalla.SourceSpec{Alias: req.Alias, Type: req.SourceType, URI: req.URI}
	typ := spec.SourceType()
	switch typ {
	case kalla.SourceCSV, kalla.SourceParquet, kalla.SourcePostgres, kalla.SourceMySQL:
	case "":
		return nil, kalla.Errorf(kalla.EINVALID, "source_type is required: the type of %s cannot be told from its URI (use csv, parquet, postgres or mysql)", kalla.Excerpt(kalla.Redact(req.URI)))
	default:
		return nil, kalla.Errorf(kalla.EINVALID, "source_type %q is not supported (use csv, parquet, postgres or mysql)", req.SourceType)
	}
	spec.Type = typ
	if err := h.cfg.Roots.CheckSpec(spec); err != nil {
		return nil, err
	}
	src, err := h.sources.Open(r.Context(), spec, "")
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if _, err := src.Columns(r.Context()); err != nil {
		return nil, err
	}
	rs := &kalla.RegisteredSource{Alias: req.Alias, URI: req.URI, SourceType: typ, Status: sourceOK}
	if err := h.store.UpsertSource(r.Context(), rs); err != nil {
		return nil, err
	}
	if stored, err := h.store.GetSource(r.Context(), req.Alias); err == nil {
		rs = stored
	}
	return rs, nil
}

// getSource returns one registered source, URI redacted. Errors: 404.
func (h *Handler) getSource(w http.ResponseWriter, r *http.Request) (any, error) {
	return h.lookupSource(r, r.PathValue("alias"))
}

func (h *Handler) lookupSource(r *http.Request, alias string) (*kalla.RegisteredSource, error) {
	return lookup(r.Context(), alias, aliasPattern, h.store.GetSource, "no source is registered as %q")
}

// deleteSource removes a registration; recipes that name the source by URI
// are unaffected. Errors: 404.
func (h *Handler) deleteSource(w http.ResponseWriter, r *http.Request) (any, error) {
	alias := r.PathValue("alias")
	if _, err := h.lookupSource(r, alias); err != nil {
		return nil, err
	}
	if err := h.store.DeleteSource(r.Context(), alias); err != nil {
		return nil, err
	}
	return status(http.StatusNoContent, nil), nil
}

// scopedResponse is the answer of preview and load-scoped, the original
// Kalla's shape plus the total's kind.
type scopedResponse struct {
	Alias string `json:"alias"`
	connector.Preview
}

// previewSource shows a registered source's columns, its first rows and its
// row count (exact when cheap, or with ?exact_total=true; see load-scoped).
// Errors: 404, 400, 502 as for load-scoped.
func (h *Handler) previewSource(w http.ResponseWriter, r *http.Request) (any, error) {
	limit, err := queryInt(r, "limit", connector.DefaultLimit, 1, connector.MaxLimit)
	if err != nil {
		return nil, err
	}
	exact := false
	switch v, given := r.URL.Query().Get("exact_total"), r.URL.Query().Has("exact_total"); {
	case !given, v == "false":
	case v == "true":
		exact = true
	default:
		return nil, kalla.Errorf(kalla.EINVALID, "exact_total must be true or false, not %q", v)
	}
	rs, err := h.lookupSource(r, r.PathValue("alias"))
	if err != nil {
		return nil, err
	}
	return h.load(r, rs.Alias, kalla.SourceSpec{Alias: rs.Alias, Type: rs.SourceType, URI: rs.URI}, nil, limit, exact)
}

// loadScopedRequest is the body of POST /api/sources/{alias}/load-scoped.
type loadScopedRequest struct {
	Conditions []kalla.Filter `json:"conditions"`
	Limit      *int           `json:"limit"`
	CSVURI     string         `json:"csv_uri"`
	// ExactTotal asks for the exact count however long it takes, where
	// by default a large one is answered as a lower bound.
	ExactTotal bool `json:"exact_total"`
}

// loadScoped loads a sample of a source's rows under filter conditions with
// the number of matching rows: exact when it is cheap (the sample holds
// every match, or a bounded count finds no more than the count cap within
// its time budget), otherwise a lower bound with total_kind "at_least";
// exact_total asks for the exact count. The alias is looked up in the metadata
// store only; the rows are read through the connector layer from the
// source's own URI, never through the store's connection. With csv_uri an
// unregistered CSV in the server's upload storage is loaded instead. limit
// defaults to 200 and is capped at 1000; 0 returns the count alone. Errors: 404 unknown alias or
// missing table/file, 400 bad URI, missing ?table=, invalid filter or
// unknown column, 502 when the source cannot be reached.
func (h *Handler) loadScoped(w http.ResponseWriter, r *http.Request) (any, error) {
	var req loadScopedRequest
	if err := decodeJSON(r, &req); err != nil {
		return nil, err
	}
	limit := connector.DefaultLimit
	if req.Limit != nil {
		if *req.Limit < 0 {
			return nil, kalla.Errorf(kalla.EINVALID, "limit must be 0 (count only) or more (at most %d rows are returned)", connector.MaxLimit)
		}
		limit = *req.Limit
	}
	for _, f := range req.Conditions {
		if err := f.Validate(); err != nil {
			return nil, err
		}
	}
	alias := r.PathValue("alias")
	if req.CSVURI != "" {
		if err := h.checkCSVURI(req.CSVURI); err != nil {
			return nil, err
		}
		return h.load(r, alias, kalla.SourceSpec{Alias: alias, Type: kalla.SourceCSV, URI: req.CSVURI}, req.Conditions, limit, req.ExactTotal)
	}
	rs, err := h.lookupSource(r, alias)
	if err != nil {
		return nil, err
	}
	return h.load(r, rs.Alias, kalla.SourceSpec{Alias: rs.Alias, Type: rs.SourceType, URI: rs.URI}, req.Conditions, limit, req.ExactTotal)
}

// load opens spec through the connector layer and loads a scoped sample.
// limit 0 asks for the count alone, which is always exact.
func (h *Handler) load(r *http.Request, alias string, spec kalla.SourceSpec, filters []kalla.Filter, limit int, exact bool) (*scopedResponse, error) {
	if err := h.cfg.Roots.CheckSpec(spec); err != nil {
		return nil, err
	}
	src, err := h.sources.Open(r.Context(), spec, "")
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if limit == 0 {
		// The original Kalla's limit 0: the true count without rows,
		// which connector.Load would read as "the default limit".
		cols, err := src.Columns(r.Context())
		if err != nil {
			return nil, err
		}
		if err := kalla.ValidateFilters(alias, filters, cols); err != nil {
			return nil, err
		}
		n, err := src.Count(r.Context(), filters)
		if err != nil {
			return nil, err
		}
		return &scopedResponse{Alias: alias, Preview: connector.Preview{Columns: cols, Rows: [][]*string{}, TotalRows: n, TotalKind: connector.TotalExact, TotalExact: true}}, nil
	}
	p, err := connector.LoadWith(r.Context(), src, alias, filters, limit, connector.LoadOptions{ExactTotal: exact})
	if err != nil {
		return nil, err
	}
	return &scopedResponse{Alias: alias, Preview: *p}, nil
}

// checkCSVURI admits only CSVs in the server's own upload storage: the S3
// upload bucket (and prefix) when one is configured, else the local upload
// folder. Anything else would let a caller make the server fetch arbitrary
// URLs or read arbitrary files. Errors: EINVALID.
func (h *Handler) checkCSVURI(uri string) error {
	if err := kalla.CheckNotPartial(uri); err != nil {
		return err
	}
	lower := strings.ToLower(uri)
	if h.cfg.UploadBucket != "" {
		prefix := "s3://" + h.cfg.UploadBucket + "/" + h.cfg.UploadPrefix
		if strings.HasPrefix(uri, prefix) && !strings.Contains(uri[len(prefix):], "..") && !strings.ContainsAny(uri, "?#") {
			return nil
		}
		return kalla.Errorf(kalla.EINVALID, "csv_uri %s must be an s3:// URI in this server's upload storage (%s…); upload the file with POST /api/uploads", kalla.Excerpt(kalla.Redact(uri)), prefix)
	}
	if strings.Contains(lower, "://") && !strings.HasPrefix(lower, "file://") {
		return kalla.Errorf(kalla.EINVALID, "csv_uri %s must name a file in this server's upload storage; upload the file with POST /api/uploads", kalla.Excerpt(kalla.Redact(uri)))
	}
	uploads, err := NewRoots(h.uploadDir())
	if err != nil {
		return kalla.Errorf(kalla.EINVALID, "csv_uri: no file has been uploaded to this server yet")
	}
	if err := uploads.CheckURI(uri); err != nil {
		return kalla.Errorf(kalla.EINVALID, "csv_uri %s must name a file in this server's upload storage; upload the file with POST /api/uploads", kalla.Excerpt(kalla.Redact(uri)))
	}
	return nil
}
