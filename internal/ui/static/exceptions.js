// Exception queue and item pages. Every action is POST
// /api/exceptions/actions with the version of each item as the page showed
// it, so an item someone else changed meanwhile is refused (409) instead of
// decided twice; the page then reloads and says so. The actor is the
// signed-in person (the session); only an open server without tokens asks
// for a name. Keys: j/k (or the arrows) move through the queue, a accepts,
// r rejects, Enter opens, n goes to the next open item.
import { api, showError, clearError } from "./app.js";

const FLASH = "kalla-exc-flash";

/** say puts an API error in the user's words. */
function say(err) {
  switch (err.code) {
    case "conflict":
      return "Someone else changed this item; reloaded. (" + err.message + ")";
    case "four_eyes":
      return "You prepared this decision, so a second person must approve it. (" + err.message + ")";
    case "forbidden":
      return "Your role does not allow this. (" + err.message + ")";
    case "unauthorized":
      return "Your sign-in has ended: sign in again. (" + err.message + ")";
  }
  return err.message;
}

/** reloadSaying reloads the page and shows text on the reloaded page. */
function reloadSaying(text) {
  sessionStorage.setItem(FLASH, text);
  location.reload();
}

// A message left by the page before a reload.
function showFlash(box) {
  const text = sessionStorage.getItem(FLASH);
  if (!text || !box) return;
  sessionStorage.removeItem(FLASH);
  box.textContent = text;
  box.hidden = false;
}

/** actor is the name sent on an open server (no session names anyone). */
function actor() {
  if (document.body.dataset.role) return undefined;
  const f = document.getElementById("actor");
  const name = f ? f.value.trim() : localStorage.getItem("kalla-actor") || "";
  if (f && name) localStorage.setItem("kalla-actor", name);
  return name || undefined;
}

/** act takes one action on items, given as {id, version} pairs. */
function act(action, items, extra = {}) {
  const versions = {};
  for (const it of items) versions[it.id] = Number(it.version);
  return api("POST", "/api/exceptions/actions", { action, items: items.map((it) => Number(it.id)), versions, actor: actor(), ...extra });
}

/**
 * typing says whether a key event belongs to a field being typed in (a tick
 * box or a button is not one: the shortcuts work after ticking records).
 */
function typing(ev) {
  const t = ev.target;
  if (ev.ctrlKey || ev.metaKey || ev.altKey || !t) return true;
  if (t.tagName === "INPUT") return !["checkbox", "radio", "button", "submit"].includes(t.type);
  return t.isContentEditable || ["TEXTAREA", "SELECT"].includes(t.tagName);
}

// ---- The queue --------------------------------------------------------

const verbs = { accept: "Accept", reject: "Reject", resolve: "Resolve", assign: "Assign" };
const past = { accept: "Accepted", reject: "Rejected", resolve: "Resolved", assign: "Assigned" };
const plural = (n, one, many) => n + " " + (n === 1 ? one : many);

/**
 * totals adds amounts per currency exactly (decimal text as scaled
 * integers) and says them: "1420.00 EUR + 20.00 USD".
 */
function totals(items) {
  const by = new Map();
  let none = 0;
  for (const it of items) {
    if (!it.amount || scaled(it.amount, scaleOf(it.amount)) === null) { none++; continue; }
    const cur = it.currency || "";
    const t = by.get(cur) || [];
    t.push(it.amount);
    by.set(cur, t);
  }
  const parts = [];
  for (const [cur, amounts] of by) {
    const scale = Math.max(0, ...amounts.map(scaleOf));
    const sum = amounts.reduce((a, x) => a + (scaled(x, scale) ?? 0n), 0n);
    parts.push(fmtScaled(sum, scale) + (cur ? " " + cur : ""));
  }
  let text = parts.length ? parts.join(" + ") : "no amount";
  if (none && parts.length) text += ` (${plural(none, "item has", "items have")} no amount)`;
  return text;
}

/**
 * bulkError says why an all-or-none action changed nothing, naming the
 * item the server refused (its message says "exception N …").
 */
function bulkError(err, action, chosen) {
  const n = chosen.length;
  const head = `Nothing was changed: ${verbs[action].toLowerCase()} takes all ${n} items or none, and `;
  const m = /exception (\d+)/.exec(err.message || "");
  const it = m && chosen.find((c) => String(c.id) === m[1]);
  const name = it ? `${it.label} (item ${it.id})` : m ? `item ${m[1]}` : "one item";
  let why;
  switch (err.code) {
    case "conflict":
      why = /at version/.test(err.message)
        ? `${name} was changed by someone else after you selected it. Reload the queue to see it as it is now, then select again.`
        : `${name} is not in a state that allows this (${it ? it.status + " " + it.kind : "see below"}). Untick it, or narrow the filter, and try again.`;
      break;
    case "not_found":
      why = `${name} no longer exists. Reload the queue and select again.`;
      break;
    case "four_eyes":
      why = `${name} was prepared by you, so a second person must approve it.`;
      break;
    case "forbidden":
      why = "your role does not allow this.";
      break;
    default:
      return head + "the server refused: " + err.message;
  }
  return head + why + " (The server said: " + err.message + ")";
}

