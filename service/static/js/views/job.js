// One job: status, progress bar with ETA, cancel, failure reason, and live loss/accuracy
// curves. The stored history is loaded first, then the SSE stream continues from its last
// epoch (Last-Event-ID), so no epoch is missed or drawn twice. Below them: the training
// warnings and the per-layer diagnostics (views/diagnostics.js), live as well. A batch
// prediction's page counts rows instead of epochs and links to its result file.

import { api, duration, errorBox, esc, fmt, followJob, jobHistory, when } from "../api.js";
import { trainingCharts } from "../chart.js";
import { diagnosticsPanel } from "./diagnostics.js";
import { batchSummary, kindBadge, onDownloadClick } from "./batch.js";
import { jobRangeTest } from "./lr_range.js";

const ACTIVE = new Set(["queued", "running", "cancelling"]);

export async function render(root, jobId) {
  const controller = new AbortController();
  const job = await api(`/v1/jobs/${encodeURIComponent(jobId)}`);
  root.innerHTML = `
    <div class="card">
      <div class="row">
        <h1 style="margin:0">Job <code>${esc(job.id)}</code></h1>
        <span id="job-status" class="badge"></span>
        ${kindBadge(job)}
        <span style="flex:1"></span>
        <button id="job-find-lr" title="Run a learning-rate range test of this spec">Find a learning rate</button>
        <button id="job-cancel" class="danger">Cancel</button>
      </div>
      <p class="muted">Model <b>${esc(job.model_name)}</b> on dataset <b>${esc(job.dataset)}</b>
        · created ${when(job.created_at)}</p>
      <div class="row">
        <div class="progress"><div id="job-bar"></div></div>
        <span id="job-progress" class="muted"></span>
      </div>
      <p id="job-latest" class="muted"></p>
      <div id="job-outcome"></div>
      <div id="job-lr-range"></div>
      <div id="job-warnings"></div>
    </div>
    <div class="grid">
      <div class="card"><canvas class="chart" id="chart-loss"></canvas></div>
      <div class="card"><canvas class="chart" id="chart-acc"></canvas></div>
    </div>
    <div id="job-diagnostics"></div>
    <details class="card"><summary>Spec and hyperparameters</summary>
      <pre>${esc(JSON.stringify({ spec: job.spec, hyperparameters: job.hyperparameters }, null, 2))}</pre>
    </details>`;
  const charts = trainingCharts(root.querySelector("#chart-loss"), root.querySelector("#chart-acc"));
  const cancel = root.querySelector("#job-cancel");
  jobRangeTest(root.querySelector("#job-find-lr"), root.querySelector("#job-lr-range"), job);
  const diag = diagnosticsPanel(root.querySelector("#job-diagnostics"));
  const isBatch = job.kind === "batch_predict";
  root.querySelector("#job-find-lr").hidden = isBatch;
  root.querySelector("#job-outcome").addEventListener("click", onDownloadClick);

  function show(state) {
    const status = root.querySelector("#job-status");
    status.textContent = state.status;
    status.className = `badge ${state.status}`;
    const { epoch, total_epochs: total, percent } = state.progress;
    root.querySelector("#job-bar").style.width = `${percent}%`;
    const eta = ACTIVE.has(state.status) && state.eta_seconds != null
      ? ` · about ${duration(state.eta_seconds)} left` : "";
    root.querySelector("#job-progress").textContent =
      `${isBatch ? "rows" : "epoch"} ${epoch} / ${total} (${percent.toFixed(0)}%)${eta}`;
    const m = isBatch ? null : state.metrics; // a batch's progress is its row count
    root.querySelector("#job-latest").textContent = m
      ? `latest: loss ${fmt(m.loss)} · accuracy ${fmt(m.accuracy, 3)} · val_loss ${fmt(m.val_loss)}`
        + ` · val_accuracy ${fmt(m.val_accuracy, 3)}` : "";
    cancel.disabled = !(state.status === "queued" || state.status === "running");
    if (state.warnings) diag.warnings(root.querySelector("#job-warnings"), state.warnings);
    const outcome = root.querySelector("#job-outcome");
    if (state.failure_reason) {
      outcome.innerHTML = `<div class="error"><b>Failed:</b> ${esc(state.failure_reason)}</div>`;
    } else if (isBatch && state.status === "succeeded") {
      outcome.innerHTML = `<div class="notice">Predicted with ${batchSummary(state)}
        · finished ${when(state.finished_at)}</div>`;
    } else if (state.model_version) {
      const v = state.model_version;
      outcome.innerHTML = `<div class="notice">Registered
        <a href="#/models/${encodeURIComponent(v.model_name)}">${esc(v.model_name)} v${v.version}</a>
        · finished ${when(state.finished_at)}</div>`;
    } else if (state.status === "cancelled") {
      outcome.innerHTML = `<div class="notice">Cancelled at epoch ${epoch}.</div>`;
    }
  }

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      show(await api(`/v1/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST" }));
    } catch (error) {
      root.querySelector("#job-outcome").innerHTML = errorBox(error);
    }
  });

  show(job);
  const history = await jobHistory(encodeURIComponent(jobId), controller.signal);
  history.forEach((point) => charts.add(point));
  charts.draw();
  const last = history.length ? history[history.length - 1].epoch : 0;
  await diag.load(encodeURIComponent(jobId), controller.signal);

  if (ACTIVE.has(job.status)) {
    const state = { ...job };
    followJob(
      encodeURIComponent(jobId),
      ({ event, data }) => {
        if (event === "progress") {
          charts.add({ epoch: data.epoch, ...data.metrics });
          charts.draw();
          Object.assign(state, {
            status: data.status,
            metrics: data.metrics,
            eta_seconds: data.eta_seconds,
            progress: { epoch: data.epoch, total_epochs: data.total_epochs, percent: data.percent },
          });
          show(state);
        } else if (event === "diagnostics") {
          diag.add(data);
          // Warnings are worked out from the diagnostics: fetch them again with each epoch.
          api(`/v1/jobs/${encodeURIComponent(jobId)}`, { signal: controller.signal })
            .then((fresh) => diag.warnings(root.querySelector("#job-warnings"), fresh.warnings))
            .catch(() => {});
        } else if (event === "status") {
          state.status = data.status;
          show(state);
        } else if (event === "snapshot" || event === "end") {
          Object.assign(state, data);
          show(state);
        }
      },
      { lastEventId: last, signal: controller.signal },
    ).catch((error) => {
      if (error.name !== "AbortError") {
        root.querySelector("#job-outcome").innerHTML = errorBox(error);
      }
    });
  }
  const onResize = () => {
    charts.draw();
    diag.draw();
  };
  window.addEventListener("resize", onResize);
  return () => {
    controller.abort();
    window.removeEventListener("resize", onResize);
  };
}
