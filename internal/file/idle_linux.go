package file

import (
	"syscall"
	"unsafe"
)

// schedIdle is Linux's SCHED_IDLE scheduling policy.
const schedIdle = 5

// idleClass puts the calling thread in the idle scheduling class; not the
// process's main thread (errMainThread).
func idleClass() error {
	if syscall.Gettid() == syscall.Getpid() {
		return errMainThread
	}
	var param struct{ priority int32 }
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, schedIdle, uintptr(unsafe.Pointer(&param)))
	if errno != 0 {
		return errno
	}
	return nil
}
