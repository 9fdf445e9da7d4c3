// The dashboard shell: the API key (entered once, kept in localStorage) and a hash router
// that renders one view module at a time. A view's render() may return a cleanup function
// (to stop its streams and timers) that runs when the user navigates away.

import { api, esc, getKey, setKey } from "./api.js";
import * as compare from "./views/compare.js";
import * as datasets from "./views/datasets.js";
import * as jobs from "./views/jobs.js";
import * as job from "./views/job.js";
import * as models from "./views/models.js";
import * as playground from "./views/playground.js";
import * as sweep from "./views/sweep.js";
import * as sweeps from "./views/sweeps.js";
import * as tryit from "./views/tryit.js";

const ROUTES = [
  [/^#\/jobs\/([^/]+)$/, job, "jobs"],
  [/^#\/jobs$/, jobs, "jobs"],
  [/^#\/compare(?:\?(.*))?$/, compare, "jobs"],
  [/^#\/playground$/, playground, "playground"],
  [/^#\/sweeps\/([^/]+)$/, sweep, "sweeps"],
  [/^#\/sweeps$/, sweeps, "sweeps"],
  [/^#\/datasets$/, datasets, "datasets"],
  [/^#\/models\/([^/]+)$/, models, "models"],
  [/^#\/models$/, models, "models"],
  [/^#\/try$/, tryit, "try"],
];

const view = document.getElementById("view");
let cleanup = null;

async function whoami() {
  const label = document.getElementById("whoami");
  if (!getKey()) {
    label.textContent = "no key";
    return false;
  }
  try {
    const me = await api("/v1/whoami");
    label.textContent = `signed in as ${me.owner}`;
    return true;
  } catch (error) {
    label.textContent = error.status === 401 ? "key rejected" : "";
    return error.status !== 401;
  }
}

async function route() {
  if (cleanup) cleanup();
  cleanup = null;
  const hash = location.hash || "#/jobs";
  const match = ROUTES.find(([pattern]) => pattern.test(hash));
  if (!match) {
    location.hash = "#/jobs";
    return;
  }
  const [pattern, module, nav] = match;
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === nav);
  }
  if (!getKey()) {
    view.innerHTML = `<div class="card notice">Enter your API key above to start. A new server
      writes its admin key to <code>&lt;data dir&gt;/admin-key</code>; make more with
      <code>nn-service keys create</code>. The key stays in this browser (localStorage).</div>`;
    return;
  }
  const params = hash.match(pattern).slice(1).map(decodeURIComponent);
  view.innerHTML = "";
  try {
    cleanup = (await module.render(view, ...params)) || null;
  } catch (error) {
    view.innerHTML = `<div class="error">${esc(error.message)}</div>`;
  }
}

document.getElementById("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("key-input");
  if (input.value.trim()) setKey(input.value.trim());
  input.value = "";
  await whoami();
  route();
});

document.getElementById("key-forget").addEventListener("click", () => {
  setKey("");
  whoami();
  route();
});

window.addEventListener("hashchange", route);
whoami();
route();
