// Structured rules built with form controls: passes (strictest first),
// each with a pattern (1:1, a split 1:N, a batch N:1, groups N:M) and
// conditions relating a left column to a right column: equal (with
// normalisations and parts to strip), an amount within a tolerance
// (absolute or a percentage), a date within a window of days, contains,
// starts or ends with, similar text, or a comparison. The JSON the API
// takes is written from the form and kept in a textarea for those who
// want to read or edit it; the form is redrawn from that JSON when it is
// edited there.
import { el } from "./app.js";

export const OPS = [
  ["eq", "equals"],
  ["tolerance", "amount within"],
  ["date_within", "date within"],
  ["contains", "contains"],
  ["starts_with", "starts with"],
  ["ends_with", "ends with"],
  ["fuzzy", "is similar to"],
  ["gt", "is greater than"],
  ["gte", "is at least"],
  ["lt", "is less than"],
  ["lte", "is at most"],
];

export const PATTERNS = [
  ["1:1", "one record with one record (1:1)"],
  ["1:N", "one left record with several right records whose amounts sum to it (1:N, split payments)"],
  ["N:1", "several left records with one right record: sums (N:1, batches)"],
  ["N:M", "groups on both sides sharing a key: sums (N:M)"],
];

/** shift moves a decimal string's point by n places, exactly: shift("2", -2) is "0.02". */
export function shift(s, n) {
  s = String(s).trim();
  const neg = s.startsWith("-");
  if (neg) s = s.slice(1);
  let [i, f = ""] = s.split(".");
  let digits = i + f;
  let point = i.length + n;
  if (point < 0) { digits = "0".repeat(-point) + digits; point = 0; }
  if (point > digits.length) digits += "0".repeat(point - digits.length);
  let ip = digits.slice(0, point).replace(/^0+(?=\d)/, "") || "0";
  let fp = digits.slice(point).replace(/0+$/, "");
  return (neg ? "-" : "") + ip + (fp ? "." + fp : "");
}

const decimal = /^[0-9]+(\.[0-9]+)?$/;

/** kindOf is a column type's family: number, date or text. */
export function kindOf(type) {
  const t = String(type || "").toUpperCase();
  if (/DATE|TIME/.test(t)) return "date";
  if (/INT|DEC|NUM|DOUBLE|FLOAT|REAL/.test(t)) return "number";
  return "text";
}

/** measure reports whether a column type holds amounts (fractional numbers). */
export function measure(type) {
  return /DEC|NUM|DOUBLE|FLOAT|REAL|MONEY/i.test(String(type || ""));
}

/**
 * defaultCondition is a condition for a pair of columns with defaults learnt
 * from the columns: amounts within 2 %, dates within 7 days either way, the
 * rest equal ignoring blanks and case.
 */
export function defaultCondition(left, right, leftType, rightType) {
  if (measure(leftType) && measure(rightType)) return { op: "tolerance", left, right, pct: 0.02 };
  if (kindOf(leftType) === "date" && kindOf(rightType) === "date") return { op: "date_within", left, right, days: 7 };
  return { op: "eq", left, right };
}

/** RuleForm edits a list of rules with form controls. */
export class RuleForm {
  /**
   * root holds the passes; json is the textarea kept in step; columns()
   * returns {left: [...], right: [...]} columns; changed() is called on
   * every change.
   */
  constructor(root, json, columns, changed) {
    this.root = root;
    this.json = json;
    this.columns = columns;
    this.changed = changed;
    this.rules = [];
    this.problem = null;
    json.addEventListener("input", () => {
      try {
        const r = JSON.parse(json.value || "[]");
        if (!Array.isArray(r)) throw new Error("the rules are a list: [ {…}, … ]");
        this.rules = r;
        this.problem = null;
        this.render();
      } catch (e) {
        this.problem = "The rules written as JSON are not valid: " + e.message;
      }
      this.changed();
    });
    try {
      this.rules = json.value.trim() ? JSON.parse(json.value) : [];
    } catch (e) {
      this.rules = [];
      this.problem = "The rules written as JSON are not valid: " + e.message;
    }
  }

