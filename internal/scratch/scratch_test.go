package scratch

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// holderEnv makes the test binary a holder: a process that makes a folder
// under the base it names, writes a file into it, prints the folder's path
// and waits to be killed.
const holderEnv = "KALLA_SCRATCH_HOLDER"

func TestMain(m *testing.M) {
	if base := os.Getenv(holderEnv); base != "" {
		d, _, err := Make(base, "kalla-test-")
		if err == nil {
			err = os.WriteFile(filepath.Join(d.Path(), "spilled.bin"), make([]byte, 4096), 0o600)
		}
		var f *os.File
		if err == nil {
			f, err = os.Create(filepath.Join(base, "held.partial"))
		}
		if err == nil {
			err = Hold(f) // kept open until killed
		}
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(d.Path())
		select {} // until killed
	}
	os.Exit(m.Run())
}

// holder starts a holder process on base and returns it and its folder,
// once the folder is made, locked and written to (the process says so).
func holder(t *testing.T, base string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holderEnv+"="+base)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, base) {
		t.Fatalf("holder: %q %v", line, err)
	}
	return cmd, strings.TrimSpace(line)
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, e := range es {
		ns = append(ns, e.Name())
	}
	return ns
}

// TestKilledProcessFolderIsSwept: a folder whose process lives is left,
// by Sweep and by Make, whoever else sweeps; once the process is
// SIGKILLed (no cleanup of its own runs), the next Make of the same kind
// removes it and reports its bytes. A folder of another kind is never
// touched.
func TestKilledProcessFolderIsSwept(t *testing.T) {
	base := t.TempDir()
	other := filepath.Join(base, "kalla-other-1")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd, held := holder(t, base)
	if !strings.HasPrefix(filepath.Base(held), fmt.Sprintf("kalla-test-%d-", cmd.Process.Pid)) {
		t.Errorf("folder %s is not named by its process", held)
	}
	if r := Sweep(base, "kalla-test-"); len(r) != 0 {
		t.Fatalf("swept a live process's folder: %v", r)
	}
	mine, removed, err := Make(base, "kalla-test-")
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 0 {
		t.Fatalf("Make swept a live process's folder: %v", removed)
	}
	if _, err := os.Stat(filepath.Join(held, "spilled.bin")); err != nil {
		t.Fatalf("live folder touched: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if _, err := os.Stat(held); err != nil {
		t.Fatalf("a killed process cleans nothing up, yet its folder is gone: %v", err)
	}
	next, removed, err := Make(base, "kalla-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer next.Remove()
	if len(removed) != 1 || removed[0].Path != held || removed[0].Bytes != 4096 {
		t.Fatalf("removed %+v, want %s with 4096 bytes", removed, held)
	}
	want := []string{filepath.Base(mine.Path()), filepath.Base(next.Path()), "held.partial", "kalla-other-1"}
	slices.Sort(want)
	if got := names(t, base); !slices.Equal(got, want) {
		t.Fatalf("left %v, want %v", got, want)
	}
	// This process's own folders are locked by it: another sweep (as from
	// another process) leaves them.
	if r := Sweep(base, "kalla-test-"); len(r) != 0 {
		t.Fatalf("swept this process's own folders: %v", r)
	}
	if err := mine.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := mine.Remove(); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if _, err := os.Stat(mine.Path()); !os.IsNotExist(err) {
		t.Fatalf("removed folder still there: %v", err)
	}
}

// TestPendingFolder: a folder still being made (between MkdirTemp and its
// lock) is left while young, and swept once older than pendingAge, as one
// a process died making.
func TestPendingFolder(t *testing.T) {
	base := t.TempDir()
	young := filepath.Join(base, pendingPrefix+"kalla-test-1-young")
	old := filepath.Join(base, pendingPrefix+"kalla-test-1-old")
	for _, d := range []string{young, old} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	then := time.Now().Add(-2 * pendingAge)
	if err := os.Chtimes(old, then, then); err != nil {
		t.Fatal(err)
	}
	r := Sweep(base, "kalla-test-")
	if len(r) != 1 || r[0].Path != old {
		t.Fatalf("swept %v, want only %s", r, old)
	}
	if _, err := os.Stat(young); err != nil {
		t.Fatalf("young pending folder swept: %v", err)
	}
}

// TestMakeErrors: a base that cannot be a folder is an error naming why,
// not a folder somewhere else.
func TestMakeErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Make(file, "kalla-test-"); err == nil || !strings.Contains(err.Error(), "create temporary folder") {
		t.Fatalf("Make under a file: %v", err)
	}
}

// TestHeldFileOutlivesOthersSweep: a file a live process holds (an upload
// being written) is not removed by RemoveUnheld; once that process is
// killed, it is. A file nobody holds is removed.
func TestHeldFileOutlivesOthersSweep(t *testing.T) {
	base := t.TempDir()
	loose := filepath.Join(base, "loose.partial")
	if err := os.WriteFile(loose, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if gone, err := RemoveUnheld(loose); !gone || err != nil {
		t.Fatalf("unheld file: removed %v, %v", gone, err)
	}
	cmd, _ := holder(t, base)
	held := filepath.Join(base, "held.partial")
	if gone, err := RemoveUnheld(held); gone || err != nil {
		t.Fatalf("held file of a live process: removed %v, %v", gone, err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if gone, err := RemoveUnheld(held); !gone || err != nil {
		t.Fatalf("held file of a killed process: removed %v, %v", gone, err)
	}
	if _, err := RemoveUnheld(held); !os.IsNotExist(err) {
		t.Fatalf("a missing file: %v", err)
	}
}
