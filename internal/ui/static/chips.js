// A filter bar: each condition {column, op, value} is a removable chip, and
// an editor adds a condition or changes the one being edited. Values keep
// the text the user typed: a number is sent as a JSON number with exactly
// its digits (100.10 stays 100.10), never through a float.
import { el, isNumericType } from "./app.js";

/** OPS are the filter operators with the symbols chips show. */
export const OPS = [
  ["eq", "="], ["neq", "≠"], ["gt", ">"], ["gte", "≥"], ["lt", "<"], ["lte", "≤"],
  ["between", "between"], ["in", "in"], ["like", "like"],
  ["is_null", "is missing"], ["is_not_null", "is present"],
];
const symbol = Object.fromEntries(OPS);
/** noValue says which operators take no value: they select missing (NULL) values or the rest. */
export const noValue = (op) => op === "is_null" || op === "is_not_null";
const numberText = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/;

/** scalarJSON writes one value as JSON, a number with its own digits. */
function scalarJSON(v) {
  return v.number ? v.text : JSON.stringify(v.text);
}

/** filterJSON writes a chip as the API's filter JSON, in the order the server writes it back in messages. */
export function filterJSON(f) {
  if (noValue(f.op) && !f.array && f.values.length === 0) return '{"column":' + JSON.stringify(f.column) + ',"op":' + JSON.stringify(f.op) + "}";
  const value = f.array ? "[" + f.values.map(scalarJSON).join(",") + "]" : scalarJSON(f.values[0]);
  return '{"column":' + JSON.stringify(f.column) + ',"op":' + JSON.stringify(f.op) + ',"value":' + value + "}";
}

/** filtersJSON writes a list of chips as a JSON array. */
export function filtersJSON(list) {
  return "[" + list.map(filterJSON).join(",") + "]";
}

/** label is how a chip reads: amount ≥ 10000, payer = "Acme". */
export function label(f) {
  const show = (v) => (v.number ? v.text : "“" + v.text + "”");
  if (f.op === "between") return `${f.column} between ${show(f.values[0] || { text: "?" })} and ${show(f.values[1] || { text: "?" })}`;
  if (f.op === "in") return `${f.column} in (${f.values.map(show).join(", ")})`;
  if (noValue(f.op)) return `${f.column} ${symbol[f.op]}`;
  return `${f.column} ${symbol[f.op] || f.op} ${f.values.length ? show(f.values[0]) : "?"}`;
}

/**
 * FilterBar drives a chip list and its editor. parts: list (the <ul>),
 * column, op, value, value2 (the editor's fields), add (its button, or the
 * form's submit), form (optional). onChange(chips) runs after every
 * change.
 */
export class FilterBar {
  constructor(parts, onChange) {
    Object.assign(this, parts);
    this.onChange = onChange;
    this.chips = [];
    this.errors = new Map();
    this.columns = [];
    this.editing = -1;
    this.op.replaceChildren(...OPS.map(([v, s]) => el("option", { value: v }, v === s ? v : `${s}  (${v})`)));
    this.op.addEventListener("change", () => this.syncEditor());
    this.column.addEventListener("change", () => this.syncEditor());
    // The editor's own message: what is wrong with the condition being added.
    this.msg = el("span", { class: "chip-editor-error", role: "alert", hidden: true });
    (this.form || this.add.parentElement).append(this.msg);
    const submit = (e) => { e.preventDefault(); this.commit(); };
    if (this.form) this.form.addEventListener("submit", submit);
    else this.add.addEventListener("click", submit);
    for (const input of [this.value, this.value2]) {
      input.addEventListener("keydown", (e) => { if (e.key === "Enter") submit(e); });
    }
    this.syncEditor();
  }

  /** setColumns fills the column choice from the source's columns. */
  setColumns(columns) {
    this.columns = columns;
    const keep = this.column.value;
    this.column.replaceChildren(...columns.map((c) => el("option", { value: c.name }, `${c.name}  (${c.data_type})`)));
    if (columns.some((c) => c.name === keep)) this.column.value = keep;
  }

  /** set replaces the chips without calling onChange. */
  set(chips) {
    this.chips = chips.slice();
    this.errors.clear();
    this.render();
  }

  syncEditor() {
    const col = this.columns.find((c) => c.name === this.column.value);
    // Dates are picked with the browser's date field (it gives 2024-01-15).
    const date = !!col && /^DATE$/i.test(col.data_type) && this.op.value !== "in" && this.op.value !== "like";
    for (const input of [this.value, this.value2]) {
      const want = date ? "date" : "text";
      if (input.type !== want) { input.type = want; input.value = ""; }
    }
    const between = this.op.value === "between";
    this.value2.hidden = !between;
    this.value.hidden = noValue(this.op.value);
    this.value.placeholder = this.op.value === "in" ? "a, b, c" : between ? "from" : "value";
  }

  /** commit adds the editor's condition, or replaces the chip being edited. */
  commit() {
    const column = this.column.value;
    if (!column) { this.value.focus(); return; }
    const col = this.columns.find((c) => c.name === column);
    const numeric = col ? isNumericType(col.data_type) : false;
    const scalar = (t) => ({ text: t, number: numeric && numberText.test(t) });
    const op = this.op.value;
    const bad = this.check(col, op);
    this.showProblem(bad);
    if (bad) return;
    let f;
    if (op === "in") {
      const parts = this.value.value.split(",").map((s) => s.trim()).filter((s) => s !== "");
      f = { column, op, array: true, values: parts.map(scalar) };
    } else if (noValue(op)) {
      f = { column, op, array: false, values: [] };
    } else if (op === "between") {
      f = { column, op, array: true, values: [this.value.value.trim(), this.value2.value.trim()].map(scalar) };
    } else {
      f = { column, op, array: false, values: [scalar(this.value.value.trim())] };
    }
    if (this.editing >= 0) {
      this.chips[this.editing] = f;
      this.errors.delete(this.editing);
      this.editing = -1;
    } else {
      this.chips.push(f);
    }
    this.value.value = "";
    this.value2.value = "";
    this.setAddLabel("Add filter");
    this.render();
    this.onChange(this.chips);
  }