  /** set replaces the rules and redraws the form. */
  set(rules) {
    this.rules = structuredClone(rules || []);
    this.problem = null;
    this.sync();
    this.render();
  }

  /** value is the rules as the API takes them; throws when they cannot be. */
  value() {
    if (this.problem) throw new Error(this.problem);
    return this.rules;
  }

  sync() {
    this.json.value = this.rules.length ? JSON.stringify(this.rules, null, 2) : "";
    this.changed();
  }

  /** add appends a pass with the given conditions. */
  add(name, conditions, pattern) {
    const r = { name, conditions };
    if (pattern && pattern !== "1:1") r.pattern = pattern;
    this.rules.push(r);
    this.sync();
    this.render();
  }

  colSelect(id, side, value, label, onchange) {
    const cols = this.columns()[side] || [];
    const names = cols.map((c) => c.name);
    if (value && !names.includes(value)) names.unshift(value);
    const s = el("select", { id }, names.map((n) => el("option", { value: n }, n)));
    s.value = value || "";
    s.addEventListener("change", () => onchange(s.value));
    return [el("label", { for: id, class: "sr-only" }, label), s];
  }

  render() {
    const cols = this.columns();
    const typeOf = (side, name) => ((cols[side] || []).find((c) => c.name === name) || {}).data_type;
    const passes = this.rules.map((rule, ri) => {
      const p = `rule-${ri}`;
      const name = el("input", { id: p + "-name", value: rule.name || "", autocomplete: "off" });
      name.addEventListener("input", () => { rule.name = name.value; this.sync(); });
      const pattern = el("select", { id: p + "-pattern" }, PATTERNS.map(([v, t]) => el("option", { value: v }, t)));
      pattern.value = rule.pattern || "1:1";
      pattern.addEventListener("change", () => {
        if (pattern.value === "1:1") delete rule.pattern; else rule.pattern = pattern.value;
        this.sync();
      });
      const conds = (rule.conditions || []).map((c, ci) => this.condition(rule, c, `${p}-c-${ci}`, typeOf));
      const score = (key, label) => {
        const id = `${p}-${key.replace("_", "-")}`;
        const i = el("input", { id, type: "text", inputmode: "decimal", class: "narrow", value: rule[key] ?? "", autocomplete: "off", placeholder: "0–1" });
        i.addEventListener("input", () => {
          const v = i.value.trim();
          if (v === "") { delete rule[key]; i.removeAttribute("aria-invalid"); } else if (decimal.test(v) && Number(v) <= 1) { rule[key] = Number(v); i.removeAttribute("aria-invalid"); } else { i.setAttribute("aria-invalid", "true"); }
          this.sync();
        });
        return el("div", { class: "stack" }, el("label", { for: id }, label), i);
      };
      const addCond = el("button", { type: "button", id: p + "-add", class: "small" }, "Add a condition");
      addCond.addEventListener("click", () => {
        const l = (cols.left || [])[0], r = (cols.right || [])[0];
        rule.conditions = rule.conditions || [];
        rule.conditions.push(defaultCondition(l ? l.name : "", r ? r.name : "", l && l.data_type, r && r.data_type));
        this.sync();
        this.render();
        const sel = document.getElementById(`${p}-c-${rule.conditions.length - 1}-left`);
        if (sel) sel.focus();
      });
      const remove = el("button", { type: "button", id: p + "-remove", class: "small" }, "Remove this pass");
      remove.addEventListener("click", () => {
        this.rules.splice(ri, 1);
        this.sync();
        this.render();
      });
      return el("fieldset", { class: "rule-pass", "data-rule": ri },
        el("legend", {}, `Pass ${ri + 1}`),
        el("div", { class: "rule-head" },
          el("div", { class: "stack" }, el("label", { for: p + "-name" }, "Name"), name),
          el("div", { class: "stack" }, el("label", { for: p + "-pattern" }, "Records pair"), pattern),
          score("min_score", "Drop pairs scoring below"), score("auto_confirm", "Confirm pairs scoring at least")),
        el("ul", { class: "conds", "aria-label": `Conditions of pass ${ri + 1}` }, conds),
        el("div", { class: "toolbar" }, addCond, remove));
    });
    this.root.replaceChildren(...(passes.length ? passes : [el("p", { class: "muted" }, "No passes yet: add one, or take the suggested rules.")]));
  }

