// Playground: train a small network on a 2-D toy dataset and watch it learn.
// The loss curve comes from the job's SSE stream. The decision boundary is a 40x40 grid
// predicted with the running job's latest checkpoint (POST /v1/jobs/{id}/predict, refreshed
// as new checkpoints appear) and, once the job succeeds, with the registered model version.
// The dots are a sample drawn here in the browser with the server's recipe for the dataset
// (same distribution and noise, not the exact training rows, which the API does not expose).
// The regression sets (plane, multi-gaussian) train one identity output unit on MSE; their
// heatmap and dots are real values on a diverging scale over the targets' range, and the
// result shown is the test loss rather than an accuracy.

import { ApiError, api, duration, errorBox, esc, fmt, followJob } from "../api.js";
import { sweepForm, startSweep } from "./sweep_form.js";
import { trainingCharts } from "../chart.js";
import { rangeTestButton } from "./lr_range.js";
import { FEATURES, diverging, networkView } from "../network.js";

const EXTENT = 6;
// The regression sets and the range of their targets (nn_core/datasets/synthetic.py).
const REGRESSION = new Set(["plane", "multi-gaussian"]);
const TARGET_RANGE = [-1, 1];
const BUMPS = [[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1], [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]];
const GRID = 40;
const GRID_POINTS = [];
for (let j = 0; j < GRID; j++) {
  for (let i = 0; i < GRID; i++) {
    const x = -EXTENT + ((i + 0.5) * 2 * EXTENT) / GRID;
    const y = EXTENT - ((j + 0.5) * 2 * EXTENT) / GRID;
    GRID_POINTS.push([+x.toFixed(3), +y.toFixed(3)]);
  }
}

// ------------------------------------------------------------ the datasets' recipes (see
// nn_core/datasets/synthetic.py), with a small seeded PRNG so the picture is stable.

function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const uniform = (lo, hi) => lo + (hi - lo) * next();
  const normal = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  return { uniform, normal };
}

const RECIPES = {
  xor(n, noise, r) {
    return Array.from({ length: n }, () => {
      let [x, y] = [r.uniform(-5, 5), r.uniform(-5, 5)];
      x += x > 0 ? 0.3 : -0.3;
      y += y > 0 ? 0.3 : -0.3;
      const [mx, my] = [x + r.uniform(-5, 5) * noise, y + r.uniform(-5, 5) * noise];
      return [x, y, mx * my >= 0 ? 1 : 0];
    });
  },
  circle(n, noise, r) {
    return Array.from({ length: n }, (_, k) => {
      const radius = k < n / 2 ? r.uniform(0, 2.5) : r.uniform(3.5, 5);
      const angle = r.uniform(0, 2 * Math.PI);
      const [x, y] = [radius * Math.sin(angle), radius * Math.cos(angle)];
      const [jx, jy] = [r.uniform(-5, 5) * noise, r.uniform(-5, 5) * noise];
      return [x, y, Math.hypot(x + jx, y + jy) < 2.5 ? 1 : 0];
    });
  },
  gauss(n, noise, r) {
    const std = Math.sqrt(0.5 + 7 * noise);
    return Array.from({ length: n }, (_, k) => {
      const c = k < n / 2 ? 2 : -2;
      return [c + r.normal() * std, c + r.normal() * std, k < n / 2 ? 1 : 0];
    });
  },
  spiral(n, noise, r) {
    const half = Math.ceil(n / 2);
    return Array.from({ length: n }, (_, k) => {
      const arm = k < half ? 0 : 1;
      const count = arm ? n - half : half;
      const frac = (arm ? k - half : k) / count;
      const t = 1.75 * 2 * Math.PI * frac + arm * Math.PI;
      const radius = 5 * frac;
      return [
        radius * Math.sin(t) + r.uniform(-1, 1) * noise,
        radius * Math.cos(t) + r.uniform(-1, 1) * noise,
        arm ? 0 : 1,
      ];
    });
  },
  plane(n, noise, r) {
    return regressionPoints(n, noise, r, (x, y) => (x + y) / 10);
  },
  "multi-gaussian"(n, noise, r) {
    return regressionPoints(n, noise, r, (x, y) =>
      BUMPS.reduce((sum, [cx, cy, h]) => sum + h * Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 2), 0),
    );
  },
};

