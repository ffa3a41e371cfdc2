// Recipe builder. Pick a registered source per side (or keep the side as
// the saved recipe has it), see both schemas with sample values, get
// suggested column pairs from the server, write the match SQL, then
// validate, preview the match on samples, and save. URIs are only ever the
// redacted ones the server rendered: the API restores the real ones.
import { api, el, table, showError, clearError, fmtInt, fmtPct, busy, quoteIdent } from "./app.js";
import { FilterBar, filtersJSON, attributeErrors, humanize } from "./chips.js";
import { RuleForm, defaultCondition } from "./rules.js";

const data = JSON.parse(document.getElementById("builder-data").textContent);
const form = document.getElementById("builder");
const errBox = document.getElementById("builder-error");
const sqlBox = document.getElementById("r-sql");
const rulesBox = document.getElementById("r-rules");
const SAMPLE = 200;
let lastGenerated = null;
let stored = data.recipe; // the recipe as saved, null for a new one

/** Side is one side of the recipe in the builder. */
class Side {
  constructor(name) {
    this.name = name;
    this.root = form.querySelector(`fieldset[data-side="${name}"]`);
    this.select = this.root.querySelector(".source-select");
    this.alias = this.root.querySelector(".alias");
    this.uri = this.root.querySelector(".side-uri");
    this.box = this.root.querySelector(".alert");
    this.summary = this.root.querySelector(".side-summary");
    this.saved = stored ? stored.sources[name] : null;
    this.source = null; // the registered source picked, or null
    this.columns = [];
    this.rows = [];
    this.pk = new Set(this.saved ? this.saved.primary_key : []);
    this.aliasTouched = !!this.saved;
    this.seq = 0;
    this.bar = new FilterBar({
      list: this.root.querySelector(".chips"),
      column: this.root.querySelector(".f-column"),
      op: this.root.querySelector(".f-op"),
      value: this.root.querySelector(".f-value"),
      value2: this.root.querySelector(".f-value2"),
      add: this.root.querySelector(".f-add"),
    }, () => { markStale(); this.load(); });
    if (data.filters && data.filters[name]) this.bar.set(data.filters[name]);
    this.alias.addEventListener("input", () => { this.aliasTouched = true; explainAliases(); });
    this.select.addEventListener("change", () => { markStale(); this.pick(); });
    this.fillSelect();
  }

  fillSelect() {
    const opts = [el("option", { value: "" }, "Choose a source…")];
    let match = null;
    for (const s of data.sources) {
      opts.push(el("option", { value: "src:" + s.Alias }, `${s.Alias} (${s.Type})`));
      if (this.saved && s.URI === this.saved.uri && !match) match = s.Alias;
    }
    if (this.saved && !match) opts.push(el("option", { value: "saved" }, `${this.saved.alias}, as saved in the recipe`));
    this.select.replaceChildren(...opts);
    const pre = this.name === "left" ? data.left : data.right;
    if (this.saved) this.select.value = match ? "src:" + match : "saved";
    else if (pre && data.sources.some((s) => s.Alias === pre)) this.select.value = "src:" + pre;
    if (this.saved) this.alias.value = this.saved.alias;
  }

  /** pick reacts to a new choice of source. */
  pick() {
    const v = this.select.value;
    this.source = v.startsWith("src:") ? data.sources.find((s) => s.Alias === v.slice(4)) : null;
    if (this.source && !this.aliasTouched) {
      let a = this.source.Alias;
      const other = this.name === "left" ? sides.right : sides.left;
      if (other && other.alias.value === a) a += "_2";
      this.alias.value = a;
    }
    if (!this.saved || v !== "saved") {
      // A new source: its key is chosen again from its columns.
      if (this.loadedFor && this.loadedFor !== v) this.pk.clear();
    }
    explainAliases();
    this.load();
  }

