// Parallel coordinates of a sweep's trials, drawn as SVG: one vertical axis per searched
// parameter plus the objective, one polyline per trial. Numeric axes span the search space's
// bounds (log-scaled when the parameter is sampled log-uniformly), categorical axes space their
// choices evenly. Lines are coloured by the objective (the same scale for maximize and minimize:
// yellow is better), running trials are dashed, and pruned, failed and cancelled ones grey.
// The SVG carries data-lines (lines drawn) and data-axes for tests and tools.

const NS = "http://www.w3.org/2000/svg";
const GREY = "#c4c9d2";
// Viridis, five stops: worse (purple) .. better (yellow).
const STOPS = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

/** A colour for t in [0, 1] (0 worst, 1 best). */
export function objectiveColor(t) {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const rgb = STOPS[i].map((c, k) => Math.round(c + (STOPS[i + 1][k] - c) * f));
  return `rgb(${rgb.join(",")})`;
}

/** The CSS gradient of objectiveColor, worse to better (for a legend). */
export function objectiveGradient() {
  return `linear-gradient(to right, ${STOPS.map((c) => `rgb(${c.join(",")})`).join(", ")})`;
}

/**
 * A function mapping a trial's objective value to [0, 1], 1 the best of `values` for this
 * direction; NaN for a missing value.
 */
export function objectiveScale(values, direction) {
  const finite = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  const lo = finite.length ? Math.min(...finite) : 0;
  const hi = finite.length ? Math.max(...finite) : 1;
  return (v) => {
    if (typeof v !== "number" || !Number.isFinite(v)) return NaN;
    const t = hi === lo ? 1 : (v - lo) / (hi - lo);
    return direction === "minimize" ? 1 - t : t;
  };
}

function tickLabel(v) {
  if (typeof v !== "number") return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 10000 || a < 0.001 ? v.toExponential(1) : String(+v.toPrecision(3));
}

/** One axis: position(value) in [0, 1] (0 bottom), its ticks, and a title. */
function makeAxis(key, definition, values) {
  if (definition?.type === "categorical") {
    const choices = definition.choices.map((c) => JSON.stringify(c));
    const labels = definition.choices.map((c) => (typeof c === "string" ? c : JSON.stringify(c)));
    const pos = (v) => {
      const i = choices.indexOf(JSON.stringify(v));
      if (i < 0) return NaN;
      return choices.length === 1 ? 0.5 : i / (choices.length - 1);
    };
    const ticks = labels.map((label, i) => ({
      label,
      at: choices.length === 1 ? 0.5 : i / (choices.length - 1),
    }));
    return { key, pos, ticks };
  }
  const finite = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  let lo = typeof definition?.low === "number" ? definition.low : Math.min(...finite);
  let hi = typeof definition?.high === "number" ? definition.high : Math.max(...finite);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
  // Values outside the declared bounds (a given initial trial) widen the axis.
  for (const v of finite) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  const log = Boolean(definition?.log) && lo > 0;
  const f = log ? Math.log10 : (v) => v;
  const [a, b] = [f(lo), f(hi)];
  const pos = (v) => {
    if (typeof v !== "number" || !Number.isFinite(v)) return NaN;
    return b === a ? 0.5 : (f(v) - a) / (b - a);
  };
  let ticks;
  if (log) {
    ticks = [];
    for (let e = Math.ceil(a - 1e-9); e <= b + 1e-9; e++) ticks.push({ label: tickLabel(10 ** e), at: pos(10 ** e) });
    if (ticks.length < 2) ticks = [lo, hi].map((v) => ({ label: tickLabel(v), at: pos(v) }));
  } else if (hi === lo) {
    ticks = [{ label: tickLabel(lo), at: 0.5 }];
  } else if (definition?.type === "int") {
    const step = Math.max(1, Math.ceil((hi - lo) / 5));
    ticks = [];
    for (let v = Math.ceil(lo); v <= hi; v += step) ticks.push({ label: String(v), at: pos(v) });
  } else {
    ticks = [0, 1, 2, 3, 4].map((i) => lo + ((hi - lo) * i) / 4).map((v) => ({ label: tickLabel(v), at: pos(v) }));
  }
  return { key, pos, ticks };
}

function el(name, attrs = {}, text = null) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text != null) node.textContent = text;
  return node;
}

const FADED = new Set(["pruned", "failed", "cancelled"]);

