// Run page. While the run is queued or running, follow the API's event
// stream (stage, rows staged per side, percent) and offer cancel; when it
// ends, reload so the server renders the outcome. Once completed, page
// through the matched pairs and each side's unmatched records, with a
// search over every column.
import { api, el, showError, clearError, fmtInt, busy, fmtNumber, isAmount, NUMERIC } from "./app.js";

const root = document.getElementById("run");
const id = root.dataset.run;
const errBox = document.getElementById("run-error");

const stages = {
  stage_left: "Reading the left source",
  stage_right: "Reading the right source",
  match: "Matching",
  write: "Writing results",
  "": "Waiting to start",
};

// The server's clock, as the page was rendered, against the browser's:
// elapsed times are counted from the run's start on the server's clock.
const skew = Date.parse(root.dataset.now) - Date.now();

/** fmtDuration writes milliseconds as 850 ms, 12.3 s or 4 min 05 s. */
function fmtDuration(ms) {
  ms = Math.max(0, Math.floor(ms));
  if (ms < 1000) return ms + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
  return Math.floor(ms / 60000) + " min " + String(Math.floor((ms % 60000) / 1000)).padStart(2, "0") + " s";
}

// The header's "running for" counts on while the run is active.
const elapsed = document.getElementById("elapsed");
function tick() {
  if (!elapsed || !elapsed.dataset.started) return;
  elapsed.textContent = fmtDuration(Date.now() + skew - Date.parse(elapsed.dataset.started));
}
if (elapsed) {
  tick();
  setInterval(tick, 1000);
}

// sideState says what one side is doing, as the server's sideState does.
function sideState(p, side) {
  if (p.status === "queued") return "waiting";
  if (!p.stage) return "starting";
  if (p.stage === "stage_" + side) return "reading…";
  if (p.stage === "stage_left") return "";
  return "done";
}

function follow() {
  const live = document.getElementById("p-live");
  const es = new EventSource(`/api/runs/${encodeURIComponent(id)}/events`);
  es.addEventListener("progress", (ev) => {
    const p = JSON.parse(ev.data);
    const pct = Math.round(p.progress * 100);
    document.getElementById("p-bar").value = pct;
    document.getElementById("p-bar").textContent = pct + "%";
    document.getElementById("p-pct").textContent = pct + "%";
    document.getElementById("p-stage").textContent = !p.stage && p.status === "running" ? "Starting" : stages[p.stage || ""] || p.stage;
    document.getElementById("p-left").textContent = fmtInt(p.left_rows_staged);
    document.getElementById("p-right").textContent = fmtInt(p.right_rows_staged);
    document.getElementById("p-left-state").textContent = sideState(p, "left");
    document.getElementById("p-right-state").textContent = sideState(p, "right");
    if (p.started_at && elapsed) {
      elapsed.dataset.started = p.started_at;
      document.getElementById("elapsed-wrap").hidden = false;
      tick();
    }
    const badge = document.querySelector("#p-status .badge");
    badge.className = "badge badge-" + p.status;
    badge.textContent = p.status;
    root.dataset.status = p.status;
    live.textContent = "";
    if (p.cancel_requested) {
      const c = document.getElementById("cancel");
      c.disabled = true;
      c.textContent = "Cancelling…";
    }
  });
  es.addEventListener("done", () => {
    es.close();
    live.textContent = "Finished; loading the outcome…";
    location.reload();
  });
  es.addEventListener("error", (ev) => {
    // A server-sent "error" event carries the server's message; a lost
    // connection has no data, and the browser reconnects by itself.
    if (ev.data) {
      es.close();
      let msg = "The server stopped sending the run's progress. Reload the page to see where the run is.";
      try { msg = JSON.parse(ev.data).error.message || msg; } catch (e) { /* keep the plain message */ }
      showError(errBox, msg);
      return;
    }
    live.textContent = "Lost the live connection to the server; reconnecting…";
  });
}

