// Try it: draw a digit for the MNIST model, score a message with the spam model.
// The drawing goes to the server as a PNG, which reduces it the way MNIST digits were made.
// Both ask for explanations: the digit's saliency map is drawn over the drawing, and the
// words that pushed the spam score are highlighted in the message.

import { ApiError, api, esc } from "../api.js";

function unavailable(error, route, model) {
  if (error instanceof ApiError && error.routeMissing) {
    return `This server has no <code>${route}</code> route yet.`;
  }
  if (error instanceof ApiError && error.status === 404) {
    return `${esc(error.message)} — train or upload a model named <b>${esc(model)}</b> first.`;
  }
  return esc(error.message);
}

/** The drawing as base64 PNG, or null while the canvas is blank. The server turns it into
 * MNIST's 784 values (crop, 20x20 box, centre of mass): the same steps as for any PNG, so a
 * drawing and an uploaded picture of it score alike. */
export function drawingPng(canvas) {
  const { width, height } = canvas;
  const data = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] > 32) return canvas.toDataURL("image/png").split(",")[1];
  }
  return null;
}

function setUpCanvas(canvas, onStroke) {
  const ctx = canvas.getContext("2d");
  const clear = () => {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  let last = null;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [
      ((event.clientX - box.left) * canvas.width) / box.width,
      ((event.clientY - box.top) * canvas.height) / box.height,
    ];
  };
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = at(event);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const point = at(event);
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 18;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(...last);
    ctx.lineTo(...point);
    ctx.stroke();
    last = point;
  });
  const end = () => {
    if (last) onStroke();
    last = null;
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  return clear;
}

/** Where the server's 28x28 MNIST box lies on the drawing: its steps (crop the ink, fit
 * the longer side to 20 pixels, put the centre of mass at the middle) redone on the canvas,
 * so the map lines up with the strokes. Returns [x, y, side] in canvas pixels, or null. */
function mnistBox(canvas) {
  const { width, height } = canvas;
  const data = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  let [x0, y0, x1, y1, mass, mx, my] = [width, height, -1, -1, 0, 0, 0];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = data[(y * width + x) * 4];
      if (v <= 32) continue;
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
      mass += v;
      mx += v * x;
      my += v * y;
    }
  }
  if (x1 < 0) return null;
  const scale = 20 / Math.max(x1 - x0 + 1, y1 - y0 + 1); // MNIST pixels per canvas pixel
  const side = 28 / scale;
  return [mx / mass - side / 2, my / mass - side / 2, side];
}

/** Draw a 28x28 saliency map over the drawing: red pushed toward the predicted digit, blue
 * away from it, more opaque the stronger. Returns how many cells carry any weight. */
function drawSaliency(overlay, drawing, saliency) {
  const ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  const box = mnistBox(drawing);
  if (!saliency || !box) return 0;
  const top = Math.max(...saliency.flat().map(Math.abs)) || 1;
  const cells = document.createElement("canvas");
  cells.width = cells.height = 28;
  const image = cells.getContext("2d").createImageData(28, 28);
  let marked = 0;
  saliency.forEach((row, y) => row.forEach((v, x) => {
    const i = (y * 28 + x) * 4;
    image.data.set(v >= 0 ? [239, 68, 68] : [59, 130, 246], i);
    image.data[i + 3] = Math.round(Math.min(1, Math.abs(v) / top) * 220);
    if (v !== 0) marked += 1;
  }));
  cells.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(cells, ...box, box[2]);
  return marked;
}

