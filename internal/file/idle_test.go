package file

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// threadPolicy is the scheduling policy of the calling thread (field 41 of
// /proc/thread-self/stat: 0 normal, 5 idle); -1 where /proc does not tell.
func threadPolicy() int {
	b, err := os.ReadFile("/proc/thread-self/stat")
	if err != nil {
		return -1
	}
	// The command name, in parentheses, may hold spaces: count after it.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 39 {
		return -1
	}
	switch f[38] {
	case "0":
		return 0
	case "5":
		return 5
	}
	return -1
}

// idleThreads counts the process's threads in the idle class.
func idleThreads(t *testing.T) int {
	t.Helper()
	stats, err := filepath.Glob("/proc/self/task/*/stat")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended meanwhile
		}
		s := string(b)
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]); len(f) >= 39 && f[38] == "5" {
			n++
		}
	}
	return n
}

// TestBackground checks that background work runs in the idle class until
// hurried, then at normal priority to its end, and that no thread of the
// process stays in the idle class once it is over: a Go thread put there
// and handed back to the scheduler would slow whatever ran on it next.
func TestBackground(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the idle class is Linux's")
	}
	for _, hurried := range []bool{false, true} {
		hurry := make(chan struct{})
		var policies []int
		const steps = 40
		n := 0
		done := background(func() bool {
			policies = append(policies, threadPolicy())
			n++
			if hurried && n == steps/2 {
				close(hurry)
			}
			return n == steps
		}, hurry)
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("hurried %v: background work not done after a minute (%d steps)", hurried, n)
		}
		if n != steps {
			t.Fatalf("hurried %v: %d steps, want %d", hurried, n, steps)
		}
		if policies[0] != 5 {
			t.Errorf("hurried %v: the first step ran in policy %d, want the idle class (5)", hurried, policies[0])
		}
		if hurried && policies[steps-1] != 0 {
			t.Errorf("the last step after hurry ran in policy %d, want normal (0)", policies[steps-1])
		}
		if !hurried && policies[steps-1] != 5 {
			t.Errorf("the last step, unhurried, ran in policy %d, want idle (5)", policies[steps-1])
		}
		// The idle thread ends with its goroutine, just after done.
		deadline := time.Now().Add(30 * time.Second)
		for idleThreads(t) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("hurried %v: %d threads still in the idle class", hurried, idleThreads(t))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
