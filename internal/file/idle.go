package file

import (
	"errors"
	"runtime"
	"sync"
)

// errMainThread is idleClass refusing the process's main thread.
var errMainThread = errors.New("the main thread stays in its class")

// idleSlot lets one background step loop at a time run at the idle
// scheduling class. A thread of that class that the system does not run
// still holds one of Go's processors (GOMAXPROCS, two on a 2-core
// machine) while it waits; two of them could leave none for the
// goroutine that drives DuckDB.
var idleSlot = make(chan struct{}, 1)

// background runs step until it reports done, first on a thread of the
// idle scheduling class (SCHED_IDLE on Linux: it runs only on a core no
// other thread wants, and yields the moment one does), and at normal
// priority once hurry is closed: when the run has nothing left to do but
// wait for it. A class once lowered cannot be raised again without
// privileges, so the work moves to a new goroutine instead: the idle
// thread is never unlocked and ends with its goroutine. Without the idle
// class (another system, or the call refused) the work runs at normal
// priority from the start. done is closed once step has reported done.
func background(step func() bool, hurry <-chan struct{}) (done <-chan struct{}) {
	fin := make(chan struct{})
	normal := func() {
		for !step() {
		}
		close(fin)
	}
	// try runs the work on its goroutine's thread; locked tells the
	// goroutine that started it, if any, that it has a thread.
	var try func(locked chan<- struct{})
	try = func(locked chan<- struct{}) {
		runtime.LockOSThread() // never unlocked once lowered: see above
		if locked != nil {
			close(locked)
		}
		switch err := idleClass(); {
		case err == errMainThread:
			// Go never ends the main thread (a goroutine locked to it
			// that exits leaves it blocked for good), and the process's
			// signals, Ctrl-C among them, go to it first: it must not
			// be in the idle class. The work moves to another thread:
			// held here, locked, the main thread cannot run the new
			// goroutine.
			next := make(chan struct{})
			go try(next)
			<-next
			runtime.UnlockOSThread()
			return
		case err != nil:
			runtime.UnlockOSThread() // the class is unchanged
			normal()
			return
		}
		select {
		case idleSlot <- struct{}{}:
		case <-hurry:
			go normal()
			return
		}
		release := sync.OnceFunc(func() { <-idleSlot })
		defer release()
		for {
			select {
			case <-hurry:
				release()
				go normal()
				return
			default:
			}
			if step() {
				close(fin)
				return
			}
		}
	}
	go try(nil)
	return fin
}
