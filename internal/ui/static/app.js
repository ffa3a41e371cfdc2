// Kalla web UI: helpers shared by the pages' scripts.
//
// Every call to the API goes through api(), which sends the X-Kalla-UI
// header (the API admits the session cookie only with it) and turns any
// answer other than 2xx into an Error carrying the server's own message,
// so that no failure is silent and the user reads what the server said.

/** ApiError is a failed API call: the server's code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * api calls the API and returns the decoded JSON answer (null for 204).
 * body may be an object (sent as JSON), a string (sent as is, as JSON),
 * or FormData (multipart).
 */
export async function api(method, path, body) {
  const headers = { "X-Kalla-UI": "1", "Accept": "application/json" };
  let payload;
  if (body instanceof FormData) {
    payload = body;
  } else if (typeof body === "string") {
    payload = body;
    headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  } catch (e) {
    throw new ApiError(0, "unavailable", "Cannot reach the Kalla server: " + e.message);
  }
  if (resp.status === 204) return null;
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!resp.ok) {
    if (data && data.error && data.error.message) {
      throw new ApiError(resp.status, data.error.code, data.error.message);
    }
    throw new ApiError(resp.status, "internal", `The server answered ${resp.status} ${resp.statusText}` + (text ? ": " + text.slice(0, 300) : ""));
  }
  return data;
}

/** el creates an element: el("td", {class: "num"}, "12"). */
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, "");
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** showError puts an error's message in an alert box and shows it. */
export function showError(box, err) {
  if (!box) return;
  box.textContent = err instanceof Error ? err.message : String(err);
  box.hidden = false;
}

/** clearError hides an alert box. */
export function clearError(box) {
  if (!box) return;
  box.textContent = "";
  box.hidden = true;
}

/** fmtInt writes 1234567 as 1,234,567. */
export function fmtInt(n) {
  return Number(n).toLocaleString("en-US");
}

/** fmtPct writes 0.8 as 80.0%. */
export function fmtPct(f) {
  return (f * 100).toFixed(1) + "%";
}

const numericType = /int|dec|num|double|float|real/i;

/** isNumericType says whether a column type holds numbers. */
export function isNumericType(t) {
  return numericType.test(t || "");
}

// The user's number format: group and decimal separators.
const numParts = new Intl.NumberFormat(navigator.language || "en-US").formatToParts(1234567.5);
const GROUP = (numParts.find((p) => p.type === "group") || { value: "," }).value;
const DECIMAL = (numParts.find((p) => p.type === "decimal") || { value: "." }).value;

/** fmtNumber groups the digits of a number's text, exactly (no float). */
export function fmtNumber(text) {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m) return text;
  const int = m[2].replace(/\B(?=(\d{3})+(?!\d))/g, GROUP);
  return m[1] + int + (m[3] !== undefined ? DECIMAL + m[3] : "");
}

/** NUMERIC matches the column types that hold numbers, as the engines name them. */
export const NUMERIC = /^(DECIMAL|NUMERIC|DOUBLE|FLOAT|REAL|INTEGER|BIGINT|SMALLINT|TINYINT|HUGEINT|UBIGINT|UINTEGER|USMALLINT|UTINYINT)/i;
// Integers named like identifiers (invoice_no, customer_id) are not amounts.
const IDLIKE = /(^|_)(id|key|no|num|number|ref|reference|code)$/i;

/**
 * isAmount says whether a column's values are shown with grouped digits:
 * numbers, except integers named like identifiers (invoice_no, customer_id).
 */
export function isAmount(name, type) {
  return NUMERIC.test(type || "") && !(IDLIKE.test(name) && !/^(DECIMAL|NUMERIC|DOUBLE|FLOAT|REAL)/i.test(type));
}

/**
 * table renders columns and rows (values as text, null for a missing
 * value) as a dense table; numeric columns are right-aligned. A missing
 * value is a blank cell, as on the run page, never the word NULL. With
 * opts.group, amounts have their digits grouped (1,234.50); without it
 * values are shown as read, as a source's preview does.
 */
export function table(columns, rows, opts = {}) {
  const num = columns.map((c) => isNumericType(c.data_type));
  const grp = columns.map((c) => opts.group && isAmount(c.name, c.data_type));
  const head = el("tr", {}, columns.map((c, i) =>
    el("th", { scope: "col", class: num[i] ? "num" : null, title: c.data_type }, c.label || c.name)));
  const body = rows.map((r) => el("tr", {}, r.map((v, i) =>
    v === null ? el("td", { class: "blank", title: "no value" }, "") : el("td", { class: num[i] ? "num" : null }, grp[i] ? fmtNumber(v) : v))));
  if (rows.length === 0) {
    body.push(el("tr", {}, el("td", { colspan: Math.max(columns.length, 1), class: "empty" }, opts.empty || "No rows.")));
  }
  return el("table", { class: "grid data" + (opts.class ? " " + opts.class : "") },
    el("thead", {}, head), el("tbody", {}, body));
}

/** busy disables a button while an async action runs, then re-enables it. */
export async function busy(button, label, fn) {
  const old = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  if (label) button.textContent = label;
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = old;
  }
}

/** quoteIdent quotes a SQL name unless it is a plain lower-case one. */
export function quoteIdent(name) {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : '"' + name.replaceAll('"', '""') + '"';
}