  /** load fetches the side's columns and a sample under its filters. */
  async load() {
    const mine = ++this.seq;
    clearError(this.box);
    this.bar.setErrors(new Map());
    const v = this.select.value;
    if (!v) {
      this.columns = [];
      this.rows = [];
      this.uri.textContent = "";
      this.summary.textContent = "";
      this.render();
      suggest();
      return;
    }
    this.summary.textContent = "Loading…";
    try {
      if (this.source) {
        this.uri.textContent = this.source.URI;
        const r = await api("POST", `/api/sources/${encodeURIComponent(this.source.Alias)}/load-scoped`,
          '{"conditions":' + filtersJSON(this.bar.chips) + ',"limit":' + SAMPLE + "}");
        if (mine !== this.seq) return;
        this.columns = r.columns;
        this.rows = r.rows;
        this.summary.textContent = `${r.total_kind === "at_least" ? "at least " : ""}${fmtInt(r.total_rows)} rows${this.bar.chips.length ? " in scope" : ""}; ${fmtInt(r.preview_rows)} sampled.`;
      } else {
        // A side as saved: its columns come from checking the recipe.
        this.uri.textContent = this.saved.uri;
        const chk = await api("POST", "/api/recipes/validate", recipeJSON());
        if (mine !== this.seq) return;
        this.columns = (this.name === "left" ? chk.left_columns : chk.right_columns) || [];
        this.rows = [];
        this.summary.textContent = this.columns.length ? "Columns from the saved recipe's source (no sample values)." : "";
        if (!this.columns.length && chk.problems.length) showError(this.box, chk.problems.join("\n"));
      }
      this.loadedFor = v;
      if (this.pk.size === 0) this.guessKey();
      this.bar.setColumns(this.columns);
      this.render();
      fillExamples();
      if (ruleForm) ruleForm.render();
      suggest();
    } catch (e) {
      if (mine !== this.seq) return;
      this.summary.textContent = "";
      // A filter the source refuses: say so next to its chip.
      if (e.status === 400 && this.source && this.bar.chips.length) {
        const errors = await attributeErrors(this.bar.chips, e.message, (f) => this.probe(f));
        if (mine !== this.seq) return;
        if (errors.size > 0) {
          this.bar.setErrors(errors);
          return;
        }
      }
      showError(this.box, humanize(e.message, this.bar.chips));
    }
  }

  /** probe asks the server about one filter alone: its message, or null. */
  async probe(f) {
    try {
      await api("POST", `/api/sources/${encodeURIComponent(this.source.Alias)}/load-scoped`, '{"conditions":' + filtersJSON([f]) + ',"limit":0}');
      return null;
    } catch (e) {
      return e.message;
    }
  }

  guessKey() {
    const c = this.columns.find((c) => /(^|_)id$/i.test(c.name)) || this.columns[0];
    if (c) this.pk.add(c.name);
  }

  /** render draws the schema table with key boxes and sample values. */
  render() {
    const samples = this.columns.map((_, i) => {
      const seen = [];
      for (const r of this.rows) {
        const v = r[i];
        if (v !== null && v !== "" && !seen.includes(v)) seen.push(v);
        if (seen.length === 3) break;
      }
      return seen;
    });
    const body = this.columns.map((c, i) => {
      const id = `${this.name}-key-${i}`;
      const box = el("input", { type: "checkbox", id, checked: this.pk.has(c.name) });
      box.addEventListener("change", () => { if (box.checked) this.pk.add(c.name); else this.pk.delete(c.name); markStale(); });
      return el("tr", {},
        el("td", {}, box, el("label", { for: id, class: "sr-only" }, `${c.name} is part of the ${this.name} primary key`)),
        el("td", {}, el("label", { for: id }, c.name)),
        el("td", { class: "mono" }, c.data_type),
        el("td", { class: "samples" }, samples[i].join(" · ")));
    });
    this.root.querySelector(".schema tbody").replaceChildren(...body);
  }

  /** spec is the side as the recipe holds it; filters are filled in by recipeJSON. */
  spec() {
    // The saved side keeps what the builder does not edit (schema
    // overrides, CSV settings) while it names the same source.
    const same = this.saved && (this.select.value === "saved" || (this.source && this.source.URI === this.saved.uri));
    const s = same ? structuredClone(this.saved) : {};
    if (this.source) {
      s.uri = this.source.URI;
      s.type = this.source.Type;
    }
    s.alias = this.alias.value.trim();
    s.primary_key = this.columns.length ? this.columns.filter((c) => this.pk.has(c.name)).map((c) => c.name) : [...this.pk];
    s.filters = "\u0000filters-" + this.name;
    return s;
  }
}

const sides = {};
sides.left = new Side("left");
sides.right = new Side("right");

/** explainAliases shows the sides' aliases in the SQL explanation. */
function explainAliases() {
  for (const n of ["left", "right"]) {
    const a = sides[n] && sides[n].alias.value.trim();
    for (const c of document.querySelectorAll(".alias-" + n)) c.textContent = a || n + " alias";
  }
}

