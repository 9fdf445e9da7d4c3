// One sweep: status and trial counts, the trials in parallel coordinates, their objective
// curves overlaid, the parameter importances, a table of trials (each a job), Cancel and
// "Make the best production". Live: the sweep's SSE stream (a snapshot, then one event per
// trial change and status change, then `end`); if the stream drops it is reopened, and its
// snapshot brings the page up to date again.

import { ApiError, api, errorBox, esc, fmt, readEvents, when } from "../api.js";
import { LineChart } from "../chart.js";
import { drawParallel, objectiveColor, objectiveGradient, objectiveScale } from "../parallel.js";

export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const TRIAL_STATES = ["running", "complete", "pruned", "failed", "cancelled"];
const FADED = new Set(["pruned", "failed", "cancelled"]);

function paramText(value) {
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    const a = Math.abs(value);
    return a !== 0 && (a < 0.001 || a >= 10000) ? value.toExponential(2) : String(+value.toPrecision(4));
  }
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** Trials by state, counted from the trials themselves (trial events do not carry counts). */
function countTrials(trials) {
  const counts = Object.fromEntries(TRIAL_STATES.map((s) => [s, 0]));
  for (const t of trials) counts[t.state] = (counts[t.state] || 0) + 1;
  return counts;
}

/** The registered best trial once the sweep has one; before that the best complete so far. */
function bestTrial(sweep) {
  if (sweep.best_trial && TERMINAL.has(sweep.status)) return sweep.best_trial;
  const sign = sweep.objective.direction === "minimize" ? -1 : 1;
  let best = null;
  for (const t of sweep.trials) {
    if (t.state !== "complete" || typeof t.value !== "number") continue;
    if (!best || sign * t.value > sign * best.value) best = t;
  }
  if (!best) return sweep.best_trial;
  const registered = sweep.best_trial?.number === best.number ? sweep.best_trial.model_version : null;
  return { number: best.number, job_id: best.job_id, params: best.params, value: best.value, model_version: registered };
}