  /**
   * check says what is wrong with the editor's condition, as {field,
   * message}, or null: a value missing (both ends of a range are needed),
   * text where the column holds numbers, or something that is not a date
   * in a date column.
   */
  check(col, op) {
    if (noValue(op)) return null;
    const type = col ? String(col.data_type).toUpperCase() : "";
    const numeric = col ? isNumericType(col.data_type) : false;
    const fields = op === "between" ? [[this.value, "the lower value"], [this.value2, "the upper value"]] : [[this.value, "a value"]];
    for (const [input, what] of fields) {
      const v = input.value.trim();
      if (v === "") {
        return { field: input, message: op === "between" ? `Give both ends of the range: ${what} is missing.` : `Give ${what} to compare ${col ? col.name : "the column"} with.` };
      }
      const parts = op === "in" ? v.split(",").map((x) => x.trim()).filter((x) => x !== "") : [v];
      for (const x of parts) {
        if (numeric && op !== "like" && !numberText.test(x)) return { field: input, message: `${col.name} holds numbers: “${x}” is not a number (write 1234.50, with a point).` };
        if (type === "DATE" && op !== "like" && !/^\d{4}-\d{2}-\d{2}$/.test(x)) return { field: input, message: `${col.name} holds dates: “${x}” is not a date (pick one, or write 2024-01-15).` };
      }
    }
    return null;
  }

  /** showProblem shows the editor's problem next to it and moves focus to the field at fault. */
  showProblem(p) {
    for (const input of [this.value, this.value2]) input.removeAttribute("aria-invalid");
    if (!p) {
      this.msg.hidden = true;
      this.msg.textContent = "";
      return;
    }
    this.msg.textContent = p.message;
    this.msg.hidden = false;
    p.field.setAttribute("aria-invalid", "true");
    p.field.focus();
  }

  setAddLabel(text) {
    const b = this.form ? this.form.querySelector("button[type=submit]") : this.add;
    if (b) b.textContent = text;
  }

  remove(i) {
    this.chips.splice(i, 1);
    this.errors.clear();
    if (this.editing === i) { this.editing = -1; this.setAddLabel("Add filter"); }
    this.render();
    this.onChange(this.chips);
    this.value.focus();
  }

  edit(i) {
    const f = this.chips[i];
    this.editing = i;
    this.column.value = f.column;
    this.op.value = f.op;
    this.syncEditor();
    if (f.op === "in") this.value.value = f.values.map((v) => v.text).join(", ");
    else this.value.value = f.values[0] ? f.values[0].text : "";
    this.value2.value = f.op === "between" && f.values[1] ? f.values[1].text : "";
    this.setAddLabel("Update filter");
    this.render();
    this.value.focus();
  }

  /**
   * setErrors marks chips with the server's message (a Map index → message)
   * and moves focus to the first chip at fault. A filter's JSON quoted in a
   * message is shown as the chip reads.
   */
  setErrors(errors) {
    this.errors = new Map([...errors].map(([i, m]) => [i, humanize(m, this.chips)]));
    this.render();
    if (this.errors.size) {
      const first = Math.min(...this.errors.keys());
      const b = this.list.querySelectorAll("li.chip")[first];
      if (b) b.querySelector(".chip-label").focus();
    }
  }

  render() {
    this.list.replaceChildren(...this.chips.map((f, i) => {
      const text = label(f);
      const err = this.errors.get(i);
      return el("li", { class: "chip" + (err ? " chip-bad" : "") + (i === this.editing ? " chip-editing" : "") },
        el("button", { type: "button", class: "chip-label", title: "Change this filter", "aria-label": `Change filter ${text}`, onclick: () => this.edit(i) }, text),
        el("button", { type: "button", class: "chip-remove", "aria-label": `Remove filter ${text}`, onclick: () => this.remove(i) }, "×"),
        err ? el("span", { class: "chip-error", role: "alert" }, err) : null);
    }));
    this.list.hidden = this.chips.length === 0;
  }
}

/**
 * attributeErrors finds which chips a failed load is about: a chip whose
 * JSON the server's message quotes, else each chip the server refuses on
 * its own (probe(chip) resolves to a message or null). Returns the map
 * for setErrors; empty when no single chip is at fault.
 */
export async function attributeErrors(chips, message, probe) {
  const errors = new Map();
  chips.forEach((f, i) => { if (message.includes(filterJSON(f))) errors.set(i, message); });
  if (!probe) return errors;
  // Every chip the server refuses is marked, not only the one it named.
  await Promise.all(chips.map(async (f, i) => {
    if (errors.has(i)) return;
    const m = await probe(f);
    if (m) errors.set(i, m);
  }));
  return errors;
}

/** humanize writes a filter's JSON quoted in a message as its chip reads. */
export function humanize(message, chips) {
  let m = String(message);
  for (const f of chips) m = m.split(filterJSON(f)).join(label(f));
  // Any other filter JSON left: say the column and what it asked.
  return m.replace(/\{"column":"([^"]+)","op":"([a-z_]+)"(,"value":[^}]*)?\}/g, (_, c, op) => `the filter on ${c} (${symbol[op] || op})`);
}
