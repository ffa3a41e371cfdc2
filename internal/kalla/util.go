package kalla

import (
	"errors"
	"path/filepath"
	"strings"
)

func asErr[T any](err error, target *T) bool { return errors.As(err, target) }

// partialSuffix ends the name of a file Kalla is still writing.
const partialSuffix = ".partial"

// PartialPath is where a file that will end up at path is written first:
// ".<name>.partial" beside it, renamed to path once complete. Uploads and
// run outputs both use it, so that a file at its final name is whole.
func PartialPath(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+partialSuffix)
}

// IsPartialPath reports whether the last element of path (a local path or
// a URI) names a file still being written (see PartialPath): one a crash
// may have left half done, which must never be read as a source.
func IsPartialPath(path string) bool {
	if i := strings.IndexAny(path, "?#"); i >= 0 && strings.Contains(path, "://") {
		path = path[:i]
	}
	base := path[strings.LastIndexAny(path, `/\`)+1:]
	return strings.HasPrefix(base, ".") && strings.HasSuffix(strings.ToLower(base), partialSuffix)
}

// ErrPartialFile is the cause of every refusal of a partial file.
var ErrPartialFile = errors.New("it is a file Kalla was still writing (an upload or an output cut off by a crash), not a finished file")

// CheckNotPartial refuses a source URI that names a partial file.
// Errors: EINVALID, wrapping ErrPartialFile.
func CheckNotPartial(uri string) error {
	if IsPartialPath(uri) {
		return WrapError(EINVALID, ErrPartialFile, "source %s cannot be read", Excerpt(Redact(uri)))
	}
	return nil
}
