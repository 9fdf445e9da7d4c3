// Sweeps: the caller's hyperparameter sweeps, newest first, refreshed while any is running.

import { api, esc, when } from "../api.js";

const ACTIVE = new Set(["queued", "running"]);

function rowHtml(sweep) {
  const c = sweep.counts;
  const ended = c.complete + c.pruned + c.failed + c.cancelled;
  const percent = (100 * ended) / sweep.n_trials;
  const detail = ["complete", "pruned", "failed", "running"]
    .filter((s) => c[s])
    .map((s) => `${c[s]} ${s}`)
    .join(" · ");
  return `<tr class="clickable" data-id="${esc(sweep.id)}">
    <td><a href="#/sweeps/${encodeURIComponent(sweep.id)}">${esc(sweep.id)}</a></td>
    <td><span class="badge ${esc(sweep.status)}">${esc(sweep.status)}</span></td>
    <td>${esc(sweep.model_name)}</td>
    <td>${esc(sweep.dataset)}</td>
    <td><div class="row"><div class="progress"><div style="width:${percent.toFixed(1)}%"></div></div>
      <span class="muted">${ended}/${sweep.n_trials}</span></div></td>
    <td class="muted">${esc(detail)}</td>
    <td>${ACTIVE.has(sweep.status) ? when(sweep.created_at) : when(sweep.finished_at)}</td>
  </tr>`;
}

export async function render(root) {
  root.innerHTML = `<div class="card">
    <div class="row"><h1>Hyperparameter sweeps</h1>
      <span class="muted" id="sweeps-total"></span>
      <span style="flex:1"></span><a href="#/playground">Start one from the Playground →</a></div>
    <table><thead><tr><th>Sweep</th><th>Status</th><th>Model</th><th>Dataset</th>
      <th>Trials ended</th><th>Trials</th><th>Started / finished</th></tr></thead>
      <tbody id="sweeps-body"><tr><td colspan="7" class="muted">Loading…</td></tr></tbody></table>
  </div>`;
  const body = root.querySelector("#sweeps-body");
  body.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-id]");
    if (row && event.target.tagName !== "A") location.hash = `#/sweeps/${row.dataset.id}`;
  });

  let timer = null;
  let stopped = false;
  async function refresh() {
    const page = await api("/v1/sweeps?limit=50");
    if (stopped) return;
    root.querySelector("#sweeps-total").textContent = `${page.total} in total`;
    body.innerHTML = page.items.length
      ? page.items.map(rowHtml).join("")
      : `<tr><td colspan="7" class="muted">No sweeps yet: open the Playground, pick the
          settings to start from and use "Start a sweep".</td></tr>`;
    const delay = page.items.some((sweep) => ACTIVE.has(sweep.status)) ? 1500 : 5000;
    timer = setTimeout(() => refresh().catch(() => {}), delay);
  }
  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