/**
 * Draw the trials of `sweep` (GET /v1/sweeps/{id}) into the <svg> `svg`, sized to its box.
 * Returns the number of lines drawn (one per trial that has at least one parameter).
 */
export function drawParallel(svg, sweep) {
  const width = svg.clientWidth || svg.parentElement?.clientWidth || 800;
  const height = svg.clientHeight || 300;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();

  const space = sweep.search_space || {};
  const trials = sweep.trials || [];
  const keys = Object.keys(space);
  const metric = sweep.objective.metric;
  const axes = keys.map((key) => makeAxis(key, space[key], trials.map((t) => t.params?.[key])));
  axes.push(makeAxis(metric, null, trials.map((t) => t.value)));
  const scale = objectiveScale(trials.map((t) => t.value), sweep.objective.direction);

  const pad = { left: 60, right: 60, top: 34, bottom: 22 };
  const plotH = height - pad.top - pad.bottom;
  const step = axes.length > 1 ? (width - pad.left - pad.right) / (axes.length - 1) : 0;
  const ax = (i) => (axes.length > 1 ? pad.left + i * step : width / 2);
  const ay = (t) => pad.top + (1 - t) * plotH;

  // Lines first (under the axes); the best-coloured last, so they sit on top.
  const lines = el("g", { class: "pc-lines" });
  const order = [...trials].sort((p, q) => {
    const rank = (t) => (FADED.has(t.state) ? -2 : Number.isFinite(scale(t.value)) ? scale(t.value) : -1);
    return rank(p) - rank(q);
  });
  let drawn = 0;
  for (const trial of order) {
    const points = [];
    axes.forEach((axis, i) => {
      const value = i < keys.length ? trial.params?.[axis.key] : trial.value;
      const t = axis.pos(value);
      if (Number.isFinite(t)) points.push(`${ax(i).toFixed(1)},${ay(t).toFixed(1)}`);
    });
    if (points.length < 1) continue;
    const faded = FADED.has(trial.state);
    const t = scale(trial.value);
    const color = faded || !Number.isFinite(t) ? GREY : objectiveColor(t);
    const line = el("polyline", {
      class: `pc-line ${trial.state}`,
      points: points.join(" "),
      fill: "none",
      stroke: color,
      "stroke-width": faded ? 1.5 : 2.5,
      "stroke-opacity": faded ? 0.8 : 0.9,
      "data-trial": trial.number,
      "data-state": trial.state,
    });
    if (trial.state === "running") line.setAttribute("stroke-dasharray", "5 4");
    const params = keys.map((k) => `${k} = ${tickLabel(trial.params?.[k])}`).join("\n");
    const value = trial.value == null ? "–" : tickLabel(trial.value);
    line.append(el("title", {}, `trial #${trial.number} (${trial.state})\n${params}\n${metric} = ${value}`));
    lines.append(line);
    drawn += 1;
  }
  svg.append(lines);

  axes.forEach((axis, i) => {
    const g = el("g", { class: "pc-axis", "data-key": axis.key });
    const x = ax(i);
    const objective = i === axes.length - 1;
    const side = objective && axes.length > 1 ? 1 : -1; // the objective's ticks face outwards
    g.append(el("line", { x1: x, x2: x, y1: ay(0), y2: ay(1), stroke: "#374151", "stroke-width": 1 }));
    for (const tick of axis.ticks) {
      if (!Number.isFinite(tick.at)) continue;
      const y = ay(tick.at);
      g.append(el("line", { x1: x + 4 * side, x2: x, y1: y, y2: y, stroke: "#374151" }));
      const anchor = side > 0 ? "start" : "end";
      g.append(el("text", { x: x + 7 * side, y: y + 4, "text-anchor": anchor, class: "pc-tick" }, tick.label));
    }
    const arrow = sweep.objective.direction === "minimize" ? "↓" : "↑";
    const title = objective ? `${axis.key} ${arrow}` : axis.key;
    // The outer axes' titles are aligned to the edges, so long parameter paths stay inside.
    const edge = axes.length < 2 ? null : i === 0 ? "start" : objective ? "end" : null;
    const tx = edge === "start" ? 4 : edge === "end" ? width - 4 : x;
    const attrs = { x: tx, y: 16, "text-anchor": edge || "middle", class: objective ? "pc-title objective" : "pc-title" };
    g.append(el("text", attrs, title));
    svg.append(g);
  });

  svg.dataset.lines = String(drawn);
  svg.dataset.axes = String(axes.length);
  return drawn;
}