// Match by SQL or by structured rules.
function mode() {
  return document.getElementById("mode-rules").checked ? "rules" : "sql";
}

function showMode() {
  document.getElementById("sql-panel").hidden = mode() !== "sql";
  document.getElementById("rules-panel").hidden = mode() !== "rules";
}

for (const r of form.querySelectorAll('input[name="mode"]')) r.addEventListener("change", () => { showMode(); markStale(); });
if (rulesBox.value.trim()) document.getElementById("mode-rules").checked = true;
showMode();

// The rules, built with form controls and kept in step with their JSON.
const ruleForm = new RuleForm(document.getElementById("rule-form"), rulesBox,
  () => ({ left: sides.left.columns, right: sides.right.columns }), () => markStale());
ruleForm.render();
document.getElementById("add-pass").addEventListener("click", () => {
  const use = pairs.filter((p) => p.use);
  const conds = use.length ? use.map(conditionFor) : [];
  ruleForm.add(`pass-${ruleForm.rules.length + 1}`, conds);
  const name = document.getElementById(`rule-${ruleForm.rules.length - 1}-name`);
  if (name) name.focus();
});
sqlBox.addEventListener("input", markStale);

// A preview (or a check) shown after the match changed is out of date:
// it is marked so at once, not left on screen as if it held.
function markStale() {
  const pv = document.getElementById("preview-result");
  const note = document.getElementById("preview-stale");
  if (pv && pv.childElementCount) {
    pv.classList.add("stale");
    pv.setAttribute("aria-describedby", "preview-stale");
    note.hidden = false;
  }
  const chk = document.getElementById("check-result");
  if (chk) chk.replaceChildren();
}

/**
 * recipeJSON is the recipe as the form holds it, filters with their exact
 * numbers. Rules that are not valid JSON throw, with the parser's message.
 */
function recipeJSON() {
  const r = {
    recipe_id: form.recipe_id.value.trim(),
    name: form.name.value.trim(),
    description: form.description.value.trim(),
    match_sql: sqlBox.value,
    match_description: form.match_description.value.trim(),
    sources: { left: sides.left.spec(), right: sides.right.spec() },
  };
  if (mode() === "rules") {
    delete r.match_sql;
    r.rules = ruleForm.value();
  }
  if (!r.name) delete r.name;
  if (!r.description) delete r.description;
  if (!r.match_description) delete r.match_description;
  return JSON.stringify(r)
    .replace('"\\u0000filters-left"', filtersJSON(sides.left.bar.chips))
    .replace('"\\u0000filters-right"', filtersJSON(sides.right.bar.chips));
}

// Suggestions come from Kalla's recipe suggester, over the whole sides.
const pairsBox = document.getElementById("pairs");
const pairsErr = document.getElementById("pairs-error");
const notesBox = document.getElementById("suggest-notes");
let pairs = [];
let suggested = null; // the suggested recipe
let examples = []; // [left key, right key] pairs the user knows
let suggestSeq = 0;

/** sidesBody is the two sides as the suggester takes them, filters exact. */
function sidesBody(withExamples) {
  const body = { left: sides.left.spec(), right: sides.right.spec() };
  if (stored) body.recipe_id = stored.recipe_id;
  const key = (s) => (s.columns.length ? s.columns.filter((c) => s.pk.has(c.name)).map((c) => c.name) : [...s.pk]);
  const lk = key(sides.left), rk = key(sides.right);
  if (lk.length === 1) body.left_key = lk[0];
  if (rk.length === 1) body.right_key = rk[0];
  if (withExamples && examples.length) body.pairs = examples;
  return JSON.stringify(body)
    .replace('"\\u0000filters-left"', filtersJSON(sides.left.bar.chips))
    .replace('"\\u0000filters-right"', filtersJSON(sides.right.bar.chips));
}

async function suggest(withExamples) {
  const l = sides.left, r = sides.right;
  if (!l || !r || !l.columns.length || !r.columns.length) return;
  const mine = ++suggestSeq;
  clearError(pairsErr);
  pairsBox.setAttribute("aria-busy", "true");
  try {
    const res = await api("POST", "/api/recipes/suggest", sidesBody(withExamples));
    if (mine !== suggestSeq) return;
    pairs = res.pairings;
    suggested = res.recipe;
    notesBox.replaceChildren(...res.notes.map((n) => el("li", {}, n)));
    renderPairs();
  } catch (e) {
    if (mine !== suggestSeq) return;
    pairs = [];
    suggested = null;
    renderPairs();
    showError(pairsErr, e);
  } finally {
    if (mine === suggestSeq) pairsBox.removeAttribute("aria-busy");
  }
}

