//go:build !unix

package scratch

import "os"

// lockFolder cannot lock here: folders are made unlocked, and Sweep
// removes nothing.
func lockFolder(*os.File) error { return errNoLocks }
