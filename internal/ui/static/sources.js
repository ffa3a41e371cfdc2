// Sources page: test each source's connection, register a source by URI
// (the password field is joined into the URI only in the request that
// registers it) or by uploading a file, and delete a source.
import { api, el, showError, clearError, fmtInt, busy, table } from "./app.js";

// Health: a one-row scoped load opens the source and asks it a question;
// its count is exact when cheap, else a lower bound said as one.
for (const cell of document.querySelectorAll("[data-health]")) {
  const alias = cell.dataset.health;
  api("POST", `/api/sources/${encodeURIComponent(alias)}/load-scoped`, { conditions: [], limit: 1 })
    .then((r) => cell.replaceChildren(el("span", { class: "health-ok" }, "● reachable"), " ",
      el("span", { class: "muted" }, `${r.total_kind === "at_least" ? "at least " : ""}${fmtInt(r.total_rows)} rows`)))
    .catch((e) => cell.replaceChildren(el("span", { class: "health-bad" }, "● failing"), " ", el("span", { class: "health-msg" }, e.message)));
}

for (const b of document.querySelectorAll("[data-delete]")) {
  b.addEventListener("click", async () => {
    const alias = b.dataset.delete;
    if (!confirm(`Delete source “${alias}”? Recipes that use its URI keep working.`)) return;
    try {
      await api("DELETE", `/api/sources/${encodeURIComponent(alias)}`);
      location.assign("/sources?deleted=" + encodeURIComponent(alias));
    } catch (e) {
      showError(document.getElementById("table-error"), e);
    }
  });
}

/**
 * withPassword puts the password into a URI's user-info part:
 * postgres://user@host/db + "s3cr:t" → postgres://user:s3cr%3At@host/db.
 */
export function withPassword(uri, password) {
  if (!password) return uri;
  const m = uri.match(/^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/is);
  if (!m) throw new Error("A password goes with a URI such as postgres://user@host:5432/db?table=t; this one has no user@host part.");
  const at = m[2].lastIndexOf("@");
  if (at < 0) throw new Error("Put the user name in the URI (postgres://user@host:5432/…) so the password has a user to go with.");
  const user = m[2].slice(0, at);
  if (user.includes(":")) throw new Error("The URI already has a password (user:password@…). Leave it out of the URI and type it in the password field.");
  return m[1] + user + ":" + encodeURIComponent(password) + "@" + m[2].slice(at + 1) + m[3];
}

// takenAlias asks before a registration replaces a source of that alias:
// the server re-registers an alias by design (a moved file, a new
// password), and every recipe naming the alias then reads the new data,
// so a user who picked a name already in use is told once, with what it
// now reads; submitting again with the same alias replaces it.
function takenAlias(form, box, alias) {
  const row = [...document.querySelectorAll("tr[data-alias]")].find((r) => r.dataset.alias === alias);
  if (!row || form.dataset.replace === alias) return false;
  form.dataset.replace = alias;
  const uri = row.querySelector("td.mono")?.textContent.trim() || "";
  showError(box, `A source named “${alias}” is already registered${uri ? ` (${uri})` : ""}. Registering replaces it for every recipe that names it: press the button again to replace it, or choose another alias.`);
  form.alias.focus();
  return true;
}

const uriForm = document.getElementById("uri-form");
uriForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const box = uriForm.querySelector(".alert");
  clearError(box);
  const alias = uriForm.alias.value.trim();
  const password = uriForm.password.value;
  let uri;
  try {
    if (!alias) throw new Error("Give the source an alias.");
    if (!uriForm.uri.value.trim()) throw new Error("Give the source's URI.");
    uri = withPassword(uriForm.uri.value.trim(), password);
  } catch (err) {
    showError(box, err);
    return;
  }
  if (takenAlias(uriForm, box, alias)) return;
  await busy(uriForm.querySelector("button[type=submit]"), "Testing the connection…", async () => {
    try {
      await api("POST", "/api/sources", { alias, uri, source_type: uriForm.source_type.value });
      uriForm.password.value = "";
      location.assign("/sources?registered=" + encodeURIComponent(alias));
    } catch (err) {
      showError(box, err);
    }
  });
});

const upForm = document.getElementById("upload-form");
const upFields = ["delimiter", "decimal_separator", "date_format", "encoding"];
const upPreview = document.getElementById("up-preview");
const upDetected = document.getElementById("up-detected");

/** uploadBody is the form as POST /api/uploads takes it: the settings first, then the file. */
function uploadBody(file, checkOnly) {
  const fd = new FormData();
  for (const f of upFields) if (upForm[f].value) fd.append(f, upForm[f].value);
  if (checkOnly) fd.append("check_only", "true");
  fd.append("file", file);
  return fd;
}

const delimiterName = { ",": "comma", ";": "semicolon", "\t": "tab", "|": "bar" };