/**
 * bulkPage wires the queue's ticks, "select all N matching the filter"
 * (every page, fetched from the API by the page's own filter), and the
 * bulk buttons: each asks for confirmation with the number of items and
 * their total amount, then sends one all-or-none action with the version
 * of every item as it was fetched.
 */
function bulkPage(table, errBox, status) {
  const bar = document.getElementById("bulk");
  if (!bar) return { toggle() {} };
  const ticks = () => [...table.querySelectorAll("input.tick")];
  const page = document.getElementById("tick-page");
  const countText = document.getElementById("bulk-count");
  const allBtn = document.getElementById("bulk-all");
  const noneBtn = document.getElementById("bulk-none");
  const total = Number(bar.dataset.total);
  let all = false; // every item the filter selects, on every page
  function update() {
    const n = all ? total : ticks().filter((t) => t.checked).length;
    countText.textContent = all ? `All ${plural(total, "item", "items")} matching the filter are selected (every page).`
      : n ? `${plural(n, "item", "items")} ticked on this page.` : "No items ticked.";
    allBtn.hidden = all;
    noneBtn.hidden = !all && n === 0;
    for (const b of bar.querySelectorAll("button[data-bulk]")) b.disabled = n === 0;
    page.checked = ticks().length > 0 && ticks().every((t) => t.checked);
  }
  table.addEventListener("change", (ev) => {
    if (ev.target === page) for (const t of ticks()) t.checked = page.checked;
    else if (!ev.target.matches("input.tick")) return;
    if (all && !ev.target.checked) all = false;
    update();
  });
  allBtn.addEventListener("click", () => {
    all = true;
    for (const t of ticks()) t.checked = true;
    update();
  });
  noneBtn.addEventListener("click", () => {
    all = false;
    for (const t of ticks()) t.checked = false;
    update();
  });

  // chosen returns the selected items as {id, version, label, amount,
  // currency, status, kind}: the ticked rows, or every page of the filter.
  async function chosen() {
    if (!all) {
      return ticks().filter((t) => t.checked).map((t) => ({ ...t.closest("tr").dataset }));
    }
    const out = [];
    for (let offset = 0; ; offset += 1000) {
      const p = await api("GET", `/api/exceptions?${bar.dataset.filter}&limit=1000&offset=${offset}`);
      for (const it of p.items) {
        out.push({ id: String(it.id), version: String(it.version), label: it.key + (it.right_key ? " ↔ " + it.right_key : ""),
          amount: it.amount || "", currency: it.currency || "", status: it.status, kind: it.kind });
      }
      if (p.items.length < 1000 || out.length >= p.total) break;
    }
    return out;
  }

  const dialog = document.getElementById("bulk-dialog");
  function ask(question, more, go) {
    document.getElementById("bulk-q").textContent = question;
    document.getElementById("bulk-more").textContent = more;
    document.getElementById("bulk-go").textContent = go;
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "go"), { once: true });
      dialog.returnValue = "";
      dialog.showModal();
      document.getElementById("bulk-go").focus();
    });
  }

  async function run(action, button) {
    clearError(errBox);
    const extra = {};
    if (action === "resolve") extra.code = document.getElementById("bulk-code").value;
    if (action === "assign") {
      extra.assignee = document.getElementById("bulk-assignee").value.trim();
      if (!extra.assignee) {
        showError(errBox, "Name the person to assign the items to.");
        document.getElementById("bulk-assignee").focus();
        return;
      }
    }
    const max = Number(bar.dataset.max);
    if (all && max && total > max) {
      showError(errBox, `The filter selects ${total} items: one action takes at most ${max}. Narrow the filter (a run, a rule, a difference).`);
      return;
    }
    button.disabled = true;
    try {
      let items;
      try {
        items = await chosen();
      } catch (e) {
        showError(errBox, say(e));
        return;
      }
      if (!items.length) {
        showError(errBox, "The filter selects no items any more: reload the queue.");
        return;
      }
      const what = action === "resolve" ? ` with code “${extra.code}”` : action === "assign" ? ` to ${extra.assignee}` : "";
      let more = items.slice(0, 5).map((it) => it.label).join(", ") + (items.length > 5 ? `, and ${items.length - 5} more` : "") + ".";
      if (action === "resolve" && bar.dataset.approval) {
        more += ` A write-off of ${bar.dataset.approval} or more waits for a second person's approval.`;
      }
      const n = plural(items.length, "item", "items");
      const q = `${verbs[action]} ${n}${what}? Total amount ${totals(items)}. All of them or none.`;
      if (!(await ask(q, more, `${verbs[action]} ${n}`))) {
        status.textContent = "Cancelled: nothing was changed.";
        return;
      }
      let res;
      try {
        res = await act(action, items, extra);
      } catch (e) {
        showError(errBox, bulkError(e, action, items));
        errBox.scrollIntoView({ block: "nearest" });
        return;
      }
      const pending = action === "resolve" ? res.items.filter((it) => it.status === "pending").length : 0;
      let text = `${past[action]} ${plural(res.items.length - pending, "item", "items")}${action === "assign" ? " to " + extra.assignee : ""}.`;
      if (pending) text += ` ${plural(pending, "item waits", "items wait")} for a second person's approval (four eyes).`;
      reloadSaying(text);
    } finally {
      button.disabled = false;
      update();
    }
  }
  for (const b of bar.querySelectorAll("button[data-bulk]")) {
    b.addEventListener("click", () => run(b.dataset.bulk, b));
  }
  update();
  return {
    // toggle ticks a row (the x key).
    toggle(row) {
      const t = row && row.querySelector("input.tick");
      if (!t || !t.getClientRects().length) return;
      t.checked = !t.checked;
      t.dispatchEvent(new Event("change", { bubbles: true }));
    },
  };
}

