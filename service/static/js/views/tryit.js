// Try it: draw a digit for the MNIST model, score a message with the spam model.
// The drawing goes to the server as a PNG, which reduces it the way MNIST digits were made.

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
            <canvas id="digit-canvas" class="digit" width="280" height="280"></canvas>
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
      const out = await api("/v1/mnist/predict", { method: "POST", body: { png, model } });
      const { digit, probabilities } = out.predictions[0];
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
  });

  $("#spam-score").addEventListener("click", async () => {
    const model = $("#spam-model").value.trim() || "spam";
    $("#spam-error").innerHTML = "";
    try {
      const out = await api("/v1/spam/score", { method: "POST", body: { text: $("#spam-text").value, model } });
      const result = out.results[0];
      const pct = (result.spam_probability * 100).toFixed(1);
      $("#spam-result").innerHTML = `
        <div><span id="spam-label" class="${result.label === "spam" ? "spam" : "ham"}">${esc(result.label)}</span>
          · spam probability ${pct}% (threshold ${out.threshold})</div>
        <div class="bar" style="margin-top:0.4rem"><div style="width:${pct}%"></div></div>
        <div class="muted">${esc(out.model)} v${out.version}</div>`;
    } catch (error) {
      $("#spam-error").innerHTML = `<div class="error">${unavailable(error, "/v1/spam/score", model)}</div>`;
    }
  });
}
