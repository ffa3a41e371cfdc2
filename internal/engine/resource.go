package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/kalla-recon/kalla/internal/duck"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// Resource kinds a run can run out of, or lose.
const (
	resourceMemory = "memory"
	resourceDisk   = "disk"
	// resourceSpill: DuckDB could not open, read or write one of the files
	// it spills to. Something outside the run removed or changed them (a
	// clean-up of the temporary folder while the run worked): the recipe
	// was fine, and the run fails with the spill folder named.
	resourceSpill = "spill"
)

// resourceKind tells whether err is DuckDB (or the file system) running out
// of memory or of disk, and which; "" for anything else. DuckDB reports
// both as an "Out of Memory Error": "could not allocate" / "failed to
// allocate" when the memory limit is reached and nothing more can be
// evicted, "failed to offload" when the spill folder reached
// max_temp_directory_size (by default 90% of the free space on its disk).
// A disk that fills before that limit fails the write with ENOSPC. An
// "IO Error" naming one of DuckDB's spill files (duckdb_temp_storage_*,
// duckdb_temp_block-*) is the spill folder lost under the run.
func resourceKind(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	switch {
	case errors.Is(err, syscall.ENOSPC), strings.Contains(msg, "No space left on device"),
		strings.Contains(msg, "failed to offload"), strings.Contains(msg, "max_temp_directory_size"):
		return resourceDisk
	}
	if strings.Contains(msg, "IO Error") && strings.Contains(msg, "duckdb_temp_") {
		return resourceSpill
	}
	var de *duckdb.Error
	if errors.As(err, &de) && de.Type == duckdb.ErrorTypeOutOfMemory || strings.Contains(msg, "Out of Memory Error") {
		return resourceMemory
	}
	return ""
}

// duckdbLine is the line of err's text that holds DuckDB's own report (from
// "Out of Memory Error" or "IO Error" on), or the first line.
func duckdbLine(err error) string {
	msg := err.Error()
	for _, marker := range []string{"Out of Memory Error", "IO Error"} {
		if i := strings.Index(msg, marker); i >= 0 {
			msg = msg[i:]
			break
		}
	}
	line, _, _ := strings.Cut(msg, "\n")
	return strings.TrimSpace(line)
}

// resourceFailure returns the user-facing error for err when it is a
// resource failure (see resourceKind) in the named stage, saying what to
// change: --memory-limit for memory, --temp-dir and the free space needed
// (measured from the spill folder) for disk. Its code is kalla.ERESOURCE
// and it is not a recipe error, whatever err was wrapped in: the recipe
// and its SQL were fine, the machine was too small for them as configured.
// Nil when err is something else.
func (e *Engine) resourceFailure(stage, outDir string, err error) error {
	kind := resourceKind(err)
	if kind == "" {
		return nil
	}
	cause := errors.New(duckdbLine(err))
	spilled := e.spill.peakNow()
	limit := defaultLimit
	if e.memLimit != "" {
		limit = "--memory-limit " + e.memLimit
	}
	where := e.spillBase
	if where == "" {
		where = os.TempDir() + " (the system temporary folder)"
	}
	if kind == resourceSpill {
		return kalla.WrapError(kalla.ERESOURCE, cause,
			"the spill folder failed in stage %s: DuckDB could not use a file it had spilled to %s: something removed or changed files there while the run worked (a clean-up of the temporary folder?): give --temp-dir a folder nothing else cleans up, and run again",
			stage, e.tempDir)
	}
	if kind == resourceDisk {
		if outDir != "" && strings.Contains(err.Error(), outDir) && !strings.Contains(err.Error(), e.tempDir) {
			return kalla.WrapError(kalla.ERESOURCE, cause,
				"out of disk space in stage %s: the output folder %s is on a full disk (%s free): free space there or choose another --out",
				stage, outDir, sizeText(freeSpace(outDir)))
		}
		// DuckDB's own figure (the spill folder's size when it gave up)
		// is exact; the sampled one may have missed a short burst.
		spilled = max(spilled, offloadedBytes(err.Error()))
		return kalla.WrapError(kalla.ERESOURCE, cause,
			"out of disk space in stage %s: DuckDB had spilled %s to %s beyond %s when the disk under it filled (%s still free): give --temp-dir a folder on a disk with more than %s free (twice what this run reached), or raise --memory-limit so that less spills",
			stage, sizeText(spilled), where, limit, sizeText(freeSpace(e.tempDir)), sizeText(2*spilled))
	}
	spillNote := "nothing had been spilled"
	if spilled > 0 {
		spillNote = fmt.Sprintf("%s had been spilled to %s", sizeText(spilled), where)
	}
	return kalla.WrapError(kalla.ERESOURCE, cause,
		"out of memory in stage %s: DuckDB needed more than %s for a part of this stage it could not spill to disk (%s): raise --memory-limit, or lower --threads (each thread holds its own buffers)",
		stage, limit, spillNote)
}