function renderPairs() {
  if (!pairs.length) {
    pairsBox.replaceChildren(el("p", { class: "muted" }, "No column pairs stand out. Build the rules yourself below."));
    return;
  }
  const la = sides.left.alias.value || "left", ra = sides.right.alias.value || "right";
  const top = Math.max(...pairs.map((p) => p.score), 1);
  const rows = pairs.map((p, i) => {
    const id = "pair-" + i;
    p.use = !!p.used;
    const box = el("input", { type: "checkbox", id, checked: p.use });
    box.addEventListener("change", () => { p.use = box.checked; });
    const tags = [p.key ? el("span", { class: "tag tag-key" }, "refers to the key") : null,
      p.category ? el("span", { class: "tag tag-cat" }, "category") : null];
    return el("tr", { "data-pair": `${p.left}~${p.right}` },
      el("td", {}, box, el("label", { for: id, class: "sr-only" }, `Match ${la}.${p.left} with ${ra}.${p.right}`)),
      el("td", { class: "mono" }, el("label", { for: id }, p.left)),
      el("td", { class: "mono" }, p.right),
      el("td", {}, p.kind),
      el("td", { class: "num" }, el("meter", { min: 0, max: top, value: p.score, "aria-label": "score" }), " ", p.score.toFixed(2)),
      el("td", {}, tags, " ", p.evidence));
  });
  pairsBox.replaceChildren(el("div", { class: "scroll" }, el("table", { class: "grid compact pairs" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Use"), el("th", { scope: "col" }, `Left (${la})`),
      el("th", { scope: "col" }, `Right (${ra})`), el("th", { scope: "col" }, "Kind"), el("th", { scope: "col", class: "num" }, "Score"), el("th", { scope: "col" }, "Evidence"))),
    el("tbody", {}, rows))));
}

document.getElementById("suggest").addEventListener("click", () => {
  if (!sides.left.columns.length || !sides.right.columns.length) {
    showError(pairsErr, "Pick both sources first: suggestions compare their columns and data.");
    return;
  }
  suggest(true);
});

/**
 * conditionFor is the condition a ticked pair stands for: as the suggested
 * rules compare it when they do (the tolerance and window learnt from the
 * data), else by the columns' types (amounts within 2 %, dates within 7 days).
 */
function conditionFor(p) {
  if (suggested && suggested.rules) {
    // A tolerance or a date window learnt from the data wins over an
    // exact comparison of the same columns.
    let found = null;
    for (const r of suggested.rules) {
      for (const c of r.conditions) {
        if (c.left !== p.left || c.right !== p.right) continue;
        if (c.op === "tolerance" || c.op === "date_within") return structuredClone(c);
        if (!found) found = c;
      }
    }
    if (found && !(found.op === "eq" && p.kind !== "text")) return structuredClone(found);
  }
  const lt = (sides.left.columns.find((c) => c.name === p.left) || {}).data_type;
  const rt = (sides.right.columns.find((c) => c.name === p.right) || {}).data_type;
  return defaultCondition(p.left, p.right, lt, rt);
}

// Known pairs: picked from the sides' key values.
const exLeft = document.getElementById("ex-left"), exRight = document.getElementById("ex-right");
const exList = document.getElementById("ex-list");

function keyValues(s) {
  const key = [...s.pk][0];
  const i = s.columns.findIndex((c) => c.name === key);
  if (i < 0) return [];
  return [...new Set(s.rows.map((r) => r[i]).filter((v) => v !== null && v !== ""))];
}

function fillExamples() {
  for (const [box, s] of [[exLeft, sides.left], [exRight, sides.right]]) {
    if (!s) continue;
    const keep = box.value;
    box.replaceChildren(el("option", { value: "" }, "Choose…"), ...keyValues(s).map((v) => el("option", { value: v }, v)));
    box.value = keep;
  }
}

function renderExamples() {
  exList.replaceChildren(...examples.map(([l, r], i) => {
    const rm = el("button", { type: "button", class: "chip-x", "aria-label": `Remove pair ${l} with ${r}` }, "×");
    rm.addEventListener("click", () => { examples.splice(i, 1); renderExamples(); exLeft.focus(); });
    return el("li", { class: "chip" }, `${l} ↔ ${r} `, rm);
  }));
}