const cancel = document.getElementById("cancel");
if (cancel) {
  follow();
  cancel.addEventListener("click", async () => {
    if (!confirm("Cancel this run? It stops and writes no results.")) return;
    clearError(errBox);
    try {
      await api("POST", `/api/runs/${encodeURIComponent(id)}/cancel`);
      cancel.disabled = true;
      cancel.textContent = "Cancelling…";
    } catch (e) {
      showError(errBox, e);
    }
  });
}

const rerun = document.getElementById("rerun");
if (rerun) {
  rerun.addEventListener("click", () => busy(rerun, "Starting…", async () => {
    try {
      // Again on the same engine, unless the user picks another.
      const pick = document.getElementById("rerun-engine");
      const engine = pick ? pick.value : rerun.dataset.engine;
      const r = await api("POST", "/api/runs", { recipe_id: rerun.dataset.recipe, engine });
      location.assign("/runs/" + encodeURIComponent(r.run_id));
    } catch (e) {
      showError(errBox, e);
    }
  }));
}

// Results: tabs, paging, search, sorting. A matched pair is shown as its
// two records side by side (left columns, right columns, then what the
// match computed): the whole records when the run kept them (every server
// run), else the fields the pair carries, with a note saying so. The
// fields the rules compare, and same-named fields, are highlighted where
// they differ; Kalla's own columns (_left_row, _rule, …) are not data:
// row numbers are left out and the rule, score and status are labelled.
const PAGE = 50;
const tabs = [...document.querySelectorAll('[role="tab"]')];
const results = document.getElementById("results");
const layout = results && results.dataset.layout ? JSON.parse(results.dataset.layout) : {};

const META = { _rule: "Rule", _score: "Score", _status: "Status", _reason: "Reason", _closest_candidate: "Closest candidate", _left_key: "Left key", _right_key: "Right key" };
const HIDDEN = new Set(["_left_row", "_right_row"]);
// The breaks file's columns, in words.
const BREAKS = { left_column: "Left field", right_column: "Right field", left_value: "Left value", right_value: "Right value", difference: "Difference" };

// plan lays out a table's columns in groups: [{label, side, cols: [{i, name, label}]}].
// In the matched table a column belongs to the left record when it is one
// of the left source's fields: as the match SQL selected it, as Kalla's
// key column (_left_<key>), or as a rules recipe's compared field
// (left_<field>); the same for the right. A field shown once is not
// shown again under another name.
function plan(table, columns) {
  const withRecords = columns.some((c) => c.record);
  const left = new Set(layout.left || []), right = new Set(layout.right || []);
  const groups = { left: [], right: [], out: [], meta: [] };
  const seen = { left: new Set(), right: new Set(), out: new Set() };
  const place = (n) => {
    for (const [prefix, side, set] of [["_left_", "left", left], ["_right_", "right", right], ["left_", "left", left], ["right_", "right", right]]) {
      if (n.startsWith(prefix) && set.has(n.slice(prefix.length))) return [side, n.slice(prefix.length)];
    }
    if (left.has(n) && !right.has(n)) return ["left", n];
    if (right.has(n) && !left.has(n)) return ["right", n];
    return ["out", n];
  };
  columns.forEach((c, i) => {
    const n = c.name;
    const col = { i, name: n, label: n, type: c.data_type };
    if (HIDDEN.has(n)) return;
    if (c.record) { col.label = c.record; groups[c.side].push(col); seen[c.side].add(c.record); return; }
    if (META[n]) { col.label = META[n]; groups.meta.push(col); return; }
    if (table !== "matched") {
      if (table === "breaks" && BREAKS[n]) col.label = BREAKS[n];
      groups.out.push(col);
      return;
    }
    const [side, label] = place(n);
    // With the whole records on the page, the pair's copies of their
    // fields are not shown again.
    if (withRecords && side !== "out") return;
    if (seen[side].has(label)) return;
    seen[side].add(label);
    col.label = label;
    groups[side].push(col);
  });
  if (table !== "matched") return [{ label: "", cols: groups.out.concat(groups.meta), side: "" }];
  return [
    { label: "Left · " + (layout.left_name || "left"), cols: groups.left, side: "left" },
    { label: "Right · " + (layout.right_name || "right"), cols: groups.right, side: "right" },
    { label: "Computed by the match", cols: groups.out, side: "out" },
    { label: "Match", cols: groups.meta, side: "meta" },
  ].filter((g) => g.cols.length);
}