// defaultLimit names the memory limit of a run given none, in messages
// and the log.
const defaultLimit = "DuckDB's default of 80% of the machine's memory"

// offloadedRe finds the spill folder's size in DuckDB's "failed to offload
// data block of size 256.0 KiB (2.5 MiB/2.6 MiB used)".
var offloadedRe = regexp.MustCompile(`failed to offload[^(]*\(([0-9.]+) ?([KMGT]i?B|bytes)/`)

// offloadedBytes is the spill size DuckDB reports in msg, 0 when none.
func offloadedBytes(msg string) int64 {
	m := offloadedRe.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	n, _ := duck.ParseSize(m[1] + m[2])
	return n
}

// sizeText writes a byte count the way DuckDB does (1.5 GiB).
func sizeText(n int64) string {
	switch {
	case n < 0:
		return "unknown"
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// freeSpace is the space an unprivileged process may still write on the
// disk holding path, -1 when unknown.
func freeSpace(path string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// diskUsage is the space the files directly in dir take on disk (allocated
// blocks, so a spill file with holes counts what it holds), 0 when dir
// cannot be read.
func diskUsage(dir string) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, d := range ents {
		fi, err := os.Lstat(filepath.Join(dir, d.Name()))
		if err != nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		} else {
			n += fi.Size()
		}
	}
	return n
}

// spillInterval is how often a run samples its spill folder.
const spillInterval = 200 * time.Millisecond

// spillWatch samples the size of a run's spill folder while it works, so
// that each stage can report how much it spilled at most, and a failure can
// say how much disk the spill had taken (DuckDB removes the failed query's
// blocks before it returns the error, so the folder is measured while the
// query runs). A nil *spillWatch reports nothing.
type spillWatch struct {
	dir  string
	mu   sync.Mutex
	cur  string           // current stage
	peak map[string]int64 // per stage
	max  int64            // over the run
	stop chan struct{}
	done chan struct{}
}

// watchSpill starts sampling dir.
func watchSpill(dir string) *spillWatch {
	w := &spillWatch{dir: dir, peak: map[string]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(spillInterval)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				w.sample()
			}
		}
	}()
	return w
}

func (w *spillWatch) sample() int64 {
	n := diskUsage(w.dir)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.max = max(w.max, n)
	if w.cur != "" {
		w.peak[w.cur] = max(w.peak[w.cur], n)
	}
	return n
}

// enter marks the start of a stage: samples from now on count for it.
func (w *spillWatch) enter(stage string) {
	if w == nil {
		return
	}
	w.sample() // the end of the previous stage
	w.mu.Lock()
	w.cur = stage
	w.mu.Unlock()
}

// peakOf is the most the spill folder held while stage ran.
func (w *spillWatch) peakOf(stage string) int64 {
	if w == nil {
		return 0
	}
	w.sample()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak[stage]
}

// peakNow is the most the spill folder held so far, measured once more now.
func (w *spillWatch) peakNow() int64 {
	if w == nil {
		return 0
	}
	w.sample()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max
}

// close stops sampling; it is safe on nil.
func (w *spillWatch) close() {
	if w == nil {
		return
	}
	close(w.stop)
	<-w.done
}
