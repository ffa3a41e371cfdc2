package server

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"8GB": 8e9, "512MiB": 512 << 20, "1.5 GiB": 3 << 29, "100b": 100, "2tb": 2e12} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GB", "8", "8XB", "-1GB", "0MB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

func TestPlanMemory(t *testing.T) {
	p, err := planMemory("1GiB", "", 2, 2)
	if err != nil || p.budget != 1<<30 || p.slots != 4 || p.perEngine != 256<<20 || p.limit != "256MiB" {
		t.Errorf("1GiB over 2 runs and 2 slots: %+v, %v", p, err)
	}
	// An explicit per-engine limit is kept; the budget is only reported.
	if p, err := planMemory("1GiB", "3GB", 2, 2); err != nil || p.limit != "3GB" || p.perEngine != 0 {
		t.Errorf("explicit limit: %+v, %v", p, err)
	}
	// The default takes half the machine's memory.
	if p, err := planMemory("", "", 1, 2); err != nil || p.budget <= 0 || p.budget > machineMemory() || p.perEngine != p.budget/3 {
		t.Errorf("default budget: %+v (machine %d), %v", p, machineMemory(), err)
	}
	if _, err := planMemory("256MiB", "", 2, 2); err == nil || !strings.Contains(err.Error(), "128MiB") {
		t.Errorf("a budget too small for its engines: %v", err)
	}
}
