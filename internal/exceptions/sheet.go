package exceptions

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
)

// SheetColumns are the columns of an exported sheet. The first ones
// describe the item (id and version identify it on import: a row whose
// item changed since is refused as stale); the last four are for the
// person: decision (an action: accept, reject, match, unmatch, resolve,
// reopen, assign, comment, approve, or empty for no action), code, note,
// assignee, and group, which ties the rows of one manual match together.
var SheetColumns = []string{"id", "version", "run_id", "kind", "side", "key", "right_key", "amount", "right_amount",
	"difference", "currency", "date", "rule", "reason", "closest_candidate", "status", "age_days",
	"decision", "code", "note", "assignee", "group"}

// MaxSheetRows bounds an export and an import.
const MaxSheetRows = MaxBulkItems

// Export writes the open and pending items f selects as CSV or XLSX, with
// empty decision columns. Errors: EINVALID for a bad filter, a format
// other than csv or xlsx, or more than MaxSheetRows items.
func (s *Service) Export(ctx context.Context, f Filter, format string, w io.Writer) error {
	if format != "csv" && format != "xlsx" {
		return kalla.Errorf(kalla.EINVALID, "format %q: want csv or xlsx", format)
	}
	q, err := f.query()
	if err != nil {
		return err
	}
	var rows [][]string
	var all []*kalla.ExceptionItem
	for _, status := range []string{kalla.ExcOpen, kalla.ExcPending} {
		if f.Status != "" && f.Status != status {
			continue
		}
		q.Status = status
		items, total, err := s.store.ListExceptions(ctx, q)
		if err != nil {
			return err
		}
		if total+int64(len(rows)) > MaxSheetRows {
			return kalla.Errorf(kalla.EINVALID, "more than %d open items: narrow the filter", MaxSheetRows)
		}
		for _, it := range items {
			rows = append(rows, []string{strconv.FormatInt(it.ID, 10), strconv.FormatInt(it.Version, 10), it.RunID, it.Kind,
				it.Side, it.Key, it.RightKey, it.Amount, it.RightAmount, it.Difference, it.Currency, it.Date, it.Rule,
				it.Reason, it.Closest, it.Status, strconv.Itoa(it.AgeDays), "", "", "", "", ""})
		}
		all = append(all, items...)
	}
	slices.SortFunc(rows, func(a, b []string) int {
		x, _ := strconv.ParseInt(a[0], 10, 64)
		y, _ := strconv.ParseInt(b[0], 10, 64)
		return int(x - y)
	})
	totals := sheetTotals(all)
	if format == "csv" {
		cw := csv.NewWriter(w)
		cw.Write(SheetColumns)
		for _, r := range append(rows, totals...) {
			// A cell starting with = + - @ would be a formula in a
			// spreadsheet: keep it text.
			cw.Write(defuse(r))
		}
		cw.Flush()
		return cw.Error()
	}
	x := excelize.NewFile()
	defer x.Close()
	const sheet = "exceptions"
	if err := x.SetSheetName("Sheet1", sheet); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	sw, err := x.NewStreamWriter(sheet)
	if err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	for i, r := range append([][]string{SheetColumns}, rows...) {
		cells := make([]any, len(r))
		for j, v := range r {
			cells[j] = excelize.Cell{Value: v} // text: decimals keep their digits
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := sw.SetRow(cell, cells); err != nil {
			return fmt.Errorf("xlsx: %w", err)
		}
	}
	if err := sw.Flush(); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	// The totals go to a sheet of their own: the import reads the first.
	if _, err := x.NewSheet(TotalsSheet); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	tw, err := x.NewStreamWriter(TotalsSheet)
	if err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	for i, r := range append([][]string{TotalsColumns}, totalsRows(totals)...) {
		cells := make([]any, len(r))
		for j, v := range r {
			cells[j] = excelize.Cell{Value: v}
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := tw.SetRow(cell, cells); err != nil {
			return fmt.Errorf("xlsx: %w", err)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	if _, err := x.WriteTo(w); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	return nil
}

// KindTotal marks a totals row of an exported CSV (the import skips it).
const KindTotal = "total"

// TotalsSheet is the XLSX sheet of totals; TotalsColumns its columns: per
// status, side and currency, the items' count, the sum of their amounts
// (a pair's left amount), of pairs' right amounts and of pairs'
// differences (right − left).
const TotalsSheet = "totals"

// TotalsColumns are the columns of the totals sheet.
var TotalsColumns = []string{"status", "side", "currency", "count", "amount", "right_amount", "difference"}

// sheetTotals sums the exported items per status, side and currency, as
// CSV rows of kind total after the items: count in key, the sums in the
// amount, right_amount and difference columns.
func sheetTotals(items []*kalla.ExceptionItem) [][]string {
	type group struct {
		status, side, currency string
	}
	tallies := map[group]*Tally{}
	var order []group
	for _, it := range items {
		g := group{it.Status, it.Side, it.Currency}
		if tallies[g] == nil {
			tallies[g] = &Tally{}
			order = append(order, g)
		}
		tallies[g].add(it)
	}
	slices.SortFunc(order, func(a, b group) int {
		return strings.Compare(a.status+"\x00"+a.side+"\x00"+a.currency, b.status+"\x00"+b.side+"\x00"+b.currency)
	})
	var rows [][]string
	for _, g := range order {
		t := tallies[g]
		t.finish()
		amount, right := t.Amounts[g.currency], ""
		if g.side == "pair" {
			amount, right = t.Sides["left"][g.currency], t.Sides["right"][g.currency]
		}
		row := make([]string, len(SheetColumns))
		set := func(col, v string) { row[slices.Index(SheetColumns, col)] = v }
		set("kind", KindTotal)
		set("side", g.side)
		set("key", strconv.FormatInt(t.Count, 10)+" items")
		set("amount", amount)
		set("right_amount", right)
		set("difference", t.Differences[g.currency])
		set("currency", g.currency)
		set("status", g.status)
		rows = append(rows, row)
	}
	return rows
}

// totalsRows turns the CSV totals rows into rows of TotalsColumns.
func totalsRows(totals [][]string) [][]string {
	var out [][]string
	for _, r := range totals {
		get := func(col string) string { return r[slices.Index(SheetColumns, col)] }
		out = append(out, []string{get("status"), get("side"), get("currency"), strings.TrimSuffix(get("key"), " items"),
			get("amount"), get("right_amount"), get("difference")})
	}
	return out
}

func defuse(r []string) []string {
	out := slices.Clone(r)
	for i, v := range out {
		if v != "" && strings.ContainsRune("=+@", rune(v[0])) {
			out[i] = "'" + v
		}
	}
	return out
}

// RowResult is what became of one sheet row: applied, skipped (no
// decision), or refused with the reason. Row is the sheet's row number (the
// header is row 1).
type RowResult struct {
	Row    int    `json:"row"`
	ID     int64  `json:"id,omitempty"`
	Action string `json:"action,omitempty"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	Code   string `json:"code,omitempty"`
}

// ImportResult is an import: applied only when no row was refused.
type ImportResult struct {
	Applied bool        `json:"applied"`
	Rows    []RowResult `json:"rows"`
}

// Import reads an edited sheet (CSV, or XLSX when it starts like a zip
// file) and applies each row with a decision as an action of actor, all in
// one transaction: when any row is refused (an unknown id, a stale version,
// an action the item's state or the actor's role does not allow) nothing
// is applied and every refusal is reported by row. Rows of one group with
// decision match form one manual match. Errors: EINVALID for a sheet that
// cannot be read, lacks the id, version or decision column, or has refused
// rows (the result is returned with it).
func (s *Service) Import(ctx context.Context, actor string, r io.Reader) (*ImportResult, error) {
	who, err := Actor(ctx, actor)
	if err != nil {
		return nil, err
	}
	ctx = kalla.WithPrincipal(ctx, who)
	data, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read sheet: %w", err)
	}
	table, err := readSheet(data)
	if err != nil {
		return nil, err
	}
	if len(table) == 0 {
		return nil, kalla.Errorf(kalla.EINVALID, "the sheet is empty: want a header row and rows")
	}
	col := map[string]int{}
	for i, h := range table[0] {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, need := range []string{"id", "version", "decision"} {
		if _, ok := col[need]; !ok {
			return nil, kalla.Errorf(kalla.EINVALID, "the sheet has no %q column: export it again and fill in the decision column", need)
		}
	}
	if len(table)-1 > MaxSheetRows {
		return nil, kalla.Errorf(kalla.EINVALID, "the sheet has %d rows: at most %d", len(table)-1, MaxSheetRows)
	}
	get := func(row []string, name string) string {
		i, ok := col[name]
		if !ok || i >= len(row) {
			return ""
		}
		return strings.TrimSpace(strings.TrimPrefix(row[i], "'"))
	}
	res := &ImportResult{Rows: []RowResult{}}
	type pending struct {
		rows []int // indexes into res.Rows
		req  ActionRequest
	}
	var steps []pending
	groups := map[string]int{} // match group label → index into steps
	for n, row := range table[1:] {
		rr := RowResult{Row: n + 2, Status: "skipped"}
		decision := strings.ToLower(get(row, "decision"))
		if decision == "" || strings.EqualFold(get(row, "kind"), KindTotal) {
			res.Rows = append(res.Rows, rr)
			continue
		}
		rr.Action = decision
		id, err1 := strconv.ParseInt(get(row, "id"), 10, 64)
		ver, err2 := strconv.ParseInt(get(row, "version"), 10, 64)
		if err1 != nil || err2 != nil || id <= 0 {
			rr.Status, rr.Code, rr.Error = "refused", kalla.EINVALID, fmt.Sprintf("id %q and version %q must be whole numbers from the export", get(row, "id"), get(row, "version"))
			res.Rows = append(res.Rows, rr)
			continue
		}
		rr.ID = id
		res.Rows = append(res.Rows, rr)
		versions := map[string]int64{strconv.FormatInt(id, 10): ver}
		if decision == ActMatch {
			label := get(row, "group")
			if label == "" {
				res.Rows[len(res.Rows)-1].Status, res.Rows[len(res.Rows)-1].Code = "refused", kalla.EINVALID
				res.Rows[len(res.Rows)-1].Error = "match needs a group: give the rows matched together the same group"
				continue
			}
			if i, ok := groups[label]; ok {
				st := &steps[i]
				st.rows = append(st.rows, len(res.Rows)-1)
				st.req.Items = append(st.req.Items, id)
				st.req.Versions[strconv.FormatInt(id, 10)] = ver
				if c := get(row, "code"); c != "" {
					st.req.Code = c
				}
				continue
			}
			groups[label] = len(steps)
		}
		steps = append(steps, pending{rows: []int{len(res.Rows) - 1}, req: ActionRequest{Action: decision, Items: []int64{id},
			Versions: versions, Code: get(row, "code"), Note: get(row, "note"), Assignee: get(row, "assignee")}})
	}
	// Steps refused before the store (a bad action, a missing code) are
	// reported with the store's refusals.
	var batch []store.ActionStep
	var batchOf []int
	for i, st := range steps {
		p, err := s.prepare(ctx, st.req)
		if err != nil {
			for _, ri := range st.rows {
				res.Rows[ri].Status, res.Rows[ri].Code, res.Rows[ri].Error = "refused", kalla.ErrorCode(err), kalla.ErrorMessage(err)
			}
			continue
		}
		batch, batchOf = append(batch, store.ActionStep{Query: p.query, Decide: p.decide}), append(batchOf, i)
	}
	early := slices.ContainsFunc(res.Rows, func(r RowResult) bool { return r.Status == "refused" })
	results, err := s.store.ActOnExceptionsBatch(ctx, batch, early)
	if err != nil && !errors.Is(err, store.ErrBatchRefused) {
		return nil, err
	}
	for k, r := range results {
		for _, ri := range steps[batchOf[k]].rows {
			if r.Err != nil {
				res.Rows[ri].Status, res.Rows[ri].Code, res.Rows[ri].Error = "refused", kalla.ErrorCode(r.Err), kalla.ErrorMessage(r.Err)
			} else {
				res.Rows[ri].Status = r.Action.Result
			}
		}
	}
	n := 0
	for _, r := range res.Rows {
		if r.Status == "refused" {
			n++
		}
	}
	if n > 0 {
		// The batch was rolled back (or never run): no row took effect.
		for i := range res.Rows {
			if res.Rows[i].Status == "applied" || res.Rows[i].Status == "pending" {
				res.Rows[i].Status = "not applied"
			}
		}
		return res, kalla.Errorf(kalla.EINVALID, "%d rows refused: nothing was applied", n)
	}
	res.Applied = true
	return res, nil
}

// readSheet reads CSV, or the first worksheet of an XLSX file.
func readSheet(data []byte) ([][]string, error) {
	if bytes.HasPrefix(data, []byte("PK\x03\x04")) {
		f, err := excelize.OpenReader(bytes.NewReader(data))
		if err != nil {
			return nil, kalla.WrapError(kalla.EINVALID, err, "the sheet is not a readable XLSX file")
		}
		defer f.Close()
		sheets := f.GetSheetList()
		if len(sheets) == 0 {
			return nil, kalla.Errorf(kalla.EINVALID, "the XLSX file has no worksheet")
		}
		rows, err := f.GetRows(sheets[0])
		if err != nil {
			return nil, kalla.WrapError(kalla.EINVALID, err, "read worksheet %q", sheets[0])
		}
		return rows, nil
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, kalla.WrapError(kalla.EINVALID, err, "the sheet is not readable CSV")
	}
	return rows, nil
}
