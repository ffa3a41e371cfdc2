// Runs page: start a run from a recipe.
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
        const r = await api("POST", "/api/runs", { recipe_id: form.recipe_id.value });
        location.assign("/runs/" + encodeURIComponent(r.run_id));
      } catch (err) {
        showError(box, err);
      }
    });
  });
}
