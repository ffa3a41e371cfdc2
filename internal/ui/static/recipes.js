// Recipes page: run a recipe, delete one.
import { api, showError, busy } from "./app.js";

const box = document.getElementById("recipes-error");

for (const b of document.querySelectorAll("[data-run]")) {
  b.addEventListener("click", () => busy(b, "Starting…", async () => {
    try {
      const r = await api("POST", "/api/runs", { recipe_id: b.dataset.run });
      location.assign("/runs/" + encodeURIComponent(r.run_id));
    } catch (e) {
      showError(box, e);
    }
  }));
}

for (const b of document.querySelectorAll("[data-delete]")) {
  b.addEventListener("click", async () => {
    const id = b.dataset.delete;
    if (!confirm(`Delete recipe “${id}”? Its runs keep their own copy of it.`)) return;
    try {
      await api("DELETE", `/api/recipes/${encodeURIComponent(id)}`);
      location.assign("/recipes?deleted=" + encodeURIComponent(id));
    } catch (e) {
      showError(box, e);
    }
  });
}
