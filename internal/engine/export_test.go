package engine

// SetPiecesAbove sets the size above which a side's money totals test its
// set of row ids through pieces (piecesAbove), for a test of that path on
// small data, and returns the function that restores it. Tests using it
// must not run in parallel with others.
func SetPiecesAbove(n int64) (restore func()) {
	old := piecesAbove
	piecesAbove = n
	return func() { piecesAbove = old }
}
