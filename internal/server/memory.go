package server

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/kalla-recon/kalla/internal/duck"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// DefaultEngineSlots is how many DuckDB engines besides runs (recipe
// previews and validations) may work at once; the memory budget keeps a
// share for each.
const DefaultEngineSlots = 2

// memoryShare is the part of the machine's memory the default budget
// takes: the rest is left to the operating system, Kalla's Go heap and
// whatever else runs on the machine.
const memoryShare = 0.5

// ParseSize reads a memory size as DuckDB writes them (duck.ParseSize): a
// number and a unit, KB, MB, GB, TB in powers of 1000, KiB, MiB, GiB, TiB
// in powers of 1024, or B. Errors: EINVALID.
func ParseSize(s string) (int64, error) {
	n, ok := duck.ParseSize(s)
	if !ok || n <= 0 {
		return 0, kalla.Errorf(kalla.EINVALID, "memory size %q must be a number and a unit, such as 8GB or 512MiB", s)
	}
	return n, nil
}

// machineMemory returns the memory this process may use: the machine's
// total, or the cgroup's limit when that is lower. 0 when neither can be
// read.
func machineMemory() int64 {
	var total int64
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if kb, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 10, 64)
				total = n << 10
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (total == 0 || n < total) {
			total = n
		}
	}
	return total
}

// minEngineMemory is the least memory_limit an engine is given. Measured:
// with 64 MiB DuckDB fails reading a 100,000-row CSV ("Out of Memory
// Error: could not allocate block") instead of spilling; with 128 MiB two
// such runs at once complete.
const minEngineMemory = 128 << 20

// memoryPlan is how the budget is shared: each engine (a run, or one of
// the engine slots for previews and validations) gets an equal part as
// its DuckDB memory_limit, beyond which DuckDB spills to disk.
type memoryPlan struct {
	budget    int64 // bytes; 0 when unknown
	slots     int
	perEngine int64  // bytes; 0 when an explicit limit is used
	limit     string // the memory_limit each engine is given
}

// planMemory shares budget (a size, "" for the default share of the
// machine) among runs concurrent runs and slots other engines. An explicit
// per-engine limit is kept as given, and the budget only reported.
// Errors: EINVALID for a size that does not parse or leaves an engine
// less than minEngineMemory (the default budget gives each engine at least
// that).
func planMemory(budget, explicit string, runs, slots int) (memoryPlan, error) {
	p := memoryPlan{slots: runs + slots, limit: explicit}
	if budget != "" {
		n, err := ParseSize(budget)
		if err != nil {
			return p, err
		}
		p.budget = n
	} else {
		p.budget = int64(float64(machineMemory()) * memoryShare)
	}
	if explicit != "" || p.budget == 0 {
		return p, nil
	}
	p.perEngine = p.budget / int64(p.slots)
	if p.perEngine < minEngineMemory && budget == "" {
		// A small machine: the default share would starve every engine.
		p.perEngine = minEngineMemory
	}
	if p.perEngine < minEngineMemory {
		return p, kalla.Errorf(kalla.EINVALID, "memory budget %s shared by %d engines (%d runs, %d previews) leaves each less than %dMiB: raise the budget or lower --max-concurrent-runs", budget, p.slots, runs, slots, minEngineMemory>>20)
	}
	p.limit = fmt.Sprintf("%dMiB", p.perEngine>>20)
	return p, nil
}