document.getElementById("ex-add").addEventListener("click", () => {
  clearError(pairsErr);
  if (!exLeft.value || !exRight.value) {
    showError(pairsErr, "Choose a left record and a right record that belong together.");
    (exLeft.value ? exRight : exLeft).focus();
    return;
  }
  if (!examples.some(([l, r]) => l === exLeft.value && r === exRight.value)) examples.push([exLeft.value, exRight.value]);
  renderExamples();
  exRight.value = "";
  exLeft.focus();
});

document.getElementById("ex-suggest").addEventListener("click", () => {
  if (!examples.length) {
    showError(pairsErr, "Add at least one pair you know first.");
    exLeft.focus();
    return;
  }
  suggest(true);
});

document.getElementById("use-suggested").addEventListener("click", () => {
  clearError(pairsErr);
  if (!suggested || !suggested.rules || !suggested.rules.length) {
    showError(pairsErr, "There are no suggested rules yet: pick both sources, or add pairs you know.");
    return;
  }
  if (ruleForm.rules.length && !confirm("Replace the rules you have with the suggested ones?")) return;
  ruleForm.set(suggested.rules.map((r) => { const c = structuredClone(r); delete c.evidence; return c; }));
  document.getElementById("mode-rules").checked = true;
  showMode();
  markStale();
  const first = document.getElementById("rule-0-name");
  if (first) first.focus();
});

document.getElementById("write-sql").addEventListener("click", () => {
  clearError(pairsErr);
  const use = pairs.filter((p) => p.use);
  if (!use.length) {
    showError(pairsErr, "Tick at least one pair to match on.");
    return;
  }
  if (sqlBox.value.trim() && sqlBox.value !== lastGenerated && !confirm("Replace the match SQL you wrote?")) return;
  const keys = [...sides.left.pk].map((k) => "l." + quoteIdent(k)).concat([...sides.right.pk].map((k) => "r." + quoteIdent(k)));
  const on = use.map((p) => {
    const c = conditionFor(p);
    const l = "l." + quoteIdent(p.left), r = "r." + quoteIdent(p.right);
    if (c.op === "tolerance" && c.pct !== undefined) return `abs(${l} - ${r}) <= ${c.pct} * abs(${l})`;
    if (c.op === "tolerance") return `tolerance_match(${l}, ${r}, ${c.abs})`;
    if (c.op === "date_within") return `abs(date_diff('day', ${l}, ${r})) <= ${c.days}`;
    return `${l} = ${r}`;
  });
  sqlBox.value = `SELECT ${keys.length ? keys.join(", ") : "*"}\nFROM left_src l\nJOIN right_src r\n  ON ${on.join("\n AND ")}`;
  lastGenerated = sqlBox.value;
  document.getElementById("mode-sql").checked = true;
  showMode();
  markStale();
  sqlBox.focus();
});

document.getElementById("write-rules").addEventListener("click", () => {
  clearError(pairsErr);
  const use = pairs.filter((p) => p.use);
  if (!use.length) {
    showError(pairsErr, "Tick at least one pair to match on.");
    return;
  }
  if (ruleForm.rules.length && !confirm("Replace the rules you have?")) return;
  ruleForm.set([{ name: "exact", conditions: use.map(conditionFor) }]);
  document.getElementById("mode-rules").checked = true;
  showMode();
  markStale();
  const first = document.getElementById("rule-0-name");
  if (first) first.focus();
});

// Validate, preview, save.
const checkBox = document.getElementById("check-result");
const previewBox = document.getElementById("preview-result");

document.getElementById("validate").addEventListener("click", (e) => busy(e.currentTarget, "Validating…", async () => {
  clearError(errBox);
  checkBox.replaceChildren();
  try {
    const chk = await api("POST", "/api/recipes/validate", recipeJSON());
    showProblems(chk, "The recipe would not run:");
  } catch (err) {
    showError(errBox, err);
  }
}));

document.getElementById("preview-match").addEventListener("click", (e) => busy(e.currentTarget, "Running on samples…", async () => {
  clearError(errBox);
  previewBox.replaceChildren();
  const limit = Number(document.getElementById("sample").value) || SAMPLE;
  try {
    const p = await api("POST", "/api/recipes/preview", '{"recipe":' + recipeJSON() + ',"limit":' + limit + "}");
    renderPreview(p);
  } catch (err) {
    showError(errBox, err);
  }
}));