export async function render(root, sweepId) {
  const controller = new AbortController();
  const path = `/v1/sweeps/${encodeURIComponent(sweepId)}`;
  let sweep = await api(path);
  const keys = Object.keys(sweep.search_space);
  const metric = sweep.objective.metric;

  root.innerHTML = `
    <div class="card">
      <div class="row">
        <h1 style="margin:0">Sweep <code>${esc(sweep.id)}</code></h1>
        <span id="sweep-status" class="badge"></span>
        <span style="flex:1"></span>
        <button id="sweep-production" type="button">Make the best production</button>
        <button id="sweep-cancel" type="button" class="danger">Cancel</button>
      </div>
      <p class="muted">Model <a href="#/models/${encodeURIComponent(sweep.model_name)}"><b>${esc(sweep.model_name)}</b></a>
        on dataset <b>${esc(sweep.dataset)}</b> · objective <b>${esc(metric)}</b> (${esc(sweep.objective.direction)})
        · ${esc(sweep.sampler)} sampler · ${esc(sweep.pruner?.name ?? "")} pruner
        · up to ${sweep.max_parallel} in parallel · created ${when(sweep.created_at)}</p>
      <div class="row">
        <div class="progress"><div id="sweep-bar"></div></div>
        <span id="sweep-progress" class="muted"></span>
      </div>
      <p id="sweep-counts" class="muted"></p>
      <div id="sweep-best"></div>
      <div id="sweep-outcome"></div>
    </div>
    <div class="card">
      <div class="row"><h2 style="margin:0">Trials across the search space</h2><span style="flex:1"></span>
        <span class="muted">${esc(metric)}: worse</span><span class="gradient" style="background:${objectiveGradient()}"></span>
        <span class="muted">better · grey: pruned, failed, cancelled · dashed: running</span></div>
      <svg id="sweep-parallel" class="parallel" role="img" aria-label="Parallel coordinates of the trials"></svg>
    </div>
    <div class="grid">
      <div class="card"><canvas class="chart" id="sweep-curves"></canvas></div>
      <div class="card"><h2>Parameter importances</h2><div id="sweep-importances"></div></div>
    </div>
    <div class="card table-scroll">
      <h2>Trials</h2>
      <table id="sweep-trials"><thead><tr><th>#</th><th>State</th>
        ${keys.map((k) => `<th>${esc(k)}</th>`).join("")}
        <th>${esc(metric)}</th><th>Epochs</th><th>Job</th></tr></thead><tbody></tbody></table>
    </div>`;
  const $ = (sel) => root.querySelector(sel);
  const cancel = $("#sweep-cancel");
  const production = $("#sweep-production");
  let productionVersion = null; // the model's production alias, when known

  function drawCurves() {
    const scale = objectiveScale(sweep.trials.map((t) => t.value), sweep.objective.direction);
    const series = sweep.trials.map((t) => ({
      key: String(t.number),
      label: `#${t.number}`,
      color: FADED.has(t.state) || !Number.isFinite(scale(t.value)) ? "#c4c9d2" : objectiveColor(scale(t.value)),
      dash: t.state === "running",
    }));
    const chart = new LineChart($("#sweep-curves"), {
      title: `${metric} per epoch, one line per trial`,
      series,
      legend: false,
      ...(metric.endsWith("accuracy") ? { yMin: 0, yMax: 1 } : {}),
    });
    for (const t of sweep.trials) {
      for (const [epoch, value] of Object.entries(t.intermediate_values || {})) {
        chart.add(String(t.number), Number(epoch), value);
      }
      chart.points[String(t.number)].sort((p, q) => p[0] - q[0]);
    }
    chart.draw();
    $("#sweep-curves").dataset.series = String(
      sweep.trials.filter((t) => Object.keys(t.intermediate_values || {}).length).length,
    );
  }

  function showImportances() {
    const box = $("#sweep-importances");
    const importances = sweep.importances;
    if (!importances || !Object.keys(importances).length) {
      box.innerHTML = `<p class="muted">Computed by Optuna once the sweep has finished with at
        least two complete trials.</p>`;
      return;
    }
    const rows = Object.entries(importances).sort((a, b) => b[1] - a[1]);
    const top = rows[0][1] || 1;
    box.innerHTML = `<div class="importances">${rows
      .map(([key, value]) => `<span class="imp-name" data-param="${esc(key)}">${esc(key)}</span>
        <div class="bar"><div style="width:${((value / top) * 100).toFixed(1)}%"></div></div>
        <span class="imp-value">${(value * 100).toFixed(1)}%</span>`)
      .join("")}</div>`;
  }

  function showTable(best) {
    $("#sweep-trials tbody").innerHTML = sweep.trials.length
      ? sweep.trials
          .map((t) => {
            const reason = t.failure_reason ? ` title="${esc(t.failure_reason)}"` : "";
            const job = t.job_id
              ? `<a href="#/jobs/${encodeURIComponent(t.job_id)}">${esc(t.job_id)}</a>` : "–";
            return `<tr data-number="${t.number}" class="${best?.number === t.number ? "best" : ""}">
              <td>${t.number}</td>
              <td><span class="badge ${esc(t.state)}"${reason}>${esc(t.state)}</span></td>
              ${keys.map((k) => `<td data-param="${esc(k)}">${esc(paramText(t.params?.[k]))}</td>`).join("")}
              <td class="trial-value">${fmt(t.value)}</td>
              <td>${t.epoch}</td>
              <td>${job}</td></tr>`;
          })
          .join("")
      : `<tr><td colspan="${keys.length + 5}" class="muted">No trial has started yet.</td></tr>`;
  }

  function showHeader(best) {
    const status = $("#sweep-status");
    status.textContent = sweep.cancel_requested && !TERMINAL.has(sweep.status) ? "cancelling" : sweep.status;
    status.className = `badge ${status.textContent}`;
    const counts = countTrials(sweep.trials);
    const ended = sweep.trials.length - counts.running;
    $("#sweep-bar").style.width = `${((100 * ended) / sweep.n_trials).toFixed(1)}%`;
    $("#sweep-progress").textContent = `${ended} / ${sweep.n_trials} trials ended`;
    $("#sweep-counts").innerHTML = TRIAL_STATES.map(
      (s) => `<span data-count="${s}">${counts[s]} ${s}</span>`,
    ).join(" · ");
    cancel.disabled = TERMINAL.has(sweep.status) || sweep.cancel_requested;

    const version = best?.model_version;
    production.disabled = !version || productionVersion === version.version;
    let html = "";
    if (best) {
      const params = Object.entries(best.params).map(([k, v]) => `${esc(k)} = <b>${esc(paramText(v))}</b>`).join(", ");
      const registered = version
        ? ` → registered as <a href="#/models/${encodeURIComponent(version.model_name)}">${esc(version.model_name)} v${version.version}</a>`
        : "";
      const isProduction = version && productionVersion === version.version
        ? ` <span class="badge alias" id="sweep-is-production">production</span>` : "";
      html = `<div class="notice" id="sweep-best-trial" data-number="${best.number}">
        ${TERMINAL.has(sweep.status) ? "Best" : "Best so far"}: trial #${best.number},
        ${esc(metric)} <b>${fmt(best.value)}</b> · ${params}${registered}${isProduction}</div>`;
    }
    $("#sweep-best").innerHTML = html;
    if (sweep.failure_reason) {
      $("#sweep-outcome").innerHTML = `<div class="error"><b>Failed:</b> ${esc(sweep.failure_reason)}</div>`;
    } else if (sweep.status === "cancelled") {
      $("#sweep-outcome").innerHTML = `<div class="notice">Cancelled · finished ${when(sweep.finished_at)}</div>`;
    }
  }

  function show() {
    const best = bestTrial(sweep);
    showHeader(best);
    drawParallel($("#sweep-parallel"), sweep);
    drawCurves();
    showImportances();
    showTable(best);
    $("#sweep-status").dataset.status = sweep.status;
  }

  // Coalesce bursts of events into one redraw per frame.
  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      if (!controller.signal.aborted) show();
    });
  }

  async function loadProductionAlias() {
    try {
      const model = await api(`/v1/models/${encodeURIComponent(sweep.model_name)}`, { signal: controller.signal });
      productionVersion = model.aliases?.production ?? null;
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
    }
  }

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      sweep = await api(`${path}/cancel`, { method: "POST" });
      schedule();
    } catch (error) {
      $("#sweep-outcome").innerHTML = errorBox(error);
      cancel.disabled = false;
    }
  });

  production.addEventListener("click", async () => {
    const version = sweep.best_trial?.model_version;
    if (!version) return;
    production.disabled = true;
    try {
      const out = await api(
        `/v1/models/${encodeURIComponent(version.model_name)}/aliases/production`,
        { method: "PUT", body: { version: version.version } },
      );
      productionVersion = out.version;
      schedule();
    } catch (error) {
      $("#sweep-outcome").innerHTML = errorBox(error);
      production.disabled = false;
    }
  });

  async function follow() {
    while (!TERMINAL.has(sweep.status)) {
      try {
        await readEvents(
          `${path}/events`,
          ({ event, data }) => {
            if (event === "snapshot" || event === "end") {
              sweep = data;
            } else if (event === "trial") {
              const { sweep_id: _, ...trial } = data;
              const i = sweep.trials.findIndex((t) => t.number === trial.number);
              if (i >= 0) sweep.trials[i] = trial;
              else sweep.trials = [...sweep.trials, trial].sort((a, b) => a.number - b.number);
            } else if (event === "status") {
              sweep.status = data.status;
            }
            schedule();
          },
          { signal: controller.signal },
        );
      } catch (error) {
        if (controller.signal.aborted || error instanceof ApiError) throw error;
      }
      if (TERMINAL.has(sweep.status)) break;
      // The stream dropped: wait a moment, then reopen it (its snapshot catches up).
      await new Promise((resolve) => setTimeout(resolve, 1000));
      if (controller.signal.aborted) return;
    }
    if (sweep.model_name) await loadProductionAlias();
    schedule();
  }

  await loadProductionAlias();
  show();
  if (!TERMINAL.has(sweep.status)) {
    follow().catch((error) => {
      if (error.name !== "AbortError") $("#sweep-outcome").innerHTML = errorBox(error);
    });
  }
  const onResize = () => show();
  window.addEventListener("resize", onResize);
  return () => {
    controller.abort();
    window.removeEventListener("resize", onResize);
  };
}
