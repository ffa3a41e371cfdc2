package api

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/scratch"
)

// uploadResponse is the answer of POST /api/uploads: where the file now
// is, as a source URI a recipe or csv_uri can name, and what it holds.
type uploadResponse struct {
	UploadID   string         `json:"upload_id"`
	URI        string         `json:"uri"`
	Filename   string         `json:"filename"`
	SourceType string         `json:"source_type"`
	Columns    []kalla.Column `json:"columns"`
	RowCount   int64          `json:"row_count"`
	// CSV are the settings the file was read with, and what was detected
	// (CSV files only).
	CSV *uploadCSV `json:"csv,omitempty"`
	// Rows are the first rows as the registered source will read them
	// (values as text, nil for empty).
	Rows [][]*string `json:"rows"`
	// CheckOnly is set when the file was only checked: nothing was kept.
	CheckOnly bool `json:"check_only,omitempty"`
}

// uploadPreviewRows is how many rows an upload's answer shows.
const uploadPreviewRows = 10

// uploadRemoveTimeout bounds taking back a refused upload from object
// storage.
const uploadRemoveTimeout = 30 * time.Second

func (h *Handler) uploadDir() string { return filepath.Join(h.cfg.DataDir, "uploads") }

// upload streams the multipart field "file" to the upload storage (the
// data folder's uploads/<id>/, or S3 when configured) without holding it in
// memory, then opens it through the connector layer to report its columns
// and row count, so a client learns at once whether the file is usable. A
// file that cannot be read as CSV or Parquet is refused and removed, from
// the data folder or from S3.
// Errors: 400 not multipart, no file field, unsupported extension or
// unreadable file; 413 over the upload limit; 502 storage unreachable.
func (h *Handler) upload(w http.ResponseWriter, r *http.Request) (any, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, kalla.Errorf(kalla.EINVALID, "send the file as multipart/form-data in a field named \"file\"")
	}
	var part io.ReadCloser
	var filename string
	form := map[string]string{}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, kalla.Errorf(kalla.EINVALID, "the form has no field named \"file\"")
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, err
			}
			return nil, kalla.WrapError(kalla.EINVALID, err, "cannot read the multipart form")
		}
		if p.FormName() == "file" {
			part, filename = p, p.FileName()
			break
		}
		switch p.FormName() {
		case "delimiter", "decimal_separator", "date_format", "encoding", "check_only":
			b, err := io.ReadAll(io.LimitReader(p, 64))
			if err != nil {
				return nil, kalla.WrapError(kalla.EINVALID, err, "cannot read the multipart form")
			}
			form[p.FormName()] = string(b)
		}
		p.Close()
	}
	defer part.Close()
	name, typ, err := uploadName(filename)
	if err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new upload id: %w", err)
	}
	uploadID := id.String()
	ctx := r.Context()
	checkOnly := form["check_only"] == "true"
	// A CSV file is read with the settings given, the rest detected from
	// its start; one not written as plain CSV is stored normalised.
	var body io.Reader = part
	var opts *uploadCSV
	var normErr error
	if typ == kalla.SourceCSV && !strings.HasSuffix(strings.ToLower(name), ".gz") {
		if opts, err = parseUploadCSV(form["delimiter"], form["decimal_separator"], form["date_format"], form["encoding"]); err != nil {
			return nil, err
		}
		br := bufio.NewReaderSize(part, sniffBytes)
		head, _ := br.Peek(sniffBytes)
		head = bytes.Clone(head)
		opts.settle(detectCSV(head))
		body = br
		if !opts.plain() {
			pr, pw := io.Pipe()
			go func() {
				normErr = opts.normalize(pw, br, head)
				pw.CloseWithError(normErr)
			}()
			defer pr.Close()
			body = pr
		}
	}
	var uri string
	remove := func() {}
	if h.cfg.Uploads != nil && !checkOnly {
		key := uploadID + "/" + name
		uri, err = h.cfg.Uploads.Put(ctx, key, body, -1)
		if err != nil {
			if normErr != nil {
				return nil, normErr
			}
			return nil, err
		}
		// A refused file is taken back even when the client has gone:
		// the object would otherwise outlive the answer that refused it.
		remove = func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), uploadRemoveTimeout)
			defer cancel()
			if err := h.cfg.Uploads.Remove(rctx, key); err != nil {
				h.log.Error("remove refused upload", "upload_id", uploadID, "err", err)
			}
		}
	} else {
		dir := filepath.Join(h.uploadDir(), uploadID)
		if checkOnly {
			// Checked and dropped: a folder this process holds (package
			// scratch), which a process starting on the same data
			// folder leaves alone while this one lives.
			own, _, err := scratch.Make(filepath.Join(h.cfg.DataDir, "tmp"), "kalla-upload-check-")
			if err != nil {
				return nil, fmt.Errorf("create upload folder: %w", err)
			}
			dir, remove = own.Path(), func() { own.Remove() }
			defer remove()
		} else {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("create upload folder: %w", err)
			}
			remove = func() { os.RemoveAll(dir) }
		}
		uri = filepath.Join(dir, name)
		if err := writeFileAtomic(uri, body); err != nil {
			remove()
			if normErr != nil {
				return nil, normErr
			}
			return nil, err
		}
	}
	shown := "upload " + uploadID + "/" + name
	src, err := h.sources.Open(ctx, kalla.SourceSpec{Alias: "upload", Type: typ, URI: uri}, "")
	if err != nil {
		remove()
		return nil, h.hidePath(err, uri, shown)
	}
	defer src.Close()
	cols, err := src.Columns(ctx)
	if err != nil {
		remove()
		return nil, h.hidePath(err, uri, shown)
	}
	n, err := src.Count(ctx, nil)
	if err != nil {
		remove()
		return nil, h.hidePath(err, uri, shown)
	}
	rows, err := src.Sample(ctx, nil, uploadPreviewRows)
	if err != nil {
		remove()
		return nil, h.hidePath(err, uri, shown)
	}
	if len(cols) == 1 && opts != nil && strings.ContainsAny(cols[0].Name, ";\t|") {
		remove()
		return nil, kalla.Errorf(kalla.EINVALID, "the file reads as one column named %q: choose its delimiter", kalla.Excerpt(cols[0].Name))
	}
	out := uploadResponse{UploadID: uploadID, URI: uri, Filename: name, SourceType: typ, Columns: cols, RowCount: n, CSV: opts, Rows: rows, CheckOnly: checkOnly}
	if checkOnly {
		out.URI = ""
		return out, nil
	}
	return status(http.StatusCreated, out), nil
}