/** showProblems shows a check's outcome: problems, warnings, or that it would run. */
function showProblems(chk, heading) {
  const parts = [];
  if (!chk.ok) {
    parts.push(el("div", { class: "alert", role: "alert" },
      el("p", {}, heading), el("ul", {}, chk.problems.map((p) => el("li", { class: "pre" }, p)))));
  } else {
    const cols = (chk.output_columns || []).map((c) => c.name).join(", ");
    parts.push(el("div", { class: "ok", role: "status" }, "The recipe would run. ", cols ? `Its SQL returns: ${cols}.` : ""));
  }
  if (chk.warnings && chk.warnings.length) {
    parts.push(el("div", { class: "warn", role: "alert" }, el("p", {}, "Warning:"), el("ul", {}, chk.warnings.map((w) => el("li", {}, w)))));
  }
  checkBox.replaceChildren(...parts);
  if (!chk.ok) (mode() === "sql" ? sqlBox : document.getElementById("rule-0-name") || document.getElementById("add-pass")).focus();
}

// Kalla's own columns of a preview, as the run page words them.
const PAIR_META = { _rule: "Rule", _score: "Score", _status: "Status", _reason: "Reason", _closest_candidate: "Closest candidate" };

/**
 * readablePairs lays out a preview's matched pairs as the run page does:
 * row numbers (_left_row, _right_row) are not data and are left out, a
 * key Kalla copies (_left_invoice_id) is shown once, as its field, and
 * the rule, score and status are named in words; a side's fields keep
 * their names, followed by the source they come from.
 */
function readablePairs(page, la, ra) {
  const names = new Set(page.columns.map((c) => c.name));
  const keep = [];
  page.columns.forEach((c, i) => {
    if (c.name === "_left_row" || c.name === "_right_row") return;
    let label = PAIR_META[c.name] || c.name;
    // A rules recipe's compared fields come as left_<field>, right_<field>.
    const m = /^_?(left|right)_(.+)$/.exec(c.name);
    if (m && !PAIR_META[c.name] && (c.name.startsWith("_") || sides[m[1]].columns.some((x) => x.name === m[2]))) {
      // A key copy is dropped when the pair shows the field already.
      if (c.name.startsWith("_") && (names.has(m[2]) || names.has(m[1] + "_" + m[2]))) return;
      label = `${m[2]} (${m[1] === "left" ? la : ra})`;
    }
    keep.push({ i, col: { ...c, label } });
  });
  return { columns: keep.map((k) => k.col), rows: page.rows.map((r) => keep.map((k) => r[k.i])) };
}

