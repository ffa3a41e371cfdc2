package exceptions

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
)

// Names of the files of an evidence package besides the run's outputs
// (which sit under outputs/ with their own names).
const (
	EvidenceSummary      = "summary.json"
	EvidenceDecisions    = "decisions.json"
	EvidenceDecCSV       = "decisions.csv"
	EvidenceAudit        = "audit.json"
	EvidenceManifestFile = "manifest.json"
	EvidenceOutputs      = "outputs/"
)

// EvidenceManifest is the last file of an evidence package: the SHA-256 of
// every other file in it, so a recipient can check that nothing was
// changed after export.
type EvidenceManifest struct {
	RunID      string         `json:"run_id"`
	RecipeID   string         `json:"recipe_id"`
	ExportedAt time.Time      `json:"exported_at"`
	Files      []EvidenceFile `json:"files"`
	// OutputsVerified says every output file matched the SHA-256
	// summary.json recorded for it when the run wrote it.
	OutputsVerified bool `json:"outputs_verified"`
	// AuditOK is the audit chain's verification at export (audit.json
	// has the details).
	AuditOK bool   `json:"audit_ok"`
	Note    string `json:"note"`
}

// EvidenceFile is one file of an evidence package.
type EvidenceFile struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	// Redacted is set on summary.json when credentials had to be taken
	// out of it (then it differs from the file on disk).
	Redacted bool `json:"redacted,omitempty"`
}

// EvidenceAuditFile is audit.json: the audit entries that touch the run
// (actions on its items, rules learned on it), each with its hash and the
// hash of the entry before it in the whole log, and the whole chain's
// verification at export.
type EvidenceAuditFile struct {
	RunID   string              `json:"run_id"`
	Entries []*kalla.AuditEntry `json:"entries"`
	// EntriesIntact is true when every entry here hashes to the hash it
	// carries (each can be checked alone, as kalla.AuditEntry.ComputeHash
	// describes); BadEntries lists those that do not.
	EntriesIntact bool    `json:"entries_intact"`
	BadEntries    []int64 `json:"bad_entries"`
	// Verification is the whole chain recomputed at export: it names the
	// first entry changed or removed, whichever run it belongs to.
	Verification *Verdict `json:"verification"`
}

// EvidenceDecision is one exception item of the run with what people
// decided on it: the decisions layer over the immutable outputs.
type EvidenceDecision struct {
	ItemID     int64  `json:"item_id"`
	Kind       string `json:"kind"`
	Side       string `json:"side"`
	Row        int64  `json:"row"`
	Key        string `json:"key"`
	RightKey   string `json:"right_key,omitempty"`
	Amount     string `json:"amount"`
	Status     string `json:"status"`
	Decision   string `json:"decision"`
	Actor      string `json:"actor"`
	Approver   string `json:"approver"`
	Code       string `json:"code"`
	Note       string `json:"note"`
	MatchGroup string `json:"match_group"`
	Assignee   string `json:"assignee"`
	DecidedAt  string `json:"decided_at"`
}

