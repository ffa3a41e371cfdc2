//go:build !linux

package file

import "errors"

// idleClass is only available on Linux: elsewhere background work runs at
// normal priority.
func idleClass() error { return errors.New("no idle scheduling class") }