// Points uniform on [-5, 5]^2, valued at a point moved by the noise, clipped to the range.
function regressionPoints(n, noise, r, target) {
  return Array.from({ length: n }, () => {
    const [x, y] = [r.uniform(-5, 5), r.uniform(-5, 5)];
    const value = target(x + r.uniform(-5, 5) * noise, y + r.uniform(-5, 5) * noise);
    return [x, y, Math.max(TARGET_RANGE[0], Math.min(TARGET_RANGE[1], value))];
  });
}

// ------------------------------------------------------------------------------ drawing

// `outputs`: per grid cell, P(class 1) of a classifier or the value of a regression.
function drawBoundary(canvas, outputs, points, regression) {
  const size = canvas.clientWidth || 360;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = size * ratio;
  canvas.height = size * ratio;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, size, size);
  const top = Math.max(...TARGET_RANGE.map(Math.abs));
  if (outputs) {
    // One pixel per grid cell, scaled up with smoothing: a soft boundary without seams.
    // Orange (class 0, or -1) .. white .. blue (class 1, or +1), as in the TensorFlow
    // Playground; lighter than the dots so they stand out.
    const small = document.createElement("canvas");
    small.width = small.height = GRID;
    const image = small.getContext("2d").createImageData(GRID, GRID);
    outputs.forEach((p, k) => {
      if (regression) {
        const rgb = diverging(p, top).map((c) => 255 + (c - 255) * 0.75);
        image.data.set([...rgb, 255], k * 4);
        return;
      }
      const t = 0.15 + 0.55 * Math.abs(p - 0.5) * 2;
      const [r, g, b] = p >= 0.5 ? [8, 119, 189] : [245, 147, 34];
      image.data.set([255 + (r - 255) * t, 255 + (g - 255) * t, 255 + (b - 255) * t, 255], k * 4);
    });
    small.getContext("2d").putImageData(image, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(small, 0, 0, size, size);
  }
  const scale = (v) => ((v + EXTENT) / (2 * EXTENT)) * size;
  for (const [x, y, label] of points) {
    ctx.beginPath();
    ctx.arc(scale(x), size - scale(y), 3, 0, 2 * Math.PI);
    ctx.fillStyle = regression ? `rgb(${diverging(label, top).join(",")})` : label ? "#0877bd" : "#f59322";
    ctx.fill();
    ctx.strokeStyle = regression ? "rgba(0,0,0,0.35)" : "#fff"; // a value near 0 is white
    ctx.lineWidth = 1;
    ctx.stroke();
  }
  canvas.dataset.mode = regression ? "regression" : "classification";
  canvas.dataset.drawn = outputs ? "outputs" : "points";
}

// What each grid cell's prediction is drawn from: P(class 1), or a regression's value.
function outputsOf(predictions, regression) {
  if (regression) return predictions.map((p) => p.values?.[0] ?? 0);
  return predictions.map((p) => p.probabilities?.["1"] ?? 0.5);
}

// ------------------------------------------------------------------------------- the view

