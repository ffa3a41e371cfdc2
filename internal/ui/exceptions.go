package ui

import (
	"context"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/kalla-recon/kalla/internal/exceptions"
	"github.com/kalla-recon/kalla/internal/kalla"
	"github.com/kalla-recon/kalla/internal/store"
)

// Exceptions is what the exception pages read from the exceptions service
// (*exceptions.Service): lists, one item with its history, a run's
// decision summary, and the settings people act under. Acting goes through
// the API, as every action of the UI does.
type Exceptions interface {
	List(ctx context.Context, f exceptions.Filter, limit, offset int) (*exceptions.Page, error)
	Get(ctx context.Context, id int64) (*exceptions.Detail, error)
	Summary(ctx context.Context, rec *kalla.RunRecord) (*exceptions.RunSummary, error)
	Codes() []string
	ApprovalAmount() string
}

// tokenLister is the part of the store that names the people who may
// approve; a store without it (the handler tests' fake) names nobody.
type tokenLister interface {
	ListTokens(ctx context.Context) ([]*kalla.APIToken, error)
}

// queuePage is how many items the queue shows at a time.
const queuePage = 50

// excStatuses are the statuses the queue counts, in the order shown.
var excStatuses = []string{kalla.ExcOpen, kalla.ExcPending, kalla.ExcAccepted, kalla.ExcRejected, kalla.ExcMatched, kalla.ExcResolved}

// ageBuckets are the age filters the queue offers, in days.
var ageBuckets = []string{"0-7", "8-30", "31-89", "90+"}

// queueForm is the queue's filter form as the person filled it in (text,
// so a value is shown back as typed).
type queueForm struct {
	Run, Recipe, Side, Kind, Reason, Rule, Age, Min, Max, Diff, Assignee, Status string
}

// values is the form as query parameters, leaving out empty fields.
func (f queueForm) values() url.Values {
	v := url.Values{}
	for _, p := range []struct{ k, v string }{{"run_id", f.Run}, {"recipe_id", f.Recipe}, {"side", f.Side}, {"kind", f.Kind}, {"reason", f.Reason},
		{"rule", f.Rule}, {"age", f.Age}, {"min_amount", f.Min}, {"max_amount", f.Max}, {"max_difference", f.Diff},
		{"assignee", f.Assignee}, {"status", f.Status}} {
		if p.v != "" {
			v.Set(p.k, p.v)
		}
	}
	return v
}

// link is the queue's URL with the form's filters and extra parameters.
func (f queueForm) link(extra ...string) string {
	v := f.values()
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			v.Del(extra[i])
		} else {
			v.Set(extra[i], extra[i+1])
		}
	}
	if len(v) == 0 {
		return "/exceptions"
	}
	return "/exceptions?" + v.Encode()
}

// filter turns the form into the service's filter. Errors: EINVALID for
// an amount that is not a number (the service checks the rest).
func (f queueForm) filter() (exceptions.Filter, error) {
	out := exceptions.Filter{RunID: f.Run, RecipeID: f.Recipe, Side: f.Side, Kind: f.Kind, Reason: f.Reason, Rule: f.Rule,
		Age: f.Age, Assignee: f.Assignee}
	if f.Status != "any" {
		out.Status = f.Status
	}
	for _, a := range []struct {
		name, text string
		to         **float64
	}{{"lowest amount", f.Min, &out.MinAmount}, {"highest amount", f.Max, &out.MaxAmount}, {"largest difference", f.Diff, &out.MaxDifference}} {
		if a.text == "" {
			continue
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(a.text), 64)
		if err != nil {
			return out, kalla.Errorf(kalla.EINVALID, "the %s %q is not a number", a.name, kalla.Excerpt(a.text))
		}
		*a.to = &n
	}
	return out, nil
}

// apiQuery is a filter as GET /api/exceptions takes it, so the queue's
// script can fetch every item the filter selects (all pages) for a bulk
// action: the same selection the page lists, by the API's own filter.
func apiQuery(f exceptions.Filter) string {
	v := url.Values{}
	for _, p := range []struct{ k, v string }{{"run_id", f.RunID}, {"recipe_id", f.RecipeID}, {"status", f.Status}, {"kind", f.Kind},
		{"side", f.Side}, {"rule", f.Rule}, {"reason", f.Reason}, {"assignee", f.Assignee}, {"age", f.Age}} {
		if p.v != "" {
			v.Set(p.k, p.v)
		}
	}
	for _, p := range []struct {
		k string
		v *float64
	}{{"min_amount", f.MinAmount}, {"max_amount", f.MaxAmount}, {"max_difference", f.MaxDifference}} {
		if p.v != nil {
			v.Set(p.k, strconv.FormatFloat(*p.v, 'g', -1, 64))
		}
	}
	return v.Encode()
}