  condition(rule, c, p, typeOf) {
    const redraw = () => { this.sync(); this.render(); };
    const left = this.colSelect(p + "-left", "left", c.left, "Left column", (v) => { c.left = v; this.sync(); });
    const right = this.colSelect(p + "-right", "right", c.right, "Right column", (v) => { c.right = v; this.sync(); });
    const op = el("select", { id: p + "-op" }, OPS.map(([v, t]) => el("option", { value: v }, t)));
    op.value = c.op;
    op.addEventListener("change", () => {
      const keep = { op: op.value, left: c.left, right: c.right };
      for (const k of Object.keys(c)) delete c[k];
      Object.assign(c, keep);
      // Defaults for the new kind of comparison.
      if (op.value === "tolerance") c.pct = 0.02;
      if (op.value === "date_within") c.days = 7;
      if (op.value === "fuzzy") c.threshold = 0.9;
      redraw();
      const again = document.getElementById(p + "-op");
      if (again) again.focus();
    });
    const extra = [];
    const num = (id, label, value, attrs, set) => {
      const i = el("input", Object.assign({ id, type: "text", inputmode: "decimal", value: value ?? "", class: "narrow", autocomplete: "off" }, attrs));
      i.addEventListener("input", () => { set(i.value.trim()); this.sync(); });
      return [el("label", { for: id }, label), i];
    };
    switch (c.op) {
      case "tolerance": {
        const pct = c.pct !== undefined && c.pct !== "";
        const shown = pct ? shift(c.pct, 2) : (c.abs ?? "");
        const unit = el("select", { id: p + "-unit" }, el("option", { value: "pct" }, "%"), el("option", { value: "abs" }, "in the amount's unit"));
        unit.value = pct ? "pct" : "abs";
        const [lab, input] = num(p + "-tol", "by at most", shown, {}, (v) => this.setTolerance(c, v, unit.value, input));
        unit.addEventListener("change", () => { delete c.abs; this.setTolerance(c, input.value.trim(), unit.value, input); this.sync(); this.render(); });
        extra.push(lab, input, el("label", { for: p + "-unit", class: "sr-only" }, "Tolerance unit"), unit);
        if (pct) {
          const of = el("select", { id: p + "-pctof" }, el("option", { value: "" }, "of the left amount"), el("option", { value: "larger" }, "of the larger amount"));
          of.value = c.pct_of === "larger" ? "larger" : "";
          of.addEventListener("change", () => { if (of.value) c.pct_of = of.value; else delete c.pct_of; this.sync(); });
          extra.push(el("label", { for: p + "-pctof", class: "sr-only" }, "Percentage of"), of);
          // Both allowances, either sufficing: within 2 % or within 1.00
          // (small amounts, where a percentage is less than a rounding).
          const [alab, abs] = num(p + "-abs", "or by at most", c.abs ?? "", { "aria-describedby": p + "-abs-unit" }, (v) => {
            delete c.abs;
            abs.removeAttribute("aria-invalid");
            this.problem = null;
            if (v === "") return;
            if (!decimal.test(v)) {
              abs.setAttribute("aria-invalid", "true");
              this.problem = `A tolerance is a number such as 2 or 0.5, not “${v}”.`;
              return;
            }
            c.abs = Number(v);
          });
          extra.push(alab, abs, el("span", { id: p + "-abs-unit", class: "muted small" }, "in the amount's unit (optional)"));
        }
        break;
      }
      case "date_within": {
        const [lab, input] = num(p + "-days", "days", c.days ?? "", { inputmode: "numeric" }, (v) => {
          if (/^[0-9]+$/.test(v)) { c.days = Number(v); input.removeAttribute("aria-invalid"); } else { input.setAttribute("aria-invalid", "true"); }
        });
        const dir = el("select", { id: p + "-dir" },
          el("option", { value: "" }, "either way"), el("option", { value: "after" }, "right on or after left"), el("option", { value: "before" }, "right on or before left"));
        dir.value = c.direction || "";
        dir.addEventListener("change", () => { if (dir.value) c.direction = dir.value; else delete c.direction; this.sync(); });
        extra.push(input, lab, el("label", { for: p + "-dir", class: "sr-only" }, "Direction"), dir);
        break;
      }
      case "fuzzy": {
        const [lab, input] = num(p + "-threshold", "similarity at least", c.threshold ?? "", {}, (v) => { if (decimal.test(v)) c.threshold = Number(v); });
        extra.push(lab, input);
        break;
      }
      case "contains":
      case "starts_with":
      case "ends_with": {
        const h = el("select", { id: p + "-hay" }, el("option", { value: "" }, "the right value holds the left"), el("option", { value: "left" }, "the left value holds the right"));
        h.value = c.haystack === "left" ? "left" : "";
        h.addEventListener("change", () => { if (h.value) c.haystack = h.value; else delete c.haystack; this.sync(); });
        extra.push(el("label", { for: p + "-hay", class: "sr-only" }, "Which side holds the other"), h);
        break;
      }
    }
    if (c.op === "eq" && kindOf(typeOf("left", c.left)) === "date") {
      const tr = el("select", { id: p + "-truncate" }, [["", "the same day"], ["week", "the same week"], ["month", "the same month"], ["quarter", "the same quarter"], ["year", "the same year"]].map(([v, t]) => el("option", { value: v }, t)));
      tr.value = c.truncate && c.truncate !== "day" ? c.truncate : "";
      tr.addEventListener("change", () => { if (tr.value) c.truncate = tr.value; else delete c.truncate; this.sync(); });
      extra.push(el("label", { for: p + "-truncate" }, "in"), tr);
    }
    if (["eq", "contains", "starts_with", "ends_with", "fuzzy"].includes(c.op) && kindOf(typeOf("left", c.left)) !== "number" && kindOf(typeOf("left", c.left)) !== "date") {
      const norms = [["trim", "ignore blanks"], ["casefold", "ignore case"], ["alnum", "letters and digits only"]].map(([n, t]) => {
        const id = `${p}-norm-${n}`;
        const box = el("input", { type: "checkbox", id, checked: (c.normalize || []).includes(n) });
        box.addEventListener("change", () => {
          const set = new Set(c.normalize || []);
          if (box.checked) set.add(n); else set.delete(n);
          c.normalize = ["trim", "casefold", "alnum"].filter((x) => set.has(x));
          if (!c.normalize.length) delete c.normalize;
          this.sync();
        });
        return el("label", { class: "inline", for: id }, box, " " + t);
      });
      extra.push(el("span", { class: "norms" }, norms));
      if (c.op === "eq") {
        for (const side of ["left", "right"]) {
          const key = "strip_" + side;
          const id = `${p}-strip-${side}`;
          const i = el("input", { id, value: c[key] || "", autocomplete: "off", class: "mono narrowish", placeholder: "e.g. -PART[0-9]+$" });
          i.addEventListener("input", () => { if (i.value) c[key] = i.value; else delete c[key]; this.sync(); });
          extra.push(el("label", { for: id }, `remove from the ${side} value`), i);
        }
      }
    }
    const remove = el("button", { type: "button", id: p + "-remove", class: "small", "aria-label": `Remove condition ${c.left} ${c.op} ${c.right}` }, "Remove");
    remove.addEventListener("click", () => {
      rule.conditions.splice(rule.conditions.indexOf(c), 1);
      redraw();
    });
    return el("li", { class: "cond" },
      el("span", { class: "cond-main" }, left, el("label", { for: p + "-op", class: "sr-only" }, "Comparison"), op, right),
      extra.length ? el("span", { class: "cond-extra" }, extra) : null, remove);
  }

  setTolerance(c, v, unit, input) {
    // A percentage keeps its optional absolute allowance ("-abs").
    if (unit !== "pct") delete c.abs;
    delete c.pct;
    if (!decimal.test(v)) {
      input.setAttribute("aria-invalid", "true");
      this.problem = `A tolerance is a number such as 2 or 0.5, not “${v}”.`;
      return;
    }
    input.removeAttribute("aria-invalid");
    this.problem = null;
    if (unit === "pct") c.pct = Number(shift(v, -2));
    else c.abs = Number(v);
  }
}