// WriteEvidence writes the evidence package of a completed run (a zip) to
// w: the run's output files from outDir exactly as written, under
// outputs/, after checking each against the SHA-256 summary.json recorded
// (a file changed since is refused, ECONFLICT, before anything is
// written); summary.json (credentials redacted, should it hold any); the
// decisions layer (decisions.json and decisions.csv: every exception item
// of the run with its status, the last decision, who prepared and who
// approved it, code and note); audit.json (the audit entries touching the
// run with their hash chain, and the whole chain's verification); and
// manifest.json, last, with the SHA-256 of every other file. Errors:
// ENOTFOUND, ECONFLICT for a run not completed or an output changed.
func (s *Service) WriteEvidence(ctx context.Context, w io.Writer, runID, outDir string) (*EvidenceManifest, error) {
	rec, err := s.store.GetRun(ctx, runID)
	if err != nil {
		return nil, err
	}
	if rec.Status != kalla.RunCompleted || rec.Summary == nil {
		return nil, kalla.Errorf(kalla.ECONFLICT, "run %s is %s: only a completed run has evidence", runID, rec.Status)
	}
	// The outputs first: a file that no longer matches its checksum
	// stops the export before a byte is written.
	for _, o := range rec.Summary.Outputs {
		sum, _, err := hashFile(filepath.Join(outDir, o.Name))
		if err != nil {
			return nil, kalla.WrapError(kalla.ENOTFOUND, err, "output %s of run %s cannot be read", o.Name, runID)
		}
		if sum != o.SHA256 {
			return nil, kalla.Errorf(kalla.ECONFLICT, "output %s of run %s was changed after the run wrote it: its SHA-256 is %s, summary.json records %s", o.Name, runID, short(sum), short(o.SHA256))
		}
	}
	summary, err := os.ReadFile(filepath.Join(outDir, kalla.SummaryFile))
	if err != nil {
		return nil, kalla.WrapError(kalla.ENOTFOUND, err, "summary.json of run %s cannot be read", runID)
	}
	redacted := kalla.Redact(string(summary))
	decisions, err := s.decisions(ctx, runID)
	if err != nil {
		return nil, err
	}
	audit, err := s.runAudit(ctx, runID)
	if err != nil {
		return nil, err
	}
	for _, e := range audit.Entries {
		e.Before, e.After, e.Note = kalla.Redact(e.Before), kalla.Redact(e.After), kalla.Redact(e.Note)
	}

	m := &EvidenceManifest{RunID: runID, RecipeID: rec.RecipeID, ExportedAt: time.Now().UTC(), OutputsVerified: true,
		AuditOK: audit.Verification.OK,
		Note: "Every file's SHA-256 is listed here. outputs/ holds the run's files exactly as written (each also checked against summary.json); " +
			"decisions.* are what people decided on the run's exceptions; audit.json holds the audit entries touching the run and the whole chain's verification."}
	zw := zip.NewWriter(w)
	add := func(name string, r io.Reader) (*EvidenceFile, error) {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: m.ExportedAt})
		if err != nil {
			return nil, fmt.Errorf("evidence %s: %w", name, err)
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(fw, h), r)
		if err != nil {
			return nil, fmt.Errorf("evidence %s: %w", name, err)
		}
		f := EvidenceFile{Name: name, Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}
		m.Files = append(m.Files, f)
		return &m.Files[len(m.Files)-1], nil
	}
	for _, o := range rec.Summary.Outputs {
		f, err := os.Open(filepath.Join(outDir, o.Name))
		if err != nil {
			return nil, fmt.Errorf("evidence %s: %w", o.Name, err)
		}
		ef, err := add(EvidenceOutputs+o.Name, f)
		f.Close()
		if err != nil {
			return nil, err
		}
		if ef.SHA256 != o.SHA256 {
			return nil, kalla.Errorf(kalla.ECONFLICT, "output %s of run %s changed while it was packed", o.Name, runID)
		}
	}
	ef, err := add(EvidenceSummary, strings.NewReader(redacted))
	if err != nil {
		return nil, err
	}
	ef.Redacted = redacted != string(summary)
	for _, x := range []struct {
		name string
		v    any
	}{{EvidenceDecisions, map[string]any{"run_id": runID, "items": decisions}}, {EvidenceAudit, audit}} {
		b, err := json.MarshalIndent(x.v, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("evidence %s: %w", x.name, err)
		}
		if _, err := add(x.name, strings.NewReader(string(b)+"\n")); err != nil {
			return nil, err
		}
	}
	var csvBuf strings.Builder
	cw := csv.NewWriter(&csvBuf)
	cw.Write([]string{"item_id", "kind", "side", "row", "key", "right_key", "amount", "status", "decision", "actor", "approver", "code", "note", "match_group", "assignee", "decided_at"})
	for _, d := range decisions {
		cw.Write([]string{strconv.FormatInt(d.ItemID, 10), d.Kind, d.Side, strconv.FormatInt(d.Row, 10), d.Key, d.RightKey, d.Amount,
			d.Status, d.Decision, d.Actor, d.Approver, d.Code, d.Note, d.MatchGroup, d.Assignee, d.DecidedAt})
	}
	cw.Flush()
	if _, err := add(EvidenceDecCSV, strings.NewReader(csvBuf.String())); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("evidence manifest: %w", err)
	}
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: EvidenceManifestFile, Method: zip.Deflate, Modified: m.ExportedAt})
	if err != nil {
		return nil, fmt.Errorf("evidence manifest: %w", err)
	}
	if _, err := fw.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("evidence manifest: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	return m, nil
}

// hashFile returns a file's SHA-256 (hex) and size.
func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// allAudit calls fn on every audit entry, in order.
func (s *Service) allAudit(ctx context.Context, fn func(*kalla.AuditEntry)) error {
	for after := int64(0); ; {
		page, err := s.store.AuditEntries(ctx, after, 0, 1000)
		if err != nil {
			return err
		}
		for _, e := range page {
			fn(e)
		}
		if len(page) < 1000 {
			return nil
		}
		after = page[len(page)-1].Seq
	}
}

// runAudit collects the audit entries of a run and verifies the chain.
func (s *Service) runAudit(ctx context.Context, runID string) (*EvidenceAuditFile, error) {
	a := &EvidenceAuditFile{RunID: runID, Entries: []*kalla.AuditEntry{}, BadEntries: []int64{}}
	if err := s.allAudit(ctx, func(e *kalla.AuditEntry) {
		if e.RunID != runID {
			return
		}
		a.Entries = append(a.Entries, e)
		if e.ComputeHash() != e.Hash {
			a.BadEntries = append(a.BadEntries, e.Seq)
		}
	}); err != nil {
		return nil, err
	}
	a.EntriesIntact = len(a.BadEntries) == 0
	v, err := s.Verify(ctx)
	if err != nil {
		return nil, err
	}
	a.Verification = v
	return a, nil
}

// decisions is every exception item of the run with its last decision
// from the audit log (action, note, when).
func (s *Service) decisions(ctx context.Context, runID string) ([]EvidenceDecision, error) {
	items, _, err := s.store.ListExceptions(ctx, store.ExceptionQuery{RunID: runID})
	if err != nil {
		return nil, err
	}
	last := map[int64]*kalla.AuditEntry{}
	if err := s.allAudit(ctx, func(e *kalla.AuditEntry) {
		if e.RunID == runID && e.ItemID > 0 {
			last[e.ItemID] = e
		}
	}); err != nil {
		return nil, err
	}
	out := make([]EvidenceDecision, 0, len(items))
	for _, it := range items {
		d := EvidenceDecision{ItemID: it.ID, Kind: it.Kind, Side: it.Side, Row: it.Row, Key: it.Key, RightKey: it.RightKey,
			Amount: it.Amount, Status: it.Status, Actor: it.PreparedBy, Code: it.Code, MatchGroup: it.MatchGroup, Assignee: it.Assignee}
		if it.DecidedBy != "" && it.DecidedBy != it.PreparedBy {
			d.Approver = it.DecidedBy
		}
		if e := last[it.ID]; e != nil {
			d.Decision, d.Note, d.DecidedAt = e.Action, kalla.Redact(e.Note), e.At.UTC().Format(time.RFC3339)
		}
		out = append(out, d)
	}
	return out, nil
}