function renderPreview(p) {
  previewBox.classList.remove("stale");
  previewBox.removeAttribute("aria-describedby");
  document.getElementById("preview-stale").hidden = true;
  const la = sides.left.alias.value, ra = sides.right.alias.value;
  const rate = (n, d) => (d ? fmtPct(n / d) : "—");
  const tabs = [
    ["matched", `Matched pairs`, p.matched_count, p.matched],
    ["unmatched_left", `Unmatched ${la}`, p.unmatched_left_count, p.unmatched_left],
    ["unmatched_right", `Unmatched ${ra}`, p.unmatched_right_count, p.unmatched_right],
  ];
  const panel = el("div", { role: "tabpanel", id: "pv-panel", tabindex: "0" });
  const buttons = tabs.map(([key, label, n, page], i) => {
    const b = el("button", { type: "button", role: "tab", id: "pv-tab-" + key, "aria-controls": "pv-panel", "aria-selected": i === 0 ? "true" : "false", tabindex: i === 0 ? "0" : "-1" },
      label + " ", el("span", { class: "count" }, fmtInt(n)));
    b.addEventListener("click", () => show(i, false));
    b.addEventListener("keydown", (e) => {
      const j = e.key === "ArrowRight" ? (i + 1) % 3 : e.key === "ArrowLeft" ? (i + 2) % 3 : null;
      if (j !== null) { e.preventDefault(); show(j, true); }
    });
    return b;
  });
  function show(i, focus) {
    buttons.forEach((b, j) => { b.setAttribute("aria-selected", i === j ? "true" : "false"); b.tabIndex = i === j ? 0 : -1; });
    panel.setAttribute("aria-labelledby", buttons[i].id);
    const [key, , n, page] = tabs[i];
    panel.replaceChildren(
      el("p", { class: "muted small" }, n > page.rows.length ? `First ${fmtInt(page.rows.length)} of ${fmtInt(n)}.` : ""),
      el("div", { class: "scroll" }, (() => {
        const shown = key === "matched" ? readablePairs(page, la, ra) : { ...page, columns: page.columns.map((c) => ({ ...c, label: PAIR_META[c.name] || c.name })) };
        return table(shown.columns, shown.rows, { group: true });
      })()));
    if (focus) buttons[i].focus();
  }
  // A side's total is exact or a lower bound, as for a source preview.
  function sideOf(side) {
    return `${fmtInt(side.staged)} of ${side.total_kind === "at_least" ? "at least " : ""}${fmtInt(side.total)}`;
  }
  const warn = p.warnings.length ? el("ul", { class: "warnings" }, p.warnings.map((w) => el("li", {}, w.message))) : null;
  previewBox.replaceChildren(...[
    el("h3", {}, "Preview on samples"),
    el("dl", { class: "counts" },
      el("div", {}, el("dt", {}, `Left sample (${la})`), el("dd", { id: "pv-left-total", "data-kind": p.left.total_kind }, sideOf(p.left))),
      el("div", {}, el("dt", {}, `Right sample (${ra})`), el("dd", { id: "pv-right-total", "data-kind": p.right.total_kind }, sideOf(p.right))),
      el("div", {}, el("dt", {}, "Matched pairs"), el("dd", { id: "pv-matched" }, fmtInt(p.matched_count))),
      el("div", {}, el("dt", {}, "Left matched"), el("dd", {}, `${fmtInt(p.matched_left_records)} (${rate(p.matched_left_records, p.left.staged)})`)),
      el("div", {}, el("dt", {}, "Right matched"), el("dd", {}, `${fmtInt(p.matched_right_records)} (${rate(p.matched_right_records, p.right.staged)})`))),
    el("p", { class: "help" }, "This ran the recipe for real on the first rows of each side. A record unmatched here may have its partner outside the sample; scope both sides alike (filters above) for a closer look."),
    warn,
    el("div", { role: "tablist", class: "tabs", "aria-label": "Preview results" }, buttons),
    panel].filter(Boolean));
  show(0, false);
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  clearError(errBox);
  const saved = document.getElementById("saved");
  saved.textContent = "";
  const id = form.recipe_id.value.trim();
  await busy(document.getElementById("save"), "Saving…", async () => {
    try {
      if (!id) {
        form.recipe_id.focus();
        throw new Error("Give the recipe an ID before saving it.");
      }
      const body = recipeJSON();
      // A recipe that cannot run is not saved: check it first, and say
      // what is wrong in the server's own words.
      const chk = await api("POST", "/api/recipes/validate", body);
      if (!chk.ok) {
        showProblems(chk, "The recipe was not saved: it would not run.");
        return;
      }
      if (chk.warnings && chk.warnings.length) {
        showProblems(chk, null);
        if (!confirm("Save anyway? " + chk.warnings.join(" "))) return;
      }
      if (stored && stored.recipe_id === id) await api("PUT", `/api/recipes/${encodeURIComponent(id)}`, body);
      else await api("POST", "/api/recipes", body);
      stored = JSON.parse(body);
      history.replaceState(null, "", "/recipes/" + encodeURIComponent(id));
      saved.replaceChildren(`Saved recipe “${id}”. `, el("a", { href: `/runs?start=${encodeURIComponent(id)}#start` }, "Start a run"));
    } catch (err) {
      if (err.code === "conflict") {
        showError(errBox, `A recipe named “${id}” exists already. Choose another recipe ID, or open “${id}” from the Recipes page to change it.`);
        form.recipe_id.setAttribute("aria-invalid", "true");
        form.recipe_id.focus();
        return;
      }
      if (err.code === "invalid" && err.message.startsWith("recipe_id ")) {
        // The ID itself is refused (a reserved name): the field at fault.
        showError(errBox, err.message.replace(/^recipe_id /, "The recipe ID "));
        form.recipe_id.setAttribute("aria-invalid", "true");
        form.recipe_id.focus();
        return;
      }
      showError(errBox, err);
    }
  });
});

explainAliases();
for (const s of [sides.left, sides.right]) if (s.select.value) s.pick();