function queuePage(table) {
  const errBox = document.getElementById("queue-error");
  const status = document.getElementById("queue-status");
  showFlash(status);
  const rows = () => [...table.tBodies[0].rows].filter((r) => r.dataset.id);
  let current = null;
  const select = (row) => {
    if (!row) return;
    if (current) current.classList.remove("current");
    current = row;
    row.classList.add("current");
    row.setAttribute("aria-selected", "true");
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  };
  const step = (by) => {
    const list = rows();
    if (!list.length) return;
    const i = current ? list.indexOf(current) : -1;
    select(list[Math.min(list.length - 1, Math.max(0, i + by))]);
  };
  table.addEventListener("click", (ev) => {
    const row = ev.target.closest("tr[data-id]");
    if (row && ev.target.tagName !== "A" && ev.target.tagName !== "INPUT") select(row);
  });
  const bulk = bulkPage(table, errBox, status);
  async function decide(action) {
    if (!current) step(1);
    const row = current;
    if (!row) return;
    clearError(errBox);
    if (row.dataset.kind !== "suggested" || row.dataset.status !== "open") {
      showError(errBox, `Only an open suggested pair can be ${action}ed: ${row.dataset.key} is ${row.dataset.status} (${row.dataset.kind}). Open it with Enter to act on it.`);
      return;
    }
    try {
      const res = await act(action, [row.dataset]);
      const it = res.items[0];
      row.dataset.status = it.status;
      row.dataset.version = it.version;
      const badge = row.querySelector(".st");
      badge.textContent = "";
      const b = document.createElement("span");
      b.className = "badge badge-exc badge-exc-" + it.status;
      b.textContent = it.status;
      badge.append(b);
      status.textContent = `${it.status === "accepted" ? "Accepted" : "Rejected"} ${row.querySelector(".exc-item a").textContent}.`;
      document.dispatchEvent(new Event("kalla:refresh"));
      step(1);
    } catch (e) {
      if (e.code === "conflict") return reloadSaying(say(e));
      showError(errBox, say(e));
    }
  }
  document.addEventListener("keydown", (ev) => {
    if (typing(ev)) return;
    // Enter and the arrows keep their usual meaning on links, buttons and
    // tick boxes; they move through the queue from the page or a row.
    const onQueue = ev.target === document.body || ev.target.matches("tr[data-id], main");
    switch (ev.key) {
      case "j": step(1); break;
      case "k": step(-1); break;
      case "ArrowDown": if (!onQueue) return; step(1); break;
      case "ArrowUp": if (!onQueue) return; step(-1); break;
      case "a": decide("accept"); break;
      case "r": decide("reject"); break;
      case "x": bulk.toggle(current); break;
      case "Enter":
        if (!current || !onQueue) return;
        location.href = current.querySelector(".exc-item a").href;
        break;
      default: return;
    }
    ev.preventDefault();
  });
}

// ---- One item ---------------------------------------------------------

