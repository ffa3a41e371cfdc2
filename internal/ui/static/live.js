// Live tables: a block marked data-refresh (a URL of the block alone) and
// data-active (something in it is still running) is reloaded every two
// seconds until nothing in it is active. Focus inside it is kept when the
// focused link is still there after the reload. A page's script that has
// just changed what a block shows (an action on the exception queue)
// dispatches "kalla:refresh" on document to reload every live block now.
const INTERVAL = 2000;

// timers holds each block's next scheduled refresh, so an early one
// replaces it rather than starting a second cycle.
const timers = new WeakMap();
// inflight holds the blocks being fetched; again, those asked to refresh
// meanwhile, which refresh once more as soon as the fetch ends.
const inflight = new WeakSet();
const again = new WeakSet();

// note shows (or, with "", removes) a line above the block saying the
// table is out of date, so a failing refresh is not silent.
function note(block, text) {
  let p = block.previousElementSibling;
  if (!p || !p.classList.contains("stale-note")) {
    if (!text) return;
    p = document.createElement("p");
    p.className = "stale-note";
    p.setAttribute("role", "status");
    block.before(p);
  }
  if (text) p.textContent = text;
  else p.remove();
  block.toggleAttribute("data-stale", !!text);
}

async function refresh(block) {
  const old = block;
  inflight.add(old);
  try {
    const resp = await fetch(block.dataset.refresh, { headers: { "X-Kalla-UI": "1" }, credentials: "same-origin" });
    if (!resp.ok) throw new Error(`the server answered ${resp.status}`);
    const tmp = document.createElement("div");
    tmp.innerHTML = await resp.text();
    const fresh = tmp.querySelector("[data-refresh]");
    if (!fresh) throw new Error("the answer had no table");
    const focused = document.activeElement && block.contains(document.activeElement) ? document.activeElement.getAttribute("href") : null;
    block.replaceWith(fresh);
    if (focused) {
      const back = fresh.querySelector(`a[href="${CSS.escape(focused)}"]`);
      if (back) back.focus();
    }
    block = fresh;
    note(block, "");
  } catch (e) {
    note(block, "Could not refresh this table: " + e.message + ". Retrying…");
  }
  inflight.delete(old);
  const soon = again.has(old);
  again.delete(old);
  if (block.hasAttribute("data-active")) timers.set(block, setTimeout(() => refresh(block), soon ? 0 : INTERVAL));
}

for (const block of document.querySelectorAll("[data-refresh][data-active]")) {
  timers.set(block, setTimeout(() => refresh(block), INTERVAL));
}

document.addEventListener("kalla:refresh", () => {
  for (const block of document.querySelectorAll("[data-refresh][data-active]")) {
    if (inflight.has(block)) {
      again.add(block);
      continue;
    }
    clearTimeout(timers.get(block));
    timers.delete(block);
    refresh(block);
  }
});
