// A small canvas line chart: a few named series of (x, y) points, axes with round ticks,
// and a legend. Redraws on every update; fine for the few hundred points of a training run.

const COLORS = ["#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626", "#0891b2"];

function niceStep(span, count) {
  const raw = span / Math.max(count, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return power * (unit < 1.5 ? 1 : unit < 3 ? 2 : unit < 7 ? 5 : 10);
}

function ticks(lo, hi, count) {
  const step = niceStep(hi - lo || 1, count);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
  return out;
}

function label(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1000 || a < 0.01 ? v.toExponential(0) : String(+v.toPrecision(3));
}

export class LineChart {
  /** series: [{key, label, color?, dash?}] in legend order. */
  constructor(canvas, { title = "", series = [], yMin = null, yMax = null, legend = true } = {}) {
    this.canvas = canvas;
    this.title = title;
    this.legend = legend;
    this.series = series.map((s, i) => ({ color: COLORS[i % COLORS.length], ...s }));
    this.points = Object.fromEntries(this.series.map((s) => [s.key, []]));
    this.yMin = yMin;
    this.yMax = yMax;
    this.draw();
  }

  add(key, x, y) {
    if (typeof y === "number" && Number.isFinite(y)) this.points[key]?.push([x, y]);
  }

  clear() {
    for (const key of Object.keys(this.points)) this.points[key] = [];
    this.draw();
  }

  get count() {
    return Object.values(this.points).reduce((n, p) => n + p.length, 0);
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 400;
    const height = canvas.clientHeight || 240;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "12px system-ui, sans-serif";
    canvas.dataset.points = String(this.count); // lets tests see the curve grow

    const all = Object.values(this.points).flat();
    const pad = { left: 52, right: 12, top: 28, bottom: 34 };
    const xs = all.map((p) => p[0]);
    const ys = all.map((p) => p[1]);
    let [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
    let [y0, y1] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1];
    if (this.yMin != null) y0 = Math.min(y0, this.yMin);
    if (this.yMax != null) y1 = Math.max(y1, this.yMax);
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const px = (x) => pad.left + ((x - x0) / (x1 - x0)) * plotW;
    const py = (y) => pad.top + (1 - (y - y0) / (y1 - y0)) * plotH;

    ctx.fillStyle = "#1d2330";
    ctx.fillText(this.title, pad.left, 16);
    ctx.strokeStyle = "#e5e7eb";
    ctx.fillStyle = "#6b7280";
    ctx.textAlign = "right";
    for (const v of ticks(y0, y1, 5)) {
      ctx.beginPath();
      ctx.moveTo(pad.left, py(v));
      ctx.lineTo(width - pad.right, py(v));
      ctx.stroke();
      ctx.fillText(label(v), pad.left - 6, py(v) + 4);
    }
    ctx.textAlign = "center";
    for (const v of ticks(x0, x1, 6)) ctx.fillText(label(v), px(v), height - pad.bottom + 16);
    ctx.fillText("epoch", pad.left + plotW / 2, height - 4);

    for (const s of this.series) {
      const pts = this.points[s.key];
      if (!pts.length) continue;
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 2;
      ctx.setLineDash(s.dash ? [6, 4] : []);
      ctx.beginPath();
      pts.forEach(([x, y], i) => (i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
      ctx.stroke();
      if (pts.length === 1) ctx.fillRect(px(pts[0][0]) - 2, py(pts[0][1]) - 2, 4, 4);
    }
    ctx.setLineDash([]);

    let lx = width - pad.right;
    ctx.textAlign = "right";
    for (const s of this.legend ? [...this.series].reverse() : []) {
      ctx.fillStyle = "#374151";
      ctx.fillText(s.label, lx, 16);
      lx -= ctx.measureText(s.label).width + 6;
      ctx.strokeStyle = s.color;
      ctx.setLineDash(s.dash ? [4, 3] : []);
      ctx.beginPath();
      ctx.moveTo(lx - 18, 12);
      ctx.lineTo(lx, 12);
      ctx.stroke();
      lx -= 30;
    }
    ctx.setLineDash([]);
  }
}

/** The two charts every training view shows: loss and accuracy, train and validation. */
export function trainingCharts(lossCanvas, accCanvas, prefix = "") {
  const loss = new LineChart(lossCanvas, {
    title: `${prefix}Loss`,
    series: [
      { key: "loss", label: "train" },
      { key: "val_loss", label: "validation", dash: true },
    ],
    yMin: 0,
  });
  const accuracy = new LineChart(accCanvas, {
    title: `${prefix}Accuracy`,
    series: [
      { key: "accuracy", label: "train", color: "#16a34a" },
      { key: "val_accuracy", label: "validation", color: "#9333ea", dash: true },
    ],
    yMin: 0,
    yMax: 1,
  });
  return {
    loss,
    accuracy,
    add(point) {
      for (const key of ["loss", "val_loss"]) loss.add(key, point.epoch, point[key]);
      for (const key of ["accuracy", "val_accuracy"]) accuracy.add(key, point.epoch, point[key]);
    },
    draw() {
      loss.draw();
      accuracy.draw();
    },
  };
}
