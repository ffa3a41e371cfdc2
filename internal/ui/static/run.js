// Run page. While the run is queued or running, follow the API's event
// stream (stage, rows staged per side, percent) and offer cancel; when it
// ends, reload so the server renders the outcome. Once completed, page
// through the matched pairs and each side's unmatched records, with a
// search over every column.
import { api, el, table, showError, clearError, fmtInt, busy } from "./app.js";

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
      try { showError(errBox, JSON.parse(ev.data).error.message); } catch (e) { showError(errBox, ev.data); }
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
      const r = await api("POST", "/api/runs", { recipe_id: rerun.dataset.recipe });
      location.assign("/runs/" + encodeURIComponent(r.run_id));
    } catch (e) {
      showError(errBox, e);
    }
  }));
}

// Results: tabs, paging, search.
const PAGE = 50;
const tabs = [...document.querySelectorAll('[role="tab"]')];
if (tabs.length) {
  const panel = document.getElementById("panel");
  const search = document.getElementById("search");
  const info = document.getElementById("page-info");
  const prev = document.getElementById("prev");
  const next = document.getElementById("next");
  const box = document.getElementById("results-error");
  const state = { table: "matched", offset: 0, q: "", total: 0 };
  let seq = 0;

  async function load() {
    const mine = ++seq;
    clearError(box);
    const qs = new URLSearchParams({ offset: state.offset, limit: PAGE });
    if (state.q) qs.set("q", state.q);
    info.textContent = "Loading…";
    try {
      const page = await api("GET", `/api/runs/${encodeURIComponent(id)}/results/${state.table}?${qs}`);
      if (mine !== seq) return;
      state.total = page.total_rows;
      const empty = state.q ? `No rows contain “${state.q}”.` : "No rows.";
      document.getElementById("table").replaceChildren(table(page.columns, page.rows, { empty }));
      const first = page.rows.length ? state.offset + 1 : 0;
      info.textContent = `Rows ${fmtInt(first)}–${fmtInt(state.offset + page.rows.length)} of ${fmtInt(page.total_rows)}` + (state.q ? ` containing “${state.q}”` : "");
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