// withRecords lays a page of matched pairs that carries the pairs' whole
// records (page.records) out as one table: each record's columns (sorted
// by the API as left.<name>, right.<name>) first, then the pair's own.
function withRecords(page) {
  if (!page.records) return page;
  const columns = [], sides = [["left", page.records.left], ["right", page.records.right]];
  for (const [side, set] of sides) {
    for (const c of set.columns) columns.push({ ...c, name: side + "." + c.name, record: c.name, side });
  }
  return {
    ...page,
    columns: columns.concat(page.columns),
    rows: page.rows.map((row, i) => sides.flatMap(([, set]) => set.rows[i]).concat(row)),
  };
}

// comparedPairs lists the [leftCol, rightCol] column pairs of a matched
// table to compare: those the rules compare, and same-named fields.
function comparedPairs(groups) {
  const l = groups.find((g) => g.side === "left"), r = groups.find((g) => g.side === "right");
  if (!l || !r) return [];
  const pairs = [];
  for (const [a, b] of layout.compared || []) {
    const x = l.cols.find((c) => c.label === a), y = r.cols.find((c) => c.label === b);
    if (x && y) pairs.push([x, y]);
  }
  for (const x of l.cols) {
    const y = r.cols.find((c) => c.label === x.label);
    if (y && !pairs.some((p) => p[0] === x)) pairs.push([x, y]);
  }
  return pairs;
}

// same compares two values as text, or as numbers when both are.
function same(a, b) {
  if (a === b) return true;
  if (a === null || b === null) return false;
  const n = /^-?\d+(\.\d+)?$/;
  if (n.test(a) && n.test(b)) {
    const norm = (s) => { let [i, f = ""] = s.replace(/^-/, "").split("."); i = i.replace(/^0+(?=\d)/, ""); f = f.replace(/0+$/, ""); const z = i === "0" && f === ""; return (s.startsWith("-") && !z ? "-" : "") + i + "." + f; };
    return norm(a) === norm(b);
  }
  return false;
}

function renderTable(table, page, sort, onSort, empty) {
  const groups = plan(table, page.columns);
  const pairs = table === "matched" ? comparedPairs(groups) : [];
  const cols = groups.flatMap((g) => g.cols.map((c) => ({ ...c, side: g.side })));
  const thead = el("thead", {});
  if (groups.length > 1) {
    thead.append(el("tr", { class: "groups" }, groups.map((g) =>
      el("th", { scope: "colgroup", colspan: g.cols.length, class: "group-" + g.side }, g.label))));
  }
  thead.append(el("tr", {}, cols.map((c) => {
    const on = sort.column === c.name;
    const th = el("th", { scope: "col", class: (NUMERIC.test(c.type) ? "num " : "") + "group-" + c.side,
      "aria-sort": on ? (sort.desc ? "descending" : "ascending") : "none" },
      el("button", { type: "button", class: "sort", title: "Sort by " + c.label + " (" + c.type + ")", "data-col": c.name },
        c.label, el("span", { "aria-hidden": "true", class: "sort-mark" }, on ? (sort.desc ? " ▼" : " ▲") : "")));
    th.querySelector("button").addEventListener("click", () => onSort(c.name));
    return th;
  })));
  const tbody = el("tbody", {});
  for (const row of page.rows) {
    const differs = new Set();
    for (const [x, y] of pairs) {
      if (!same(row[x.i], row[y.i])) { differs.add(x.i); differs.add(y.i); }
    }
    tbody.append(el("tr", {}, cols.map((c) => {
      const v = row[c.i];
      const numeric = isAmount(c.label, c.type) && c.name !== "_score";
      const cls = [NUMERIC.test(c.type) ? "num" : "", "group-" + c.side, differs.has(c.i) ? "differs" : ""].filter(Boolean).join(" ");
      if (v === null) return el("td", { class: cls + " blank" }, "");
      const text = numeric ? fmtNumber(v) : v;
      return el("td", { class: cls || null, title: text.length > 40 ? text : null },
        text, differs.has(c.i) ? el("span", { class: "sr-only" }, " (differs)") : "");
    })));
  }
  if (page.rows.length === 0) {
    tbody.append(el("tr", {}, el("td", { colspan: Math.max(cols.length, 1), class: "empty" }, empty)));
  }
  return el("table", { class: "grid data results-table" + (table === "matched" ? " pairs-table" : "") }, thead, tbody);
}