const SPAM_TOKEN = /(\p{L}+(?:['\u2019]\p{L}+)*|\d+(?:[.,:]\d+)*|[£$€¥₹]|!)/gu;

/** Per lower-cased word, how much it pushed toward spam: its own weight, half of each
 * bigram it is in, and the number-shape tokens (<num11>) on numbers of that length. */
function wordWeights(features) {
  const weights = new Map();
  const add = (word, w) => weights.set(word, (weights.get(word) ?? 0) + w);
  for (const { feature, weight } of features) {
    for (const key of feature.split(" | ")) {
      if (key.startsWith("#") || key.startsWith("[")) continue; // character n-grams, hand features
      const words = key.split(" ");
      words.forEach((word) => add(word, weight / words.length));
    }
  }
  return weights;
}

/** The message with the words that moved the score marked (red: toward spam). */
function highlighted(text, features) {
  const weights = wordWeights(features);
  const weightOf = (token) => {
    const lower = token.toLowerCase();
    const shape = /^\d+$/.test(lower) ? weights.get(`<num${Math.min(lower.length, 12)}>`) ?? 0 : 0;
    return (weights.get(lower) ?? 0) + shape;
  };
  const top = Math.max(...text.split(SPAM_TOKEN).map((t) => Math.abs(weightOf(t))), 1e-12);
  return text.split(SPAM_TOKEN).map((part, i) => {
    const w = i % 2 ? weightOf(part) : 0;
    if (!w) return esc(part);
    const alpha = (0.15 + 0.6 * Math.abs(w) / top).toFixed(2);
    const colour = w > 0 ? `rgba(239, 68, 68, ${alpha})` : `rgba(34, 197, 94, ${alpha})`;
    return `<mark class="${w > 0 ? "to-spam" : "to-ham"}" data-weight="${w.toPrecision(3)}"
      style="background:${colour}" title="${w > 0 ? "toward spam" : "toward ham"}: ${w.toPrecision(3)}">${esc(part)}</mark>`;
  }).join("");
}

function featureList(features) {
  return features.map(({ feature, weight }) => `<li data-weight="${weight}">
    <code>${esc(feature)}</code> <span class="${weight > 0 ? "spam" : "ham"}">${weight > 0 ? "+" : ""}${weight.toPrecision(3)}</span></li>`).join("");
}

function bars(probabilities, best) {
  return probabilities.map((p, digit) => `
    <span>${digit}</span>
    <div class="bar ${digit === best ? "top" : ""}"><div style="width:${(p * 100).toFixed(1)}%"></div></div>
    <span>${(p * 100).toFixed(1)}%</span>`).join("");
}

export async function render(root) {
  root.innerHTML = `
    <div class="grid">
      <div class="card">
        <h1>Draw a digit</h1>
        <div class="row" style="align-items:flex-start">
          <div>
            <div class="digit-wrap">
              <canvas id="digit-canvas" class="digit" width="280" height="280"></canvas>
              <canvas id="digit-saliency" class="digit-overlay" width="280" height="280"
                data-cells="0"></canvas>
            </div>
            <div class="row" style="margin-top:0.5rem">
              <button id="digit-predict">Predict</button>
              <button id="digit-clear" class="secondary">Clear</button>
              <label class="muted">model <input id="digit-model" value="mnist" size="10"></label>
            </div>
          </div>
          <div style="flex:1; min-width:180px">
            <div class="muted">Prediction</div>
            <div id="digit-result" class="big">?</div>
            <div id="digit-meta" class="muted"></div>
            <div id="digit-bars" class="bars" style="margin-top:0.6rem"></div>
            <label class="muted" style="display:block; margin-top:0.6rem">
              <input type="checkbox" id="digit-explain" checked> show what the model looked at</label>
            <div id="digit-saliency-note" class="muted"></div>
          </div>
        </div>
        <div id="digit-error"></div>
      </div>
      <div class="card">
        <h1>Spam or not?</h1>
        <textarea id="spam-text" placeholder="Type or paste a message">WINNER!! You have been selected to receive a £900 prize reward! Call 09061701461 now to claim.</textarea>
        <div class="row" style="margin-top:0.5rem">
          <button id="spam-score">Score</button>
          <label class="muted">model <input id="spam-model" value="spam" size="10"></label>
        </div>
        <label class="muted"><input type="checkbox" id="spam-explain" checked> highlight the words
          that counted</label>
        <div id="spam-result" style="margin-top:0.8rem"></div>
        <div id="spam-error"></div>
      </div>
    </div>`;
  const $ = (sel) => root.querySelector(sel);
  const canvas = $("#digit-canvas");

  async function predictDigit() {
    const png = drawingPng(canvas);
    $("#digit-error").innerHTML = "";
    if (!png) return;
    const model = $("#digit-model").value.trim() || "mnist";
    try {
      const explain = $("#digit-explain").checked;
      const out = await api("/v1/mnist/predict", { method: "POST", body: { png, model, explain } });
      const { digit, probabilities, saliency } = out.predictions[0];
      const overlay = $("#digit-saliency");
      overlay.dataset.cells = String(drawSaliency(overlay, canvas, explain ? saliency : null));
      $("#digit-saliency-note").innerHTML = explain && saliency
        ? `<span style="color:#ef4444">red</span> pushed toward ${digit},
          <span style="color:#3b82f6">blue</span> away from it` : "";
      $("#digit-result").textContent = String(digit);
      $("#digit-meta").textContent = `${out.model} v${out.version} · ${(probabilities[digit] * 100).toFixed(1)}% sure`;
      $("#digit-bars").innerHTML = bars(probabilities, digit);
    } catch (error) {
      $("#digit-error").innerHTML = `<div class="error">${unavailable(error, "/v1/mnist/predict", model)}</div>`;
    }
  }

  const clear = setUpCanvas(canvas, predictDigit);
  $("#digit-predict").addEventListener("click", predictDigit);
  $("#digit-clear").addEventListener("click", () => {
    clear();
    $("#digit-result").textContent = "?";
    $("#digit-meta").textContent = "";
    $("#digit-bars").innerHTML = "";
    const overlay = $("#digit-saliency");
    overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
    overlay.dataset.cells = "0";
    $("#digit-saliency-note").textContent = "";
  });

  $("#spam-score").addEventListener("click", async () => {
    const model = $("#spam-model").value.trim() || "spam";
    $("#spam-error").innerHTML = "";
    try {
      const text = $("#spam-text").value;
      const explain = $("#spam-explain").checked;
      const out = await api("/v1/spam/score", { method: "POST", body: { text, model, explain } });
      const result = out.results[0];
      const features = result.top_features ?? [];
      const pct = (result.spam_probability * 100).toFixed(1);
      $("#spam-result").innerHTML = `
        <div><span id="spam-label" class="${result.label === "spam" ? "spam" : "ham"}">${esc(result.label)}</span>
          · spam probability ${pct}% (threshold ${out.threshold})</div>
        <div class="bar" style="margin-top:0.4rem"><div style="width:${pct}%"></div></div>
        <div class="muted">${esc(out.model)} v${out.version}</div>
        ${explain ? `<p id="spam-highlight" class="spam-highlight">${highlighted(text, features)}</p>
        <details open><summary class="muted">The ${features.length} strongest features</summary>
          <ul id="spam-features">${featureList(features)}</ul></details>` : ""}`;
    } catch (error) {
      $("#spam-error").innerHTML = `<div class="error">${unavailable(error, "/v1/spam/score", model)}</div>`;
    }
  });
}
