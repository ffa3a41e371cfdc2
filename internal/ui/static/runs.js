// Runs page: start a run from a recipe. The form's button is enabled, and
// the form marked data-ready, only once the submit handler is attached.
import { api, showError, clearError, busy } from "./app.js";

const form = document.getElementById("start-form");
if (form) {
  if (location.hash === "#start") form.recipe_id.focus();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const box = form.querySelector(".alert");
    clearError(box);
    await busy(form.querySelector("button[type=submit]"), "Starting…", async () => {
      try {
        const body = { recipe_id: form.recipe_id.value };
        // The engine choice is there only when the server has Spark.
        if (form.engine && form.engine.value) body.engine = form.engine.value;
        const r = await api("POST", "/api/runs", body);
        location.assign("/runs/" + encodeURIComponent(r.run_id));
      } catch (err) {
        showError(box, err);
      }
    });
  });
  // The button is served disabled: the form has no action of its own, and
  // a press before this handler exists would submit it natively (a GET of
  // this page) and start nothing. Enabled now, and the form marked ready
  // for whoever waits on it (the browser tests).
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = false;
  submit.removeAttribute("title");
  form.dataset.ready = "true";
}