// Exact decimal sums: amounts are decimal text, added as scaled integers.
function scaleOf(s) {
  const i = s.indexOf(".");
  return i < 0 ? 0 : s.length - i - 1;
}
function scaled(s, scale) {
  const m = /^([-+]?)(\d*)(?:\.(\d*))?$/.exec(s.trim());
  if (!m) return null;
  const n = BigInt((m[2] || "0") + (m[3] || "").padEnd(scale, "0"));
  return m[1] === "-" ? -n : n;
}
function fmtScaled(n, scale) {
  const neg = n < 0n;
  let s = (neg ? -n : n).toString().padStart(scale + 1, "0");
  let frac = "";
  if (scale > 0) [s, frac] = [s.slice(0, s.length - scale), "." + s.slice(s.length - scale)];
  // Thousands separators, as the pages' amounts have them: 27,386.14.
  return (neg ? "-" : "") + s.replace(/\B(?=(\d{3})+$)/g, ",") + frac;
}

function itemPage(root) {
  const errBox = document.getElementById("exc-error");
  showFlash(document.getElementById("exc-flash"));
  if (!document.body.dataset.role) {
    for (const e of document.querySelectorAll(".actor-field")) e.hidden = false;
    const f = document.getElementById("actor");
    if (f) f.value = localStorage.getItem("kalla-actor") || "";
  }
  const me = { id: root.dataset.id, version: root.dataset.version };
  const note = () => document.getElementById("note").value.trim() || undefined;
  const picks = () => [...document.querySelectorAll("input.pick:checked")].map((c) => c.dataset);

  // The match panel: both sums and the difference of what is ticked.
  const tol = root.dataset.tolerance || "0";
  let beyond = false;
  function sums() {
    const chosen = picks();
    const scale = Math.max(scaleOf(tol), ...chosen.map((p) => scaleOf(p.amount)), 0);
    const total = { left: 0n, right: 0n };
    const n = { left: 0, right: 0 };
    for (const p of chosen) {
      total[p.side] += scaled(p.amount, scale) ?? 0n;
      n[p.side]++;
    }
    const diff = total.right - total.left;
    document.getElementById("sum-left").textContent = fmtScaled(total.left, scale);
    document.getElementById("sum-right").textContent = fmtScaled(total.right, scale);
    document.getElementById("sum-diff").textContent = fmtScaled(diff, scale);
    document.getElementById("n-left").textContent = n.left + (n.left === 1 ? " record" : " records");
    document.getElementById("n-right").textContent = n.right + (n.right === 1 ? " record" : " records");
    beyond = (diff < 0n ? -diff : diff) > scaled(tol, scale);
    document.getElementById("match-code-wrap").hidden = !beyond;
    document.getElementById("match").disabled = !(n.left && n.right) || (beyond && !document.getElementById("match-code").value);
  }
  if (document.getElementById("match-panel")) {
    document.getElementById("match-panel").addEventListener("change", sums);
    sums();
  }

  async function run(action, button) {
    clearError(errBox);
    document.getElementById("exc-flash").hidden = true;
    let items = [me];
    const extra = { note: note() };
    switch (action) {
      case "match":
        items = picks();
        extra.code = beyond ? document.getElementById("match-code").value : undefined;
        break;
      case "resolve":
        extra.code = document.getElementById("resolve-code").value;
        break;
      case "assign":
        extra.assignee = document.getElementById("assignee").value.trim();
        break;
    }
    if (button) button.disabled = true;
    try {
      const res = await act(action, items, extra);
      const what = res.action && res.action.result === "pending" ? `${action}: pending approval by a second person` : `${action}: done`;
      reloadSaying(what.charAt(0).toUpperCase() + what.slice(1) + ".");
    } catch (e) {
      if (e.code === "conflict") return reloadSaying(say(e));
      showError(errBox, say(e));
    } finally {
      if (button) button.disabled = false;
    }
  }
  for (const b of document.querySelectorAll("button[data-act]")) {
    b.addEventListener("click", () => run(b.dataset.act, b));
  }
  document.addEventListener("keydown", (ev) => {
    if (typing(ev)) return;
    const click = (id) => {
      const b = document.getElementById(id);
      if (b && !b.disabled && b.getClientRects().length) b.click();
    };
    switch (ev.key) {
      case "a": click("accept"); break;
      case "r": click("reject"); break;
      case "n":
        if (root.dataset.next) location.href = root.dataset.next;
        break;
      default: return;
    }
    ev.preventDefault();
  });
}

const queue = document.getElementById("queue");
if (queue) queuePage(queue);
const item = document.getElementById("exc");
if (item) itemPage(item);