/** showUpload shows what Kalla detected and the first rows as they will be read. */
function showUpload(up) {
  if (up.csv) {
    const d = up.csv.detected || up.csv;
    const parts = [`columns separated by ${delimiterName[d.delimiter] || d.delimiter}`, `decimal ${d.decimal_separator === "," ? "comma" : "point"}`,
      d.date_format ? `dates written ${d.date_format}` : "dates ISO (or text)", `encoding ${d.encoding}`];
    upDetected.textContent = "Detected: " + parts.join(", ") + "." +
      (up.csv.decimal_columns && up.csv.decimal_columns.length ? ` Decimal commas read in ${up.csv.decimal_columns.join(", ")}.` : "") +
      (up.csv.date_columns && up.csv.date_columns.length ? ` Dates read in ${up.csv.date_columns.join(", ")}.` : "");
    // Fill in what was detected where the user left "detect".
    const used = { delimiter: up.csv.delimiter === "\t" ? "\\t" : up.csv.delimiter, decimal_separator: up.csv.decimal_separator, date_format: up.csv.date_format || "", encoding: up.csv.encoding };
    for (const f of upFields) if (!upForm[f].value && [...upForm[f].options].some((o) => o.value === used[f])) upForm[f].value = used[f];
  } else {
    upDetected.textContent = "";
  }
  upPreview.replaceChildren(
    el("p", { class: "small muted" }, `${fmtInt(up.row_count)} rows, ${up.columns.length} columns: ${up.columns.map((c) => `${c.name} (${c.data_type})`).join(", ")}.`),
    table(up.columns, up.rows || []));
  upPreview.hidden = false;
}

/**
 * fieldAtFault is the upload setting a refusal is about, by what the
 * server's message says (a number not written with the decimal separator
 * chosen, a date not in the format, text not in the encoding, rows split
 * into a different number of fields), else the file itself: focus goes
 * there, so the user changes the right thing.
 */
function fieldAtFault(message) {
  if (/decimal (comma|point)|decimal separator/i.test(message)) return upForm.decimal_separator;
  if (/not a date|date format|dates? written/i.test(message)) return upForm.date_format;
  if (/UTF-8|encoding|windows-1252|latin-1/i.test(message)) return upForm.encoding;
  if (/number of fields|separated|delimiter/i.test(message)) return upForm.delimiter;
  return upForm.file;
}

async function checkUpload() {
  const box = upForm.querySelector(".alert");
  clearError(box);
  const file = upForm.file.files[0];
  if (!file) { showError(box, "Choose a file to upload."); upForm.file.focus(); return; }
  if (!/\.(csv|tsv)$/i.test(file.name)) return;
  await busy(document.getElementById("up-check"), "Checking…", async () => {
    try {
      showUpload(await api("POST", "/api/uploads", uploadBody(file, true)));
    } catch (err) {
      upPreview.hidden = true;
      showError(box, err);
      fieldAtFault(err.message).focus();
    }
  });
}

upForm.file.addEventListener("change", () => { for (const f of upFields) upForm[f].value = ""; checkUpload(); });
for (const f of upFields) upForm[f].addEventListener("change", () => { if (upForm.file.files[0]) checkUpload(); });
document.getElementById("up-check").addEventListener("click", checkUpload);
upForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const box = upForm.querySelector(".alert");
  const status = upForm.querySelector(".status");
  clearError(box);
  const alias = upForm.alias.value.trim();
  const file = upForm.file.files[0];
  if (!alias) { showError(box, "Give the source an alias."); upForm.alias.focus(); return; }
  if (!file) { showError(box, "Choose a file to upload."); upForm.file.focus(); return; }
  if (takenAlias(upForm, box, alias)) return;
  await busy(upForm.querySelector("button[type=submit]"), "Uploading…", async () => {
    try {
      status.textContent = `Uploading ${file.name} (${fmtInt(file.size)} bytes)…`;
      let up;
      try {
        up = await api("POST", "/api/uploads", uploadBody(file, false));
      } catch (err) {
        status.textContent = "";
        showError(box, err);
        fieldAtFault(err.message).focus();
        return;
      }
      status.textContent = `Uploaded: ${fmtInt(up.row_count)} rows, ${up.columns.length} columns. Registering…`;
      await api("POST", "/api/sources", { alias, uri: up.uri, source_type: up.source_type });
      location.assign("/sources?registered=" + encodeURIComponent(alias));
    } catch (err) {
      status.textContent = "";
      showError(box, err);
    }
  });
});

// A file chosen before this script ran (a slow page load, or a form the
// browser restored) fired its change event with nobody listening: check it
// now. Every handler of the form is attached by here, so the form is marked
// ready for whoever waits on it (the browser tests choose a file only once
// it is).
if (upForm.file.files[0]) checkUpload();
upForm.dataset.ready = "true";