if (tabs.length) {
  const panel = document.getElementById("panel");
  const search = document.getElementById("search");
  const info = document.getElementById("page-info");
  const prev = document.getElementById("prev");
  const next = document.getElementById("next");
  const box = document.getElementById("results-error");
  const state = { table: tabs[0].dataset.table, offset: 0, q: "", total: 0, sort: { column: "", desc: false } };
  let seq = 0;

  function onSort(col) {
    if (state.sort.column === col) state.sort.desc = !state.sort.desc;
    else state.sort = { column: col, desc: false };
    state.offset = 0;
    load(col);
  }

  async function load(focusCol) {
    const mine = ++seq;
    clearError(box);
    const qs = new URLSearchParams({ offset: state.offset, limit: PAGE });
    if (state.q) qs.set("q", state.q);
    if (state.sort.column) { qs.set("sort", state.sort.column); qs.set("order", state.sort.desc ? "desc" : "asc"); }
    info.textContent = "Loading…";
    try {
      const page = withRecords(await api("GET", `/api/runs/${encodeURIComponent(id)}/results/${state.table}?${qs}`));
      if (mine !== seq) return;
      state.total = page.total_rows;
      const empty = state.q ? `No rows contain “${state.q}”.` : "No rows.";
      const t = renderTable(state.table, page, state.sort, onSort, empty);
      const shown = [t];
      if (page.records_note) shown.unshift(el("p", { class: "help", id: "records-note" }, page.records_note));
      document.getElementById("table").replaceChildren(...shown);
      if (focusCol) {
        const b = t.querySelector(`button.sort[data-col="${CSS.escape(focusCol)}"]`);
        if (b) b.focus();
      }
      const what = state.table === "matched" ? "pairs" : "rows";
      if (page.rows.length === 0) {
        info.textContent = state.q ? `No ${what} contain “${state.q}”` : `No ${what}`;
      } else {
        info.textContent = `${what === "pairs" ? "Pairs" : "Rows"} ${fmtInt(state.offset + 1)}–${fmtInt(state.offset + page.rows.length)} of ${fmtInt(page.total_rows)}` + (state.q ? ` containing “${state.q}”` : "");
      }
      prev.disabled = state.offset === 0;
      next.disabled = state.offset + PAGE >= page.total_rows;
    } catch (e) {
      if (mine !== seq) return;
      info.textContent = "";
      showError(box, e);
    }
  }

  function select(tab, focus) {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
    }
    panel.setAttribute("aria-labelledby", tab.id);
    if (focus) tab.focus();
    state.table = tab.dataset.table;
    state.offset = 0;
    state.sort = { column: "", desc: false };
    load();
  }

  tabs.forEach((t, i) => {
    t.addEventListener("click", () => select(t, false));
    t.addEventListener("keydown", (e) => {
      let j = null;
      if (e.key === "ArrowRight") j = (i + 1) % tabs.length;
      else if (e.key === "ArrowLeft") j = (i - 1 + tabs.length) % tabs.length;
      else if (e.key === "Home") j = 0;
      else if (e.key === "End") j = tabs.length - 1;
      if (j !== null) { e.preventDefault(); select(tabs[j], true); }
    });
  });
  prev.addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); load(); });
  next.addEventListener("click", () => { state.offset += PAGE; load(); });
  let timer;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.q = search.value.trim(); state.offset = 0; load(); }, 250);
  });
  search.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); clearTimeout(timer); state.q = search.value.trim(); state.offset = 0; load(); }
  });
  load();
}