const FORM = `
  <form id="pg-form" class="form-grid">
    <label for="pg-dataset">Dataset</label>
    <select id="pg-dataset" name="dataset">
      <optgroup label="Classification">
        <option value="xor">xor</option><option value="circle">circle</option>
        <option value="gauss">gauss</option><option value="spiral" selected>spiral</option>
      </optgroup>
      <optgroup label="Regression">
        <option value="plane">plane</option><option value="multi-gaussian">multi-gaussian</option>
      </optgroup>
    </select>
    <label for="pg-noise">Noise <span id="pg-noise-value" class="muted"></span></label>
    <input id="pg-noise" name="noise" type="range" min="0" max="0.5" step="0.05" value="0.1">
    <label for="pg-samples">Samples</label>
    <input id="pg-samples" name="samples" type="number" min="50" max="5000" step="50" value="500">
    <label for="pg-test">Test data <span id="pg-test-value" class="muted"></span></label>
    <input id="pg-test" name="test" type="range" min="0.1" max="0.9" step="0.1" value="0.2">
    <span>Features</span>
    <div id="pg-features" class="pg-features">${Object.keys(FEATURES)
      .map((name) => `<label><input type="checkbox" name="features" value="${name}"
        ${name === "x1" || name === "x2" ? "checked" : ""}> ${name}</label>`)
      .join("")}</div>
    <label for="pg-layers">Hidden layers</label>
    <input id="pg-layers" name="layers" type="number" min="0" max="6" value="2">
    <label for="pg-units">Units per layer</label>
    <input id="pg-units" name="units" type="number" min="1" max="64" value="12">
    <label for="pg-activation">Activation</label>
    <select id="pg-activation" name="activation">
      <option>tanh</option><option>relu</option><option>leaky_relu</option>
      <option>elu</option><option>sigmoid</option><option>identity</option>
    </select>
    <label for="pg-optimizer">Optimizer</label>
    <select id="pg-optimizer" name="optimizer"><option>adam</option><option>sgd</option>
      <option>rmsprop</option></select>
    <label for="pg-lr">Learning rate</label>
    <input id="pg-lr" name="lr" type="number" min="0.0001" max="10" step="any" value="0.03">
    <label for="pg-reg">Regularization</label>
    <select id="pg-reg" name="reg"><option value="">none</option><option value="l2">L2</option>
      <option value="l1">L1</option></select>
    <label for="pg-rate">Reg. rate</label>
    <input id="pg-rate" name="rate" type="number" min="0" step="any" value="0.001">
    <label for="pg-epochs">Epochs</label>
    <input id="pg-epochs" name="epochs" type="number" min="1" max="1000" value="150">
    <label for="pg-batch">Batch size</label>
    <input id="pg-batch" name="batch" type="number" min="1" max="1024" value="16">
    <div class="row" style="grid-column: 1 / -1"><button id="pg-train" type="submit">Train</button>
      <button id="pg-stop" type="button" class="danger" disabled>Stop</button>
      <button id="pg-find-lr" type="button">Find a learning rate</button></div>
    <div id="pg-lr-range" style="grid-column: 1 / -1"></div>
  </form>`;

function specFrom(values) {
  const hidden = Array.from({ length: values.layers }, () => {
    const layer = { type: "dense", units: values.units, activation: values.activation };
    if (values.reg) layer.regularizer = { [values.reg]: values.rate };
    return layer;
  });
  // The chosen input features are a transform inside the model ("features" in nn_core), so
  // predictions and previews still take raw (x1, x2) points.
  const plain = values.features.join() === "x1,x2";
  // A regression set: one real-valued output (identity) on mean squared error.
  const regression = REGRESSION.has(values.dataset);
  const output = regression
    ? { type: "dense", units: 1, activation: "identity" }
    : { type: "dense", units: 2, activation: "softmax" };
  return {
    input_dim: 2,
    ...(plain ? {} : { preprocess: [{ type: "features", columns: values.features }] }),
    layers: [...hidden, output],
    loss: regression ? "mse" : "categorical_crossentropy",
    optimizer: { name: values.optimizer, lr: values.lr },
    training: { epochs: values.epochs, batch_size: values.batch, validation_split: 0.2, seed: 1 },
  };
}

