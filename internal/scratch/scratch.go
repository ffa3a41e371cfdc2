// Package scratch owns Kalla's temporary folders on disk: the spill
// folders of DuckDB, fetched and decompressed copies of sources, a
// server's previews. Each is a folder the process that made it holds a
// lock on while it lives (flock, on the folder itself). The operating
// system drops the lock when the process dies, however it dies: SIGKILL,
// the kernel's out-of-memory killer, a power cut. So the next Kalla
// process that makes a folder of the same kind under the same base
// removes what the dead one left, which at scale is tens of gigabytes of
// spilled blocks, and never a folder a live process still uses, on this
// host or on another sharing the folder (a server's data folder on a
// shared volume). Removing everything at start, as the server did, took
// the spill files from under the runs of the other processes.
package scratch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pendingPrefix begins the name a folder has between its making and its
// lock: swept only once older than pendingAge, so a process between the
// two steps keeps it.
const pendingPrefix = ".pending-"

// pendingAge is how old a pending folder must be before a sweep takes it
// for one a process died making (the two steps take microseconds).
const pendingAge = time.Minute

// Dir is a folder of this process's own, locked while the process lives
// or until Remove.
type Dir struct {
	path string
	lock *os.File
	once sync.Once
	err  error
}

// Removed is a folder a sweep removed: a dead process's.
type Removed struct {
	Path  string
	Bytes int64
}

// Make creates a folder of this process's own under base (the system's
// temporary folder when empty), named prefix followed by the process id
// and a random part, and locks it. First it removes the folders under
// base with the same prefix whose process is gone (see Sweep), and it
// returns them.
func Make(base, prefix string) (*Dir, []Removed, error) {
	if base == "" {
		base = os.TempDir()
	}
	if err := os.MkdirAll(base, 0o750); err != nil {
		return nil, nil, fmt.Errorf("create temporary folder: %w", err)
	}
	removed := Sweep(base, prefix)
	id := strconv.Itoa(os.Getpid()) + "-"
	// Made under a name no sweep takes for a dead process's, locked, then
	// renamed: a sweep never sees the folder unlocked under its name.
	pending, err := os.MkdirTemp(base, pendingPrefix+prefix+id)
	if err != nil {
		return nil, removed, fmt.Errorf("create temporary folder: %w", err)
	}
	lock, err := os.Open(pending)
	if err == nil {
		if err = lockFolder(lock); errors.Is(err, errNoLocks) {
			err = nil // kept unlocked: no sweep removes anything there
		} else if err != nil {
			lock.Close()
		}
	}
	if err != nil {
		os.Remove(pending)
		return nil, removed, fmt.Errorf("lock temporary folder: %w", err)
	}
	path := filepath.Join(base, strings.TrimPrefix(filepath.Base(pending), pendingPrefix))
	if err := os.Rename(pending, path); err != nil {
		lock.Close()
		os.Remove(pending)
		return nil, removed, fmt.Errorf("create temporary folder: %w", err)
	}
	return &Dir{path: path, lock: lock}, removed, nil
}

// CreateTemp creates a temporary file named by pattern (as os.CreateTemp
// does) in a folder of its own made by Make(base, prefix): one copy, one
// folder, so that a killed process's copy is swept like its spill. remove
// removes the folder with the file; calling it again does nothing.
func CreateTemp(base, prefix, pattern string) (f *os.File, remove func(), err error) {
	own, _, err := Make(base, prefix)
	if err != nil {
		return nil, nil, err
	}
	if f, err = os.CreateTemp(own.Path(), pattern); err != nil {
		own.Remove()
		return nil, nil, err
	}
	return f, func() { own.Remove() }, nil
}

// Path is the folder's path.
func (d *Dir) Path() string { return d.path }

// Remove removes the folder and everything in it, then releases its lock.
// Only the first call does anything; later ones return its error.
func (d *Dir) Remove() error {
	d.once.Do(func() {
		d.err = os.RemoveAll(d.path)
		d.lock.Close()
	})
	return d.err
}

// Sweep removes the folders under base whose names begin with prefix and
// whose process is gone: the ones it can lock. A folder still being made
// (pendingPrefix) is left until it is pendingAge old. Folders it cannot
// read or remove are left as they are: a sweep is housekeeping, and the
// folder of the process that runs it does not depend on it.
func Sweep(base, prefix string) []Removed {
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil
	}
	var removed []Removed
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !Named(name, prefix) {
			continue
		}
		pending := strings.HasPrefix(name, pendingPrefix)
		path := filepath.Join(base, name)
		if pending {
			if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) < pendingAge {
				continue
			}
		}
		if r, ok := sweepOne(path); ok {
			removed = append(removed, r)
		}
	}
	return removed
}

// Named reports whether name is one Make gives a folder of prefix,
// while it is being made or after: the entries Sweep looks at.
func Named(name, prefix string) bool {
	return strings.HasPrefix(name, prefix) || strings.HasPrefix(name, pendingPrefix+prefix)
}

// sweepOne removes the folder at path if no process holds its lock,
// holding the lock itself meanwhile so that two sweeps do not race.
func sweepOne(path string) (Removed, bool) {
	f, err := os.Open(path)
	if err != nil {
		return Removed{}, false
	}
	defer f.Close()
	if err := lockFolder(f); err != nil {
		return Removed{}, false // alive, or locks unsupported here
	}
	n := size(path)
	if err := os.RemoveAll(path); err != nil {
		return Removed{}, false
	}
	return Removed{Path: path, Bytes: n}, true
}

// size is the bytes of the regular files under path.
func size(path string) int64 {
	var n int64
	filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// errNoLocks is lockFolder's error where the system has no flock: nothing
// is then ever taken for a dead process's.
var errNoLocks = errors.New("folder locks are not supported on this system")

// Hold takes this process's lock on the open file f, as Make does on its
// folders, for a file written in place that a starting process would
// otherwise take for a dead one's (an upload being written): RemoveUnheld
// then leaves it while f is open. Where the system has no locks it does
// nothing.
func Hold(f *os.File) error {
	if err := lockFolder(f); err != nil && !errors.Is(err, errNoLocks) {
		return fmt.Errorf("lock %s: %w", filepath.Base(f.Name()), err)
	}
	return nil
}

// RemoveUnheld removes the file at path unless a live process holds it
// (Hold, Make), and reports whether it did. Where the system has no locks
// it removes nothing.
func RemoveUnheld(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := lockFolder(f); err != nil {
		return false, nil
	}
	if err := os.Remove(path); err != nil {
		return false, err
	}
	return true, nil
}
