package file

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/kalla-recon/kalla/internal/connector"
)

// assumedFound is what fileScan is expected to find in a file whose first
// rows are sample: nothing wrong with the text, the first column in order
// when it is so in the sample, and the numbers of numCols measured as the
// sample's. A plan built on it is proven by planProof once the scan of the
// whole file is over. dataLines is unknown (-1): the proof compares the
// scan's count with the rows the load read.
func assumedFound(sample [][]string, numCols []int, delim rune) scanFound {
	f := scanFound{firstDistinct: newLineWalk(delim).keys && monotone(sample), dataLines: -1}
	if newNumWalk(delim, numCols) == nil {
		return f
	}
	for _, i := range numCols {
		st := numStat{index: i, plain: true}
		for _, rec := range sample {
			if d, sc, ok := plainDigits([]byte(rec[i])); ok {
				st.seen = true
				st.intDigits, st.scale = max(st.intDigits, d), max(st.scale, sc)
			}
		}
		if st.seen {
			f.numbers = append(f.numbers, st)
		}
	}
	return f
}

// monotone reports whether the sample's first fields, empty ones skipped,
// rise strictly or fall strictly in one order, as lineWalk's proof of
// distinct keys needs them to (see keyOrder).
func monotone(sample [][]string) bool {
	order := newKeyOrder()
	prev, have := "", false
	for _, rec := range sample {
		if len(rec) == 0 || rec[0] == "" {
			continue
		}
		if have {
			order.next(strings.Compare(rec[0], prev), len(rec[0]), len(prev))
		}
		prev, have = rec[0], true
	}
	return order.holds()
}

// planProof proves a plan built on assumedFound against the scan of the
// whole file, which runs in the background meanwhile.
type planProof struct {
	s    *Source
	scan *fileScan
	// scanned is closed when the scan is over, once it has begun (see
	// begin); hurry is closed to run it at full priority.
	scanned <-chan struct{}
	hurry   chan struct{}
	began   sync.Once
	bctx    context.Context
	stop    context.CancelFunc
	// build makes the plan for what a scan found; assumed is what the
	// loaded plan was built on.
	build   func(scanFound) (*csvPlan, error)
	assumed scanFound
}

// newProof is the proof, by scan sc of source s, of a plan built on the
// file's first rows. The scan outlives the call that begins it (see
// begin): until the proof waits for it or quits it, which one of them
// must.
func newProof(ctx context.Context, s *Source, sc *fileScan) *planProof {
	bctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	return &planProof{s: s, scan: sc, hurry: make(chan struct{}), bctx: bctx, stop: stop}
}

// begin starts the scan in the background (see background), once.
func (pp *planProof) begin() {
	pp.began.Do(func() {
		pp.scanned = background(func() bool { return pp.scan.step(pp.bctx) }, pp.hurry)
	})
}

// quit stops the scan, begun or not, without waiting for it.
func (pp *planProof) quit() {
	pp.stop()
	pp.raise()
}

// raise lets the scan run at full priority.
func (pp *planProof) raise() {
	select {
	case <-pp.hurry:
	default:
		close(pp.hurry)
	}
}

// wait runs the scan at full priority and waits for it, or stops it when
// ctx is done first (and waits for that: the scan reads the file, which
// the source may remove when it closes).
func (pp *planProof) wait(ctx context.Context) error {
	pp.begin()
	pp.raise()
	select {
	case <-pp.scanned:
		pp.stop()
		return nil
	case <-ctx.Done():
		pp.stop()
		<-pp.scanned
		return ctx.Err()
	}
}

// exact waits for the scan and returns the plan it proves, which is kept
// for the source's other loads; or the error a proving prepare returns.
func (pp *planProof) exact(ctx context.Context) (*csvPlan, error) {
	if err := pp.wait(ctx); err != nil {
		return nil, err
	}
	if pp.scan.err != nil {
		return nil, pp.scan.err
	}
	p, err := pp.build(pp.scan.found)
	if err != nil {
		return nil, err
	}
	pp.keep(p)
	return p, nil
}

// keep keeps proven plan p for the source's other loads, unless one was
// kept meanwhile.
func (pp *planProof) keep(p *csvPlan) {
	pp.s.mu.Lock()
	defer pp.s.mu.Unlock()
	if pp.s.plan == nil {
		pp.s.plan = p
	}
}

// prove reports whether the table a load made on the assumed plan, rows
// rows before any filter, is the one the proven plan makes: nil when so,
// an error wrapping connector.ErrUnproven that says what differs when not.
func (pp *planProof) prove(ctx context.Context, rows int64) error {
	if err := pp.wait(ctx); err != nil {
		return err
	}
	unproven := func(format string, args ...any) error {
		return fmt.Errorf("source %s: %s: %w", pp.s.name(), fmt.Sprintf(format, args...), connector.ErrUnproven)
	}
	found := pp.scan.found
	switch {
	case pp.scan.err != nil: // it names the source
		return fmt.Errorf("%w: %w", pp.scan.err, connector.ErrUnproven)
	case found.trailingDelim:
		return unproven("a line ends with the delimiter")
	}
	exact, err := pp.build(found)
	if err != nil {
		return unproven("%v", err)
	}
	used, err := pp.build(pp.assumed)
	if err != nil {
		return unproven("%v", err) // it did not fail before: the file changed
	}
	if d := used.differs(exact); d != "" {
		return unproven("%s", d)
	}
	if used.firstDistinct && !exact.firstDistinct {
		return unproven("its first column is in order in its first rows, not in the whole file")
	}
	if (used.firstDistinct || used.unmeasured != nil) && rows != exact.dataLines {
		return unproven("DuckDB read %d rows, the scan %d lines", rows, exact.dataLines)
	}
	pp.keep(exact)
	return nil
}

// differs says how plan q reads the file differently from p, the
// scan's own results (which p and q may differ in) aside; "" when it
// does not.
func (p *csvPlan) differs(q *csvPlan) string {
	if reflect.DeepEqual(p.shape(), q.shape()) {
		return ""
	}
	for i, t := range p.readTypes {
		if i < len(q.readTypes) && q.readTypes[i] != t {
			if q.numeric[i] {
				return fmt.Sprintf("column %q holds plain numbers (%s) in its first rows, values not written as plain numbers further on", p.header[i], t)
			}
			return fmt.Sprintf("column %q reads as %s in the whole file, as %s in its first rows", p.header[i], q.readTypes[i], t)
		}
	}
	return "its columns read otherwise in the whole file than in its first rows"
}

// shape is p without what only the scan tells (ordered keys, line
// count), for comparing two plans of the same file.
func (p *csvPlan) shape() *csvPlan {
	if p == nil {
		return nil
	}
	q := *p
	q.firstDistinct, q.dataLines, q.measuredRows = false, 0, 0
	q.unmeasured = p.unmeasured.shape()
	return &q
}
