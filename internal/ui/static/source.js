// Source preview: columns with their types, a sample of rows, and a filter
// bar. Every change of the filters reloads the sample through load-scoped,
// which also answers the number of matching rows: exact when that is cheap,
// else a lower bound the page says is one ("at least 10,001"), with a
// button that asks for the exact count. The filters live in
// the page's URL (?f=…), so a reload or a shared link keeps them.
import { api, el, table, showError, clearError, fmtInt } from "./app.js";
import { FilterBar, filtersJSON, attributeErrors, humanize } from "./chips.js";

const root = document.getElementById("preview");
const alias = root.dataset.alias;
const path = `/api/sources/${encodeURIComponent(alias)}/load-scoped`;
const summary = document.getElementById("summary");
const errBox = document.getElementById("load-error");
const limit = document.getElementById("limit");
let sourceTotal = null;
let seq = 0;
let exact = false; // the next load asks for the exact count

/** count renders a total as the API labels it. */
function count(n, kind) {
  return (kind === "at_least" ? "at least " : "") + fmtInt(n);
}

const bar = new FilterBar({
  list: root.querySelector(".chips"),
  form: root.querySelector(".chip-editor"),
  column: document.getElementById("f-column"),
  op: document.getElementById("f-op"),
  value: document.getElementById("f-value"),
  value2: document.getElementById("f-value2"),
}, () => { saveState(); load(); });

// The URL holds the chips as the bar does, values with their own text.
function saveState() {
  const u = new URL(location.href);
  if (bar.chips.length) u.searchParams.set("f", JSON.stringify(bar.chips));
  else u.searchParams.delete("f");
  history.replaceState(null, "", u);
}

function restoreState() {
  const f = new URL(location.href).searchParams.get("f");
  if (!f) return;
  try {
    const chips = JSON.parse(f);
    if (Array.isArray(chips) && chips.every(isChip)) bar.set(chips);
  } catch (e) { /* a mangled link: start without filters */ }
}

function isChip(c) {
  return c && typeof c.column === "string" && typeof c.op === "string" && Array.isArray(c.values) &&
    c.values.every((v) => v && typeof v.text === "string");
}

async function load() {
  const mine = ++seq;
  clearError(errBox);
  summary.textContent = "Loading…";
  const body = '{"conditions":' + filtersJSON(bar.chips) + ',"limit":' + Number(limit.value) + (exact ? ',"exact_total":true' : "") + "}";
  exact = false;
  try {
    const r = await api("POST", path, body);
    if (mine !== seq) return;
    bar.setErrors(new Map());
    if (bar.chips.length === 0) sourceTotal = count(r.total_rows, r.total_kind);
    renderColumns(r.columns);
    bar.setColumns(r.columns);
    document.getElementById("rows").replaceChildren(table(r.columns, r.rows, { empty: "No rows match these filters." }));
    const n = bar.chips.length;
    const total = count(r.total_rows, r.total_kind);
    let text = `${total} ${r.total_rows === 1 && r.total_exact ? "row matches" : "rows match"}`;
    text = n === 0 ? `${total} rows in the source` : text + ` ${n === 1 ? "the filter" : "all " + n + " filters"}` + (sourceTotal !== null ? ` (of ${sourceTotal} in the source)` : "");
    const parts = [el("strong", { id: "total", "data-total": r.total_rows, "data-kind": r.total_kind }, text), ` · showing ${fmtInt(r.preview_rows)}`];
    if (!r.total_exact) {
      parts.push(" · ", el("button", { type: "button", id: "count-exact", class: "link", title: "Count every matching row: this reads the whole source",
        onclick: () => { exact = true; load(); } }, "Count exactly"));
    }
    summary.replaceChildren(...parts);
  } catch (e) {
    if (mine !== seq) return;
    summary.textContent = "";
    if (bar.columns.length === 0) {
      // Filters from a link failed before the columns were known.
      api("POST", path, { conditions: [], limit: 0 }).then((r) => { renderColumns(r.columns); bar.setColumns(r.columns); }).catch(() => {});
    }
    // Say which chip the server refused, next to it.
    const errors = e.status === 400 && bar.chips.length ? await attributeErrors(bar.chips, e.message, probe) : new Map();
    if (mine !== seq) return;
    bar.setErrors(errors);
    if (errors.size === 0) showError(errBox, humanize(e.message, bar.chips));
    else summary.textContent = "The sample was not reloaded: fix or remove the marked filter.";
  }
}

// probe asks the server about one filter alone; it answers its message or null.
async function probe(f) {
  try {
    await api("POST", path, '{"conditions":' + filtersJSON([f]) + ',"limit":0}');
    return null;
  } catch (e) {
    return e.message;
  }
}

function renderColumns(cols) {
  document.querySelector("#columns tbody").replaceChildren(...cols.map((c) =>
    el("tr", {}, el("td", {}, c.name), el("td", { class: "mono" }, c.data_type), el("td", {}, c.nullable ? "yes" : "no"))));
}

limit.addEventListener("change", load);
restoreState();
load();
