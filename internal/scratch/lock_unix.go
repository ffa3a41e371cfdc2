//go:build unix

package scratch

import (
	"os"
	"syscall"
)

// lockFolder takes an exclusive flock on the open folder (or file) f
// without waiting. The lock lives with f's open file description: until f
// is closed or the process ends. A file system that cannot lock (ENOLCK,
// EOPNOTSUPP; over NFS, flock becomes a POSIX lock, which a folder opened
// read-only cannot take: EBADF) is errNoLocks: folders are then made
// unlocked and no sweep removes anything there, rather than every run
// failing on such a data folder.
func lockFolder(f *os.File) error {
	for {
		switch err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err {
		case syscall.EINTR:
			continue
		case syscall.ENOLCK, syscall.EOPNOTSUPP, syscall.EBADF, syscall.EINVAL:
			return errNoLocks
		default:
			return err
		}
	}
}
