//go:build unix

package scratch

import (
	"os"
	"syscall"
)

// lockFolder takes an exclusive flock on the open folder (or file) f
// without waiting. The lock lives with f's open file description: until f is
// closed or the process ends.
func lockFolder(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}