// statusCount is one status's count in the queue's counts bar.
type statusCount struct {
	Status  string
	N       int64
	URL     string
	Current bool
}

// countsData is the counts bar, refreshed in place by live.js.
type countsData struct {
	Counts  []statusCount
	Refresh string
}

// queueData is what the exception queue shows.
type queueData struct {
	Form       queueForm
	Runs       []*kalla.RunRecord
	Recipes    []recipeView
	Statuses   []string
	Ages       []string
	Counts     countsData
	Items      []*kalla.ExceptionItem
	Total      int64
	Offset     int
	First      int
	Last       int
	Prev, Next string
	Error      string
	// APIQuery is the filter as the API takes it (see apiQuery); Codes
	// and Approval are what a bulk resolve offers and says; MaxBulk is the
	// most items one action takes.
	APIQuery string
	Codes    []string
	Approval string
	MaxBulk  int
}

// service returns the exceptions service, EUNAVAILABLE without one.
func (h *Handler) service() (Exceptions, error) {
	if h.cfg.Exceptions == nil {
		return nil, kalla.Errorf(kalla.EUNAVAILABLE, "exceptions are not enabled on this server")
	}
	return h.cfg.Exceptions, nil
}

// exceptionQueue lists the exception items a filter selects (open ones
// unless the status says otherwise), paged, with a count per status under
// the other filters. With ?fragment=counts it renders only the counts,
// which live.js refreshes every two seconds so the counts follow what
// other people do. A filter the service refuses is shown above an empty
// list, with the form kept as typed.
func (h *Handler) exceptionQueue(w http.ResponseWriter, r *http.Request) (*view, error) {
	svc, err := h.service()
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	q := r.URL.Query()
	d := queueData{Statuses: excStatuses, Ages: ageBuckets, Form: queueForm{Run: q.Get("run_id"), Recipe: q.Get("recipe_id"),
		Side: q.Get("side"), Kind: q.Get("kind"), Reason: q.Get("reason"), Rule: q.Get("rule"), Age: q.Get("age"), Min: q.Get("min_amount"),
		Max: q.Get("max_amount"), Diff: q.Get("max_difference"), Assignee: q.Get("assignee"), Status: q.Get("status")},
		Codes: svc.Codes(), Approval: svc.ApprovalAmount(), MaxBulk: exceptions.MaxBulkItems}
	if d.Form.Status == "" {
		d.Form.Status = kalla.ExcOpen
	}
	if o, err := strconv.Atoi(q.Get("offset")); err == nil && o > 0 {
		d.Offset = o
	}
	d.Counts.Refresh = d.Form.link("fragment", "counts", "offset", "")
	f, err := d.Form.filter()
	if err == nil {
		d.Counts.Counts, err = statusCounts(ctx, svc, d.Form, f)
	}
	if err == nil {
		var page *exceptions.Page
		if page, err = svc.List(ctx, f, queuePage, d.Offset); err == nil {
			d.Items, d.Total, d.APIQuery = page.Items, page.Total, apiQuery(f)
		}
	}
	if err != nil {
		if kalla.ErrorCode(err) != kalla.EINVALID {
			return nil, err
		}
		d.Error = kalla.ErrorMessage(err)
	}
	if q.Get("fragment") == "counts" {
		return &view{Page: "exceptions.html", Fragment: "exc_counts", Data: d.Counts}, nil
	}
	if len(d.Items) > 0 {
		d.First, d.Last = d.Offset+1, d.Offset+len(d.Items)
	}
	if int64(d.Offset+queuePage) < d.Total {
		d.Next = d.Form.link("offset", strconv.Itoa(d.Offset+queuePage))
	}
	if d.Offset > 0 {
		d.Prev = d.Form.link("offset", strconv.Itoa(max(0, d.Offset-queuePage)))
	}
	runs, err := h.store.ListRuns(ctx, store.RunQuery{Status: kalla.RunCompleted, Limit: 100})
	if err != nil {
		return nil, err
	}
	d.Runs = redactRuns(runs)
	recs, err := h.store.ListRecipes(ctx)
	if err != nil {
		return nil, err
	}
	d.Recipes = viewRecipes(recs)
	return &view{Page: "exceptions.html", Title: "Exceptions", Nav: "exceptions", Data: d}, nil
}

