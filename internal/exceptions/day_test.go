package exceptions_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/kalla-recon/kalla/internal/exceptions"
	"github.com/kalla-recon/kalla/internal/kalla"
)

// TestScriptedDay is a day of a reconciliation team's work on one run, then
// the audit chain verified, then the store edited behind Kalla's back: an
// entry's content changed, then an entry removed, then the last entry
// removed. Each time verify names the first entry concerned.
func TestScriptedDay(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			e := setup(t, b.newURL(t))
			ctx := context.Background()
			ann, bob, cid, vic := as("ann", kalla.RolePreparer), as("bob", kalla.RoleApprover), as("cid", kalla.RoleApprover), as("vic", kalla.RoleViewer)
			id := func(key string) int64 { return e.items[key].ID }

			// An item nobody acted on has an empty history: [] in JSON,
			// not null (schemathesis found the null).
			if d, err := e.svc.Get(ctx, id("I5")); err != nil {
				t.Fatal(err)
			} else if b, _ := json.Marshal(d); !strings.Contains(string(b), `"history":[]`) {
				t.Fatalf("untouched item: %s", b)
			}

			// Nobody named: refused.
			_, err := e.svc.Act(ctx, exceptions.ActionRequest{Action: exceptions.ActComment, Note: "hi", Items: []int64{id("I5")}})
			wantCode(t, err, kalla.EINVALID)
			// Named without a principal: acts as admin.
			act(t, e, ctx, exceptions.ActionRequest{Action: exceptions.ActAssign, Assignee: "ann", Actor: "lead", Items: []int64{id("I5"), id("P5")}})
			// A viewer may not act.
			_, err = e.svc.Act(vic, exceptions.ActionRequest{Action: exceptions.ActAccept, Items: []int64{id("I3")}})
			wantCode(t, err, kalla.EFORBIDDEN)

			// Bulk: accept every suggested pair of rule tol10 within 5.
			res := act(t, e, ann, exceptions.ActionRequest{Action: exceptions.ActAccept,
				Filter: &exceptions.Filter{RunID: e.runID, Kind: kalla.ExcKindSuggested, Status: kalla.ExcOpen, Rule: "tol10"}})
			if len(res.Items) != 2 || res.Items[0].Status != kalla.ExcAccepted || res.Action.Actor != "ann" {
				t.Fatalf("bulk accept: %+v", res)
			}
			act(t, e, ann, exceptions.ActionRequest{Action: exceptions.ActUnmatch, Items: []int64{id("I4")}, Note: "92 is not 100"})
			act(t, e, ann, exceptions.ActionRequest{Action: exceptions.ActComment, Items: []int64{id("I4")}, Note: "ask the customer"})

			// All or none: one item in the wrong state stops the lot.
			_, err = e.svc.Act(ann, exceptions.ActionRequest{Action: exceptions.ActResolve, Code: "bank fee", Items: []int64{id("I5"), id("I3")}})
			wantCode(t, err, kalla.ECONFLICT)
			if it, _ := e.st.GetException(ctx, id("I5")); it.Status != kalla.ExcOpen {
				t.Fatalf("I5 changed by a refused action: %+v", it)
			}
			_, err = e.svc.Act(ann, exceptions.ActionRequest{Action: exceptions.ActResolve, Items: []int64{id("I5")}})
			wantCode(t, err, kalla.EINVALID) // no code
			_, err = e.svc.Act(ann, exceptions.ActionRequest{Action: exceptions.ActResolve, Code: "lost", Items: []int64{id("I5")}})
			wantCode(t, err, kalla.EINVALID) // unknown code

			// Manual match, 1 left + 2 right, no difference: applied.
			res = act(t, e, ann, exceptions.ActionRequest{Action: exceptions.ActMatch, Items: []int64{id("I8"), id("P8a"), id("P8b")}})
			if res.Match == nil || res.Match.Left != "50.00" || res.Match.Right != "50.00" || res.Match.Difference != "0.00" || res.Action.Result != "applied" {
				t.Fatalf("match I8: %+v %+v", res.Action, res.Match)
			}
			// Beyond the tolerance (0.01) without a code: refused, with
			// the sums.
			_, err = e.svc.Act(ann, exceptions.ActionRequest{Action: exceptions.ActMatch, Items: []int64{id("I9"), id("P9")}})
			wantCode(t, err, kalla.EINVALID)
			if !strings.Contains(err.Error(), "-1.00") || !strings.Contains(err.Error(), "0.01") {
				t.Errorf("refusal does not give the difference and tolerance: %v", err)
			}
			// With a code: 2000 reaches the approval amount: pending.
			res = act(t, e, ann, exceptions.ActionRequest{Action: exceptions.ActMatch, Code: "bank fee", Items: []int64{id("I9"), id("P9")}})
			if res.Action.Result != "pending" || res.Items[0].Status != kalla.ExcPending {
				t.Fatalf("match I9: %+v", res.Items[0])
			}
			// A write-off of 1500: pending too; a bank fee of 100 is not.
			res = act(t, e, ann, exceptions.ActionRequest{Action: exceptions.ActResolve, Code: "write-off", Items: []int64{id("I7")}})
			if res.Action.Result != "pending" {
				t.Fatalf("write-off I7: %+v", res.Action)
			}
			act(t, e, ann, exceptions.ActionRequest{Action: exceptions.ActResolve, Code: "bank fee", Items: []int64{id("I5"), id("P5")}})

			// Four eyes: the preparer may not approve, even as approver.
			_, err = e.svc.Act(ann, exceptions.ActionRequest{Action: exceptions.ActApprove, Items: []int64{id("I7")}})
			wantCode(t, err, kalla.EFORBIDDEN) // a preparer cannot approve at all
			prep := act(t, e, bob, exceptions.ActionRequest{Action: exceptions.ActReopen, Items: []int64{id("I7")}})
			_ = prep
			act(t, e, bob, exceptions.ActionRequest{Action: exceptions.ActResolve, Code: "write-off", Items: []int64{id("I7")}})
			_, err = e.svc.Act(bob, exceptions.ActionRequest{Action: exceptions.ActApprove, Items: []int64{id("I7")}})
			wantCode(t, err, kalla.EFOUREYES)
			// Approving I9 approves its whole match (P9 too).
			act(t, e, cid, exceptions.ActionRequest{Action: exceptions.ActApprove, Items: []int64{id("I7"), id("I9")}})
			if it, _ := e.st.GetException(ctx, id("P9")); it.Status != kalla.ExcMatched || it.DecidedBy != "cid" {
				t.Fatalf("P9 after approving I9: %+v", it)
			}
			it, _ := e.st.GetException(ctx, id("I9"))
			if it.Status != kalla.ExcMatched || it.Code != "bank fee" || it.PreparedBy != "ann" || it.DecidedBy != "cid" || it.MatchGroup == "" {
				t.Fatalf("I9 after approval: %+v", it)
			}

			// The run's decisions add up.
			run, _ := e.st.GetRun(ctx, e.runID)
			sum, err := e.svc.Summary(ctx, run)
			if err != nil {
				t.Fatal(err)
			}
			if sum.MatchedByRule != 2 || sum.Accepted.Count != 1 || sum.MatchedByHand.Count != 5 || sum.MatchedByHand.Amounts["USD"] != "3999.00" ||
				sum.ResolvedBy["write-off"].Amounts["EUR"] != "1500.00" || sum.ResolvedBy["bank fee"].Count != 2 || sum.Pending.Count != 0 ||
				sum.Open["pair"].Count != 1 {
				t.Errorf("summary: %+v", sum)
			}
			// The sides apart (I9 2000.00 against P9 1999.00), and the
			// accepted pair I3/P3's difference: 97.00 - 100.00.
			if sum.MatchedByHand.Sides["left"]["USD"] != "2000.00" || sum.MatchedByHand.Sides["right"]["USD"] != "1999.00" ||
				sum.Accepted.Differences[""] != "-3.00" || sum.Accepted.Sides["right"][""] != "97.00" {
				t.Errorf("summary sides and differences: matched by hand %+v, accepted %+v", sum.MatchedByHand, sum.Accepted)
			}

			// History of one item, oldest first.
			d, err := e.svc.Get(ctx, id("I4"))
			if err != nil || len(d.History) != 3 || d.History[2].Note != "ask the customer" {
				t.Fatalf("I4 history: %+v %v", d, err)
			}

			v, err := e.svc.Verify(ctx)
			if err != nil || !v.OK {
				t.Fatalf("verify after the day: %+v %v", v, err)
			}
			entries := v.Entries
			if entries < 15 {
				t.Fatalf("only %d audit entries after the day", entries)
			}

			// Behind Kalla's back: the triggers refuse a plain edit.
			tamper := opener(t, e.url)
			if err := tamper("UPDATE audit_log SET note = 'x' WHERE seq = 3"); err == nil {
				t.Fatal("the audit log accepted an UPDATE")
			}
			// A determined editor drops the guard first.
			must(t, tamper(dropGuard(b.name)))
			must(t, tamper("UPDATE audit_log SET actor = 'mallory' WHERE seq = 5"))
			v, _ = e.svc.Verify(ctx)
			if v.OK || v.FirstBad != 5 || v.Problem != "changed" {
				t.Fatalf("edited entry 5: %+v", v)
			}
			must(t, tamper("UPDATE audit_log SET actor = 'lead' WHERE seq = 5"))
			must(t, tamper("DELETE FROM audit_log WHERE seq = 4"))
			v, _ = e.svc.Verify(ctx)
			if v.OK || v.FirstBad != 4 || v.Problem != "removed" {
				t.Fatalf("deleted entry 4: %+v", v)
			}
			must(t, tamper("DELETE FROM audit_log WHERE seq >= 4"))
			v, _ = e.svc.Verify(ctx)
			if v.OK || v.FirstBad != 4 || v.Problem != "removed" {
				t.Fatalf("cut the log after 3: %+v", v)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func dropGuard(backend string) string {
	if backend == "postgres" {
		return "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change"
	}
	return "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete"
}

// opener returns a function running SQL on the store's database directly.
func opener(t *testing.T, url string) func(string) error {
	t.Helper()
	if strings.HasPrefix(url, "postgres") {
		return func(q string) error {
			conn, err := pgx.Connect(context.Background(), url)
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			_, err = conn.Exec(context.Background(), q)
			return err
		}
	}
	return func(q string) error {
		// busy_timeout: wait for a store connection's lock, as the store does.
		db, err := sql.Open("sqlite", strings.TrimPrefix(url, "sqlite://")+"?_pragma=busy_timeout(5000)")
		if err != nil {
			return err
		}
		defer db.Close()
		_, err = db.Exec(q)
		return err
	}
}
