// The job page's look inside training: per-layer gradient L2 norms over the epochs (log10,
// one line per layer with parameters), the latest epoch's weight and gradient histograms
// per layer, and the job's warnings in plain words. Fed from GET /v1/jobs/{id}/diagnostics
// and then from the SSE stream's `diagnostics` events.

import { api, esc } from "../api.js";
import { LineChart } from "../chart.js";

/** Every stored page of a job's diagnostics. */
async function allDiagnostics(jobId, signal) {
  const items = [];
  let after = 0;
  for (;;) {
    const page = await api(`/v1/jobs/${jobId}/diagnostics?after_epoch=${after}&limit=200`, { signal });
    items.push(...page.items);
    if (page.next_after_epoch == null) return items;
    after = page.next_after_epoch;
  }
}

function layerName(layer) {
  return `${layer.index} ${layer.type}${layer.activation ? ` ${layer.activation}` : ""}`;
}

/** A histogram as a row of CSS bars (heights relative to the fullest bin). */
function histogram(kind, layer, stats) {
  const h = stats?.histogram;
  if (!h) return `<div class="hist-box"><div class="muted">${kind}: no finite values</div></div>`;
  const top = Math.max(...h.counts, 1);
  const bins = h.counts
    .map((c) => `<div style="height:${((c / top) * 100).toFixed(1)}%" title="${c}"></div>`)
    .join("");
  return `<div class="hist-box" data-kind="${kind}">
    <div class="muted">${kind} ${esc(layer.param ?? "")}</div>
    <div class="hist" data-bins="${h.counts.length}">${bins}</div>
    <div class="hist-range muted"><span>${h.min.toPrecision(2)}</span><span>${h.max.toPrecision(2)}</span></div>
  </div>`;
}

export function diagnosticsPanel(root) {
  root.innerHTML = `<div class="card" id="diag-card">
      <div class="row"><h2 style="margin:0">Inside training</h2>
        <span id="diag-note" class="muted">no diagnostics recorded yet</span></div>
      <canvas class="chart" id="chart-grad" data-series="0" data-epochs="0"></canvas>
    </div>
    <div class="card"><h2>Histograms <span id="diag-hist-epoch" class="muted"></span></h2>
      <div id="diag-histograms" class="hist-grid"></div>
    </div>`;
  const canvas = root.querySelector("#chart-grad");
  const seen = new Set();
  let chart = null;
  let latest = null;

  function ensureChart(record) {
    if (chart) return;
    const layers = record.layers.filter((layer) => layer.gradients);
    chart = new LineChart(canvas, {
      title: "Gradient L2 norm per layer (log10)",
      series: layers.map((layer) => ({ key: String(layer.index), label: layerName(layer) })),
    });
    canvas.dataset.series = String(layers.length);
  }

  function showHistograms(record) {
    root.querySelector("#diag-hist-epoch").textContent = `after epoch ${record.epoch}`;
    root.querySelector("#diag-histograms").innerHTML = record.layers
      .filter((layer) => layer.weights || layer.gradients)
      .map((layer) => `<div class="hist-layer" data-layer="${layer.index}">
          <b>${esc(layerName(layer))}</b>
          ${histogram("weights", layer, layer.weights)}
          ${histogram("gradients", layer, layer.gradients)}
        </div>`)
      .join("");
  }

  function add(record, redraw = true) {
    if (seen.has(record.epoch)) return;
    seen.add(record.epoch);
    ensureChart(record);
    for (const layer of record.layers) {
      const norm = layer.gradients?.norm;
      if (typeof norm === "number" && norm > 0) chart.add(String(layer.index), record.epoch, Math.log10(norm));
    }
    canvas.dataset.epochs = String(seen.size);
    root.querySelector("#diag-note").textContent =
      `${seen.size} epoch${seen.size === 1 ? "" : "s"} · sample loss ${record.sample_loss?.toFixed(4) ?? "–"}`;
    if (!latest || record.epoch >= latest.epoch) {
      latest = record;
      showHistograms(record);
    }
    if (redraw) chart.draw();
  }

  return {
    async load(jobId, signal) {
      const items = await allDiagnostics(jobId, signal);
      items.forEach((record) => add(record, false));
      chart?.draw();
    },
    add,
    draw() {
      chart?.draw();
    },
    /** Show the job's warnings (code, message, first epoch) in `box`. */
    warnings(box, warnings) {
      box.innerHTML = warnings.length
        ? `<div class="warnings" data-count="${warnings.length}"><b>Training warnings</b><ul>${warnings
            .map((w) => `<li data-code="${esc(w.code)}"><code>${esc(w.code)}</code>
              <span class="muted">(first after epoch ${w.epoch})</span>: ${esc(w.message)}</li>`)
            .join("")}</ul></div>`
        : "";
    },
  };
}
