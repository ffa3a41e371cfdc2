package engine

import "github.com/kalla-recon/kalla/internal/rules"

// SetPiecesAbove sets the size above which sets of row ids are held in
// pieces (rules.PiecesAbove), for a test of that path on small data, and
// returns the function that restores it. Tests using it must not run in
// parallel with others.
func SetPiecesAbove(n int64) (restore func()) {
	old := rules.PiecesAbove
	rules.PiecesAbove = n
	return func() { rules.PiecesAbove = old }
}
