// Learn a rule from manual matches, on a completed run's page. "Learn"
// asks POST /api/recipes/{id}/learn?run_id= for a proposal (nothing is
// saved) and shows it: the change in words, what the new rules would have
// matched on this run, and the recipe before and after as a line diff.
// "Accept" (admins) sends the proposal's ID to .../learn/accept, which
// saves only if the proposal is still the one shown; a 409 means it
// changed, and the new one is shown for review.
import { api, el, showError, clearError, busy } from "./app.js";

const root = document.getElementById("learn");

/** lineDiff compares two texts line by line (longest common subsequence). */
function lineDiff(a, b) {
  const x = a.split("\n"), y = b.split("\n");
  const n = x.length, m = y.length;
  const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
    }
  }
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) { out.push([" ", x[i]]); i++; j++; }
    else if (j < m && (i === n || L[i][j + 1] >= L[i + 1][j])) { out.push(["+", y[j]]); j++; }
    else { out.push(["-", x[i]]); i++; }
  }
  return out;
}

/**
 * folded keeps the changed lines of a diff and three unchanged lines
 * around each; a longer unchanged stretch becomes one "… N unchanged
 * lines" line, so the change is on screen without scrolling.
 */
function folded(diff, context = 3) {
  const near = diff.map(() => false);
  diff.forEach(([op], i) => {
    if (op === " ") return;
    for (let j = Math.max(0, i - context); j <= Math.min(diff.length - 1, i + context); j++) near[j] = true;
  });
  const out = [];
  for (let i = 0; i < diff.length;) {
    if (near[i]) { out.push(diff[i++]); continue; }
    let j = i;
    while (j < diff.length && !near[j]) j++;
    out.push(["…", `${j - i} unchanged ${j - i === 1 ? "line" : "lines"}`]);
    i = j;
  }
  return out;
}

const effects = {
  match: "would match (both records open)",
  confirms: "repeats a person's manual match",
  conflict: "takes a record a person decided otherwise",
};

function learnPanel() {
  const recipe = root.dataset.recipe, run = root.dataset.run;
  const status = document.getElementById("learn-status");
  const errBox = document.getElementById("learn-error");
  const panel = document.getElementById("learn-proposal");
  const actorField = document.getElementById("learn-actor");
  if (!document.body.dataset.role) {
    root.querySelector(".actor-field").hidden = false;
    actorField.value = localStorage.getItem("kalla-actor") || "";
  }
  let proposal = null;

  function show(p) {
    proposal = p;
    const words = document.getElementById("learn-words");
    words.replaceChildren(...p.diff.map((line) => el("li", { class: line.startsWith("+") ? "add" : null }, line)));
    const im = p.impact;
    document.getElementById("learn-impact").textContent =
      `Learned from ${p.examples.length} manual ${p.examples.length === 1 ? "match" : "matches"}. On run ${p.run_id} the new rules would match ` +
      `${im.would_match} ${im.would_match === 1 ? "pair" : "pairs"} of still-open records (of ${im.open_left} open left and ${im.open_right} open right), ` +
      `repeat ${im.confirms} of people's matches and take ${im.conflicts} ${im.conflicts === 1 ? "record" : "records"} decided otherwise. ` +
      `The recipe's own rules run first, so their ${im.rule_matches} ${im.rule_matches === 1 ? "pair stays" : "pairs stay"} as ${im.rule_matches === 1 ? "it is" : "they are"}.`;
    const body = document.querySelector("#learn-pairs tbody");
    body.replaceChildren(...(im.pairs.length ? im.pairs.map((pp) => el("tr", { "data-effect": pp.effect },
      el("td", {}, pp.left), el("td", {}, pp.right), el("td", {}, pp.rule), el("td", {}, effects[pp.effect] || pp.effect, pp.note ? " · " + pp.note : "")))
      : [el("tr", {}, el("td", { colspan: 4, class: "empty" }, "The new rules would match nothing on this run."))]));
    const diff = folded(lineDiff(JSON.stringify(p.before, null, 2), JSON.stringify(p.after, null, 2)));
    document.getElementById("learn-recipe").replaceChildren(...diff.map(([op, line]) =>
      el("span", { class: op === "+" ? "add" : op === "-" ? "del" : op === "…" ? "muted" : null }, op + " " + line + "\n")));
    document.getElementById("learn-notes").replaceChildren(...p.notes.map((n) => el("li", {}, n)));
    panel.hidden = false;
  }

  async function propose() {
    clearError(errBox);
    status.textContent = "Learning from the manual matches…";
    try {
      const p = await api("POST", `/api/recipes/${encodeURIComponent(recipe)}/learn?run_id=${encodeURIComponent(run)}`);
      show(p);
      status.textContent = `Proposal ${p.id}: ${p.new_rules.length} new ${p.new_rules.length === 1 ? "rule" : "rules"} for recipe ${p.recipe_id}. Not saved yet.`;
      return p;
    } catch (e) {
      panel.hidden = true;
      proposal = null;
      status.textContent = "";
      showError(errBox, e.code === "invalid" ? "No rule can be learned: " + e.message : e.message);
      return null;
    }
  }

  const learnBtn = document.getElementById("learn-btn");
  learnBtn.addEventListener("click", () => busy(learnBtn, "Learning…", propose));

  const accept = document.getElementById("learn-accept");
  accept.addEventListener("click", () => busy(accept, "Saving…", async () => {
    if (!proposal) return;
    clearError(errBox);
    const body = { run_id: run, proposal: proposal.id };
    if (!document.body.dataset.role) {
      body.actor = actorField.value.trim() || undefined;
      if (body.actor) localStorage.setItem("kalla-actor", body.actor);
    }
    try {
      const res = await api("POST", `/api/recipes/${encodeURIComponent(recipe)}/learn/accept`, body);
      const names = res.proposal.after.rules.map((r) => r.name).join(", ");
      panel.hidden = true;
      proposal = null;
      status.textContent = `Saved: recipe ${res.proposal.recipe_id} now has the rules ${names} (audit entry ${res.audit.seq}). Its next run uses them.`;
    } catch (e) {
      if (e.code === "conflict") {
        const shown = proposal.id;
        const p = await propose();
        const text = `The proposal changed since it was shown (someone matched records by hand or edited the recipe meanwhile), so nothing was saved.` +
          (p ? ` The new proposal is shown below: review it, then accept again.` : "") + ` (Was ${shown}. The server said: ${e.message})`;
        showError(errBox, text);
        return;
      }
      showError(errBox, e.message);
    }
  }));
}

if (root) learnPanel();
