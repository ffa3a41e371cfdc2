package recon

import (
	"errors"
	"sort"
	"strings"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// ErrEngineConfig marks errors caused by how the engine was configured (an
// invalid memory limit, an unreachable or misconfigured cluster endpoint)
// rather than by the recipe or its data: the CLI reports them as a usage
// error. Test with errors.Is; the message is unchanged.
var ErrEngineConfig = errors.New("engine configuration")

// configError marks err as the engine configuration's fault.
type configError struct{ err error }

func (c configError) Error() string        { return c.err.Error() }
func (c configError) Unwrap() error        { return c.err }
func (c configError) Is(target error) bool { return target == ErrEngineConfig }

// ConfigError marks err as caused by the engine's configuration
// (errors.Is(err, ErrEngineConfig)) without changing its text or code.
// Engines call it for settings the user gave wrong.
func ConfigError(err error) error {
	if err == nil {
		return nil
	}
	return configError{err}
}

// unknownEngine is the error for an engine the service does not have.
func unknownEngine(name string, known []string) error {
	sort.Strings(known)
	if name == Spark {
		return kalla.Errorf(kalla.EINVALID, "engine %q is not configured: start kalla with --spark-remote (available: %s)", name, strings.Join(known, ", "))
	}
	return kalla.Errorf(kalla.EINVALID, "unknown engine %q (available: %s)", name, strings.Join(known, ", "))
}