export async function render(root) {
  root.innerHTML = `
    <div class="playground">
      <div class="card"><h1>Playground</h1>${FORM}${sweepForm()}</div>
      <div>
        <div class="card">
          <div class="boundary-wrap">
            <canvas id="pg-boundary" class="boundary"></canvas>
            <div style="flex:1; min-width:260px">
              <div id="pg-status" class="muted">Pick a dataset and a network, then Train.</div>
              <div class="row" style="margin:0.6rem 0"><div class="progress"><div id="pg-bar"></div></div></div>
              <div id="pg-epoch" class="muted"></div>
              <div id="pg-test-loss" hidden>Test loss <strong id="pg-test-loss-value"></strong></div>
              <div id="pg-boundary-note" class="muted" style="margin-top:0.6rem"></div>
              <div id="pg-error"></div>
            </div>
          </div>
        </div>
        <div class="card"><h2>Network</h2>
          <div id="pg-network-note" class="muted">Each neuron's output over the input plane
            (blue positive, orange negative), from the job's latest checkpoint.</div>
          <div id="pg-network"></div>
        </div>
        <div class="grid">
          <div class="card"><canvas class="chart" id="pg-loss"></canvas></div>
          <div class="card" id="pg-acc-card"><canvas class="chart" id="pg-acc"></canvas></div>
        </div>
      </div>
    </div>`;
  const $ = (sel) => root.querySelector(sel);
  const form = $("#pg-form");
  const canvas = $("#pg-boundary");
  const charts = trainingCharts($("#pg-loss"), $("#pg-acc"));
  const network = networkView($("#pg-network"), { extent: EXTENT });
  let points = [];
  let outputs = null;
  let regression = false; // the chosen dataset's kind (the dots)
  let jobRegression = false; // the running job's kind (its outputs)
  // A job's outputs, read as its kind; none when the dataset picked since is of another kind.
  const jobOutputs = (predictions) =>
    jobRegression === regression ? outputsOf(predictions, jobRegression) : null;
  let controller = null;
  let jobId = null;

  function values() {
    const f = form.elements;
    return {
      dataset: f.dataset.value,
      noise: Number(f.noise.value),
      samples: Number(f.samples.value),
      testFraction: Number(f.test.value),
      features: [...form.querySelectorAll('input[name="features"]:checked')].map((c) => c.value),
      layers: Number(f.layers.value),
      units: Number(f.units.value),
      activation: f.activation.value,
      optimizer: f.optimizer.value,
      lr: Number(f.lr.value),
      reg: f.reg.value,
      rate: Number(f.rate.value),
      epochs: Number(f.epochs.value),
      batch: Number(f.batch.value),
    };
  }

  function resample() {
    const v = values();
    $("#pg-noise-value").textContent = v.noise.toFixed(2);
    $("#pg-test-value").textContent = `${Math.round(v.testFraction * 100)}%`;
    regression = REGRESSION.has(v.dataset);
    points = RECIPES[v.dataset](Math.min(v.samples, 400), v.noise, rng(7));
    drawBoundary(canvas, outputs, points, regression);
    // Regression has no accuracy: its chart is hidden and the test loss is the result.
    $("#pg-acc-card").style.display = regression ? "none" : "";
  }

  form.addEventListener("input", (event) => {
    if (event.target.name === "test") resample();
    if (["dataset", "noise", "samples"].includes(event.target.name)) {
      outputs = null;
      resample();
    }
  });

  let previewBusy = false;
  let previewEpoch = 0;
  async function preview() {
    if (previewBusy || !jobId) return;
    previewBusy = true;
    const id = jobId;
    try {
      const out = await api(`/v1/jobs/${id}/predict`, { method: "POST", body: { instances: GRID_POINTS } });
      if (id === jobId && out.epoch > previewEpoch) {
        previewEpoch = out.epoch;
        outputs = jobOutputs(out.predictions);
        drawBoundary(canvas, outputs, points, regression);
        const what = jobRegression ? "Output" : "Boundary";
        $("#pg-boundary-note").textContent = `${what}: checkpoint after epoch ${out.epoch}.`;
        const net = await api(`/v1/jobs/${id}/network`);
        if (id === jobId) network.update(net, { outputRange: jobRegression ? TARGET_RANGE : null });
      }
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 409)) throw error;
    } finally {
      previewBusy = false;
    }
  }

  async function finalBoundary(job) {
    const v = job.model_version;
    const out = await api(`/v1/models/${encodeURIComponent(v.model_name)}:predict`, {
      method: "POST",
      body: { instances: GRID_POINTS, version: v.version },
    });
    outputs = jobOutputs(out.predictions);
    drawBoundary(canvas, outputs, points, regression);
    $("#pg-boundary-note").innerHTML = `${jobRegression ? "Output" : "Boundary"}: final model
      <a href="#/models/${encodeURIComponent(v.model_name)}">${esc(v.model_name)} v${v.version}</a>.`;
  }

  function showProgress(p, status, eta) {
    $("#pg-bar").style.width = `${p.percent}%`;
    const left = eta != null && status === "running" ? ` · about ${duration(eta)} left` : "";
    $("#pg-epoch").textContent = `epoch ${p.epoch} / ${p.total_epochs}${left}`;
  }

  async function train(event) {
    event.preventDefault();
    if (controller) controller.abort();
    controller = new AbortController();
    const v = values();
    charts.loss.clear();
    charts.accuracy.clear();
    network.clear();
    outputs = null;
    previewEpoch = 0;
    resample();
    jobRegression = regression;
    $("#pg-error").innerHTML = "";
    $("#pg-test-loss").hidden = true;
    $("#pg-boundary-note").textContent = "";
    if (!v.features.length) {
      $("#pg-error").innerHTML = errorBox("Pick at least one input feature.");
      return;
    }
    $("#pg-train").disabled = true;
    try {
      const job = await api("/v1/jobs", {
        method: "POST",
        body: {
          spec: specFrom(v),
          dataset: v.dataset,
          model_name: `playground-${v.dataset}`,
          n_samples: v.samples,
          noise: v.noise,
          test_fraction: v.testFraction,
        },
      });
      jobId = job.id;
      $("#pg-stop").disabled = false;
      $("#pg-status").innerHTML = `Job <a href="#/jobs/${esc(job.id)}">${esc(job.id)}</a>:
        <span class="badge ${job.status}" id="pg-badge">${job.status}</span>`;
      showProgress(job.progress, job.status, null);
      const final = await followJob(
        job.id,
        ({ event, data }) => {
          if (event === "progress") {
            charts.add({ epoch: data.epoch, ...data.metrics });
            charts.draw();
            showProgress(data, data.status, data.eta_seconds);
            preview().catch((error) => ($("#pg-error").innerHTML = errorBox(error)));
          }
          if (event === "status" || event === "end") {
            const badge = $("#pg-badge");
            badge.textContent = data.status;
            badge.className = `badge ${data.status}`;
          }
        },
        { signal: controller.signal },
      );
      showProgress(final.progress, final.status, null);
      if (final.status === "succeeded") {
        await finalBoundary(final);
        const m = final.metrics || {};
        if (jobRegression) {
          $("#pg-epoch").textContent += ` · loss ${fmt(m.loss)} · val_loss ${fmt(m.val_loss)}`;
          $("#pg-test-loss-value").textContent = fmt(final.test_metrics?.loss);
          $("#pg-test-loss").hidden = false;
        } else {
          $("#pg-epoch").textContent += ` · loss ${fmt(m.loss)} · val_accuracy ${fmt(m.val_accuracy, 3)}`;
        }
      } else if (final.failure_reason) {
        $("#pg-error").innerHTML = errorBox(`Failed: ${final.failure_reason}`);
      }
    } catch (error) {
      if (error.name !== "AbortError") $("#pg-error").innerHTML = errorBox(error);
    } finally {
      $("#pg-train").disabled = false;
      $("#pg-stop").disabled = true;
    }
  }

  form.addEventListener("submit", train);
  // The range test trains the same spec on the same data; "Use it" fills the lr field.
  rangeTestButton($("#pg-find-lr"), $("#pg-lr-range"), () => {
    const v = values();
    return {
      spec: specFrom(v),
      dataset: v.dataset,
      model_name: `playground-${v.dataset}`,
      n_samples: v.samples,
      noise: v.noise,
      lr_range: { min_lr: 1e-5, max_lr: 10, num_steps: 100 },
    };
  }, {
    applyLabel: "Use it",
    apply: (lr) => (form.elements.lr.value = Math.max(1e-4, Number(lr.toPrecision(2)))),
  });
  startSweep(root, () => {
    const v = values();
    return { values: v, spec: specFrom(v) };
  });
  $("#pg-stop").addEventListener("click", async () => {
    if (!jobId) return;
    $("#pg-stop").disabled = true;
    await api(`/v1/jobs/${jobId}/cancel`, { method: "POST" }).catch(() => {});
  });
  resample();
  return () => controller?.abort();
}