// hidePath returns a user-facing error about an uploaded file with the
// file's place on the server (an absolute path under the data folder)
// replaced by shown: a client learns what is wrong with its upload, not
// how the server's disk is laid out. The message is rebuilt, so the cause
// is dropped; unclassified errors are returned as they are, since only
// the log sees them.
func (h *Handler) hidePath(err error, path, shown string) error {
	code := kalla.ErrorCode(err)
	if code == kalla.EINTERNAL {
		return err
	}
	msg := kalla.ErrorMessage(err)
	msg = strings.ReplaceAll(msg, path, shown)
	if abs, err := filepath.Abs(h.cfg.DataDir); err == nil && h.cfg.DataDir != "" {
		msg = strings.ReplaceAll(strings.ReplaceAll(msg, abs, "<data folder>"), h.cfg.DataDir, "<data folder>")
	}
	return &kalla.Error{Code: code, Message: msg}
}

// uploadName makes a client's file name safe to use as a path element and
// an object key, and tells its type from its extension. Errors: EINVALID.
func uploadName(filename string) (name, typ string, err error) {
	base := filepath.Base(strings.ReplaceAll(filename, `\`, "/"))
	var b strings.Builder
	for _, c := range base {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	name = strings.TrimLeft(b.String(), ".")
	if len(name) > 128 {
		name = name[len(name)-128:]
	}
	typ = kalla.TypeFromURI(name)
	if name == "" || typ == "" {
		return "", "", kalla.Errorf(kalla.EINVALID, "upload a .csv, .tsv, .csv.gz or .parquet file (got %q)", kalla.Excerpt(filename))
	}
	return name, typ, nil
}

// writeFileAtomic streams r to path through a temporary name, so a broken
// upload never leaves a file that looks complete.
func writeFileAtomic(path string, r io.Reader) error {
	tmp := kalla.PartialPath(path)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("create upload file: %w", err)
	}
	// Held while it is written: a process starting on the same data
	// folder removes only the partial files of dead processes.
	if err := scratch.Hold(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("create upload file: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(tmp)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return kalla.WrapError(kalla.EINVALID, err, "the upload broke off")
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write upload file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("finish upload file: %w", err)
	}
	return nil
}