// statusCounts counts the items of each status under the filter's other
// conditions.
func statusCounts(ctx context.Context, svc Exceptions, form queueForm, f exceptions.Filter) ([]statusCount, error) {
	var out []statusCount
	for _, st := range excStatuses {
		f.Status = st
		page, err := svc.List(ctx, f, 1, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, statusCount{Status: st, N: page.Total, URL: form.link("status", st, "offset", ""), Current: form.Status == st})
	}
	return out, nil
}

// candidate is an item offered for a manual match, with why it is offered.
type candidate struct {
	*kalla.ExceptionItem
	Why     string
	Checked bool
}

// itemData is what an exception item's page shows.
type itemData struct {
	Item      *exceptions.Detail
	Run       *kalla.RunRecord // redacted
	Codes     []string
	Tolerance string
	// Approval is the amount from which a write-off waits for a second
	// person; Approvers are the people who could approve what is pending
	// (named tokens of role approver or admin, not the preparer).
	Approval  string
	Approvers []string
	// Left and Right are the records a manual match may take: this one
	// and the open records of the same run, closest first.
	Left, Right []candidate
	Next        string
	Queue       string
	// What the item's state allows (the API decides; the page offers only
	// these).
	CanDecide, CanMatch, CanReopen, CanUnmatch, CanApprove bool
}

// allowed sets what the item's state allows, as the service's actions do.
func (d *itemData) allowed() {
	it := d.Item
	pendingMatch := it.Pending != nil && it.Pending.Action == exceptions.ActMatch
	d.CanDecide = it.Kind == kalla.ExcKindSuggested && it.Status == kalla.ExcOpen
	d.CanMatch = it.Kind == kalla.ExcKindUnmatched && it.Status == kalla.ExcOpen
	switch it.Status {
	case kalla.ExcAccepted, kalla.ExcRejected, kalla.ExcResolved:
		d.CanReopen = true
	case kalla.ExcPending:
		d.CanReopen, d.CanApprove = !pendingMatch, true
	}
	d.CanUnmatch = it.Status == kalla.ExcMatched || it.Status == kalla.ExcAccepted || pendingMatch
}

// maxCandidates bounds the records offered per side for a manual match.
const maxCandidates = 100

// exceptionItem shows one item: its record (or pair), its reason and
// closest candidate, what a person may do with it now, the records of the
// run it could be matched with by hand, and its history. Errors:
// ENOTFOUND for an unknown item.
func (h *Handler) exceptionItem(w http.ResponseWriter, r *http.Request) (*view, error) {
	svc, err := h.service()
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return nil, kalla.Errorf(kalla.ENOTFOUND, "there is no exception %q", kalla.Excerpt(raw))
	}
	it, err := svc.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	rec, err := h.store.GetRun(ctx, it.RunID)
	if err != nil {
		return nil, err
	}
	d := itemData{Item: it, Run: rec.Redacted(), Codes: svc.Codes(), Tolerance: tolerance(rec), Approval: svc.ApprovalAmount(),
		Queue: "/exceptions?run_id=" + url.QueryEscape(it.RunID)}
	d.allowed()
	if it.Status == kalla.ExcPending {
		d.Approvers = h.approvers(ctx, it.PreparedBy)
	}
	open, _, err := h.openItems(ctx, svc, it.RunID)
	if err != nil {
		return nil, err
	}
	for _, o := range open {
		if o.ID > it.ID && d.Next == "" {
			d.Next = "/exceptions/" + strconv.FormatInt(o.ID, 10)
		}
	}
	if it.Kind == kalla.ExcKindUnmatched && it.Status == kalla.ExcOpen {
		same, other := &d.Left, &d.Right
		if it.Side == "right" {
			same, other = other, same
		}
		*same = append(*same, candidate{ExceptionItem: it.ExceptionItem, Why: "this record", Checked: true})
		for _, o := range open {
			if o.Kind != kalla.ExcKindUnmatched || o.ID == it.ID {
				continue
			}
			c := candidate{ExceptionItem: o, Why: related(it.ExceptionItem, o)}
			if o.Side == it.Side {
				*same = append(*same, c)
			} else {
				*other = append(*other, c)
			}
		}
		rank := func(list []candidate) []candidate {
			head := list[:0:0]
			if len(list) > 0 && list[0].Checked {
				head, list = list[:1], list[1:]
			}
			slices.SortStableFunc(list, func(a, b candidate) int { return whyRank(a.Why) - whyRank(b.Why) })
			out := append(head, list...)
			if len(out) > maxCandidates {
				out = out[:maxCandidates]
			}
			return out
		}
		d.Left, d.Right = rank(d.Left), rank(d.Right)
	}
	return &view{Page: "exception.html", Title: "Exception " + strconv.FormatInt(id, 10), Nav: "exceptions", Data: d}, nil
}

