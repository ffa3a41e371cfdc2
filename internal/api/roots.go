package api

import (
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/sources"
)

// Roots are the folders whose files API clients may name as sources: the
// server's data folder (uploads) and the folders an operator configured.
// Without them, anyone who can reach the API could read any file the server
// process can (/etc/passwd as a "CSV" preview). Remote URIs (s3://,
// https://) are governed by the connector layer's own settings, and
// database URIs name no file.
type Roots struct {
	dirs []string // absolute, cleaned, symlinks resolved
}

// NewRoots returns the roots for dirs; each must exist. Errors: EINVALID.
func NewRoots(dirs ...string) (*Roots, error) {
	r := &Roots{}
	for _, d := range dirs {
		if strings.TrimSpace(d) == "" {
			continue
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, kalla.WrapError(kalla.EINVALID, err, "file root %s", d)
		}
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return nil, kalla.WrapError(kalla.EINVALID, err, "file root %s does not exist", d)
		}
		r.dirs = append(r.dirs, real)
	}
	return r, nil
}

// Dirs returns the root folders.
func (r *Roots) Dirs() []string { return append([]string(nil), r.dirs...) }

// CheckSpec checks a source as a recipe or registration gives it: its URI
// carries only the parameters its connector allows (sources.CheckURI),
// and file sources must lie under a root. Errors: EINVALID.
func (r *Roots) CheckSpec(spec kalla.SourceSpec) error {
	if err := sources.CheckURI(spec); err != nil {
		return err
	}
	switch spec.SourceType() {
	case kalla.SourcePostgres, kalla.SourceMySQL:
		return nil
	}
	return r.CheckURI(spec.URI)
}

// CheckURI checks one file-source URI: a remote URI passes (the connector
// layer decides which hosts and buckets it fetches); a path, or a file://
// URI, must be absolute, free of "..", and inside a root once symbolic
// links are resolved. Errors: EINVALID, naming the path but not the roots,
// which are the server's business.
func (r *Roots) CheckURI(uri string) error {
	if err := kalla.CheckNotPartial(uri); err != nil {
		return err
	}
	lower := strings.ToLower(strings.TrimSpace(uri))
	p := uri
	switch {
	case strings.HasPrefix(lower, "s3://"), strings.HasPrefix(lower, "https://"), strings.HasPrefix(lower, "http://"):
		return nil
	case strings.HasPrefix(lower, "file://"):
		u, err := url.Parse(uri)
		if err != nil {
			return kalla.Errorf(kalla.EINVALID, "source %s: invalid file URI", kalla.Excerpt(kalla.Redact(uri)))
		}
		p = u.Path
	case strings.Contains(lower, "://"):
		// Not a file: the connector layer rejects schemes it does not know.
		return nil
	}
	shown := kalla.Excerpt(p)
	for _, el := range strings.FieldsFunc(p, func(c rune) bool { return c == '/' || c == '\\' }) {
		if el == ".." {
			return kalla.Errorf(kalla.EINVALID, "source path %s must not contain \"..\"", shown)
		}
	}
	if !filepath.IsAbs(p) {
		return kalla.Errorf(kalla.EINVALID, "source path %s must be absolute (or upload the file with POST /api/uploads)", shown)
	}
	real, err := resolve(filepath.Clean(p))
	if err != nil {
		// The path error repeats the whole path: keep only its cause.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return kalla.WrapError(kalla.EINVALID, err, "source path %s cannot be resolved", shown)
	}
	for _, d := range r.dirs {
		if within(d, real) {
			return nil
		}
	}
	return kalla.Errorf(kalla.EINVALID, "source path %s is outside the folders this server may read files from (its data folder and configured file roots)", shown)
}

// resolve evaluates the symbolic links of the longest existing prefix of p,
// so a link inside a root that points outside it is caught, and a path
// that does not exist yet is judged by where it would be.
func resolve(p string) (string, error) {
	rest := ""
	for {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(real, rest), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return filepath.Join(p, rest), nil
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// within reports whether p is root or below it.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
