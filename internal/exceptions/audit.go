package exceptions

import (
	"context"
	"fmt"

	"github.com/kalla-recon/kalla/internal/kalla"
)

// Verdict is the audit chain recomputed: OK, or the first entry found
// changed or removed.
type Verdict struct {
	OK bool `json:"ok"`
	// Entries is how many entries were read; Head the sequence number and
	// hash the store recorded with the last append (keep the hash
	// elsewhere: an entry rewritten together with every one after it and
	// the head can only be told from a copy).
	Entries  int64  `json:"entries"`
	HeadSeq  int64  `json:"head_seq"`
	HeadHash string `json:"head_hash"`
	// FirstBad is the sequence number of the first entry changed or
	// removed; Problem is "changed" or "removed"; Message says it in words.
	FirstBad int64  `json:"first_bad,omitempty"`
	Problem  string `json:"problem,omitempty"`
	Message  string `json:"message"`
}

// Verify recomputes the audit chain from the first entry: each entry's
// hash over its canonical form (kalla.AuditEntry.ComputeHash), each
// entry's prev_hash against the entry before, the sequence numbers for
// gaps, and the last entry against the recorded head. It names the first
// entry changed or removed.
func (s *Service) Verify(ctx context.Context) (*Verdict, error) {
	headSeq, headHash, err := s.store.AuditHead(ctx)
	if err != nil {
		return nil, err
	}
	v := &Verdict{HeadSeq: headSeq, HeadHash: headHash}
	bad := func(seq int64, problem, format string, args ...any) (*Verdict, error) {
		v.FirstBad, v.Problem, v.Message = seq, problem, fmt.Sprintf(format, args...)
		return v, nil
	}
	prevSeq, prevHash := int64(0), kalla.AuditGenesis
	for {
		page, err := s.store.AuditEntries(ctx, prevSeq, 0, 1000)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			v.Entries++
			if e.Seq != prevSeq+1 {
				return bad(prevSeq+1, "removed", "audit entry %d is missing: the log jumps from %d to %d", prevSeq+1, prevSeq, e.Seq)
			}
			if got := e.ComputeHash(); got != e.Hash {
				return bad(e.Seq, "changed", "audit entry %d was changed: its content hashes to %s, not the %s recorded", e.Seq, got[:12], short(e.Hash))
			}
			if e.PrevHash != prevHash {
				if e.Seq == 1 {
					return bad(1, "changed", "audit entry 1 was changed: its previous hash is not the genesis hash")
				}
				return bad(e.Seq-1, "changed", "audit entry %d was changed: entry %d records its hash as %s, it is now %s", e.Seq-1, e.Seq, short(e.PrevHash), short(prevHash))
			}
			prevSeq, prevHash = e.Seq, e.Hash
		}
		if len(page) < 1000 {
			break
		}
	}
	switch {
	case prevSeq < headSeq:
		return bad(prevSeq+1, "removed", "audit entries %d to %d are missing: the log ends at %d", prevSeq+1, headSeq, prevSeq)
	case prevSeq > headSeq:
		return bad(headSeq+1, "changed", "audit entries after %d were added behind Kalla's back (the head records %d)", headSeq, headSeq)
	case prevHash != headHash:
		return bad(prevSeq, "changed", "audit entry %d was changed: the head records its hash as %s, it is now %s", prevSeq, short(headHash), short(prevHash))
	}
	v.OK, v.Message = true, fmt.Sprintf("the audit chain of %d entries is intact", v.Entries)
	return v, nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