// openItems returns the open items of a run, in id order (at most 1000:
// enough for a screen of candidates and the next item).
func (h *Handler) openItems(ctx context.Context, svc Exceptions, runID string) ([]*kalla.ExceptionItem, int64, error) {
	page, err := svc.List(ctx, exceptions.Filter{RunID: runID, Status: kalla.ExcOpen}, 1000, 0)
	if err != nil {
		return nil, 0, err
	}
	return page.Items, page.Total, nil
}

// related says why o is offered for a manual match with it: named as its
// closest candidate, sharing a key, or of the same amount; "" otherwise.
func related(it, o *kalla.ExceptionItem) string {
	switch {
	case o.Key != "" && (strings.Contains(it.Closest, o.Key) || strings.Contains(o.Closest, it.Key)):
		return "closest candidate"
	case o.Key == it.Key || o.Key != "" && strings.Contains(it.Reason, o.Key) || it.Key != "" && strings.Contains(o.Reason, it.Key):
		return "shares the key"
	case sameAmount(it.Amount, o.Amount):
		return "same amount"
	}
	return ""
}

func whyRank(why string) int {
	switch why {
	case "closest candidate":
		return 0
	case "shares the key":
		return 1
	case "same amount":
		return 2
	}
	return 3
}

// sameAmount compares two decimal texts exactly.
func sameAmount(a, b string) bool {
	x, ok1 := new(big.Rat).SetString(a)
	y, ok2 := new(big.Rat).SetString(b)
	return ok1 && ok2 && x.Cmp(y) == 0
}

// tolerance is the difference a manual match of the run may have without
// a resolution code, as the service holds it.
func tolerance(rec *kalla.RunRecord) string {
	t := exceptions.Tolerance(&rec.Recipe)
	if t.IsInt() {
		return t.Num().String()
	}
	// A tolerance comes from decimal text, so 18 places hold it exactly;
	// the zeros after its last digit are dropped (0.01, not 0.0100…).
	return strings.TrimRight(t.FloatString(18), "0")
}

// approvers names the people who may approve what preparer prepared: the
// active named tokens of role approver or admin, other than the preparer.
func (h *Handler) approvers(ctx context.Context, preparer string) []string {
	tl, ok := h.store.(tokenLister)
	if !ok {
		return nil
	}
	tokens, err := tl.ListTokens(ctx)
	if err != nil {
		h.log.Error("list the approvers", "err", err)
		return nil
	}
	var out []string
	for _, t := range tokens {
		if t.RevokedAt == nil && t.Role.Allows(kalla.RoleApprover) && t.Name != preparer {
			out = append(out, t.Name)
		}
	}
	return out
}

// decisionData is a run's decision summary on the run page.
type decisionData struct {
	*exceptions.RunSummary
	Queue string
}

// decisions is a completed run's decision summary, nil when the server
// has no exceptions service or the summary cannot be read (logged: the
// run page still shows the run).
func (h *Handler) decisions(ctx context.Context, rec *kalla.RunRecord) *decisionData {
	if h.cfg.Exceptions == nil || rec.Status != kalla.RunCompleted {
		return nil
	}
	s, err := h.cfg.Exceptions.Summary(ctx, rec)
	if err != nil {
		h.log.Error("decision summary", "run", rec.ID, "err", err)
		return nil
	}
	return &decisionData{RunSummary: s, Queue: "/exceptions?run_id=" + url.QueryEscape(rec.ID)}
}
