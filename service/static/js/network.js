// The network as the TensorFlow Playground draws it: a column per layer, each neuron a small
// heatmap of its output over the input plane, links coloured by the weight's sign (blue
// positive, orange negative) and thickened by its magnitude. The weights come from
// GET /v1/jobs/{id}/network (the job's latest checkpoint); every neuron is evaluated here,
// in the browser, on a small grid of the plane. A regression net's output neuron is painted
// on the fixed scale of its targets (e.g. [-1, 1]) rather than its own largest value, so its
// colours mean the same values as the data points'.

export const FEATURES = {
  x1: (x, y) => x,
  x2: (x, y) => y,
  "x1^2": (x, y) => x * x,
  "x2^2": (x, y) => y * y,
  "x1*x2": (x, y) => x * y,
  "sin x1": (x, y) => Math.sin(x),
  "sin x2": (x, y) => Math.sin(y),
};

const ACTIVATIONS = {
  identity: (z) => z,
  linear: (z) => z,
  tanh: Math.tanh,
  relu: (z) => Math.max(0, z),
  leaky_relu: (z, a = 0.01) => (z > 0 ? z : a * z),
  elu: (z, a = 1) => (z > 0 ? z : a * (Math.exp(z) - 1)),
  sigmoid: (z) => 1 / (1 + Math.exp(-z)),
  softplus: (z) => Math.log1p(Math.exp(-Math.abs(z))) + Math.max(z, 0),
};

const CELLS = 16; // grid cells per side of a neuron's heatmap
const BLUE = [8, 119, 189];
const ORANGE = [245, 147, 34];

function activate(layer, z) {
  if (layer.activation === "softmax") {
    const top = Math.max(...z);
    const e = z.map((v) => Math.exp(v - top));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  }
  const f = ACTIVATIONS[layer.activation] || ACTIVATIONS.identity;
  return z.map((v) => f(v, layer.alpha ?? undefined));
}

// Every neuron's output at every cell: outputs[column][neuron][cell].
function evaluate(net, features, extent) {
  const columns = [features.map(() => []), ...net.layers.map((l) => Array.from({ length: l.units }, () => []))];
  for (let j = 0; j < CELLS; j++) {
    for (let i = 0; i < CELLS; i++) {
      const x = -extent + ((i + 0.5) * 2 * extent) / CELLS;
      const y = extent - ((j + 0.5) * 2 * extent) / CELLS;
      let h = features.map((name) => FEATURES[name](x, y));
      h.forEach((v, k) => columns[0][k].push(v));
      net.layers.forEach((layer, l) => {
        const z = layer.biases.slice();
        for (let a = 0; a < h.length; a++) {
          const row = layer.weights[a];
          for (let b = 0; b < z.length; b++) z[b] += h[a] * row[b];
        }
        h = activate(layer, z);
        h.forEach((v, k) => columns[l + 1][k].push(v));
      });
    }
  }
  return columns;
}

// Orange (-scale) .. white (0) .. blue (+scale), as the TensorFlow Playground colours values.
export function diverging(value, scale = 1) {
  const t = Math.min(1, Math.abs(value) / Math.max(1e-9, scale));
  const [r, g, b] = value >= 0 ? BLUE : ORANGE;
  return [255 + (r - 255) * t, 255 + (g - 255) * t, 255 + (b - 255) * t];
}

// `scale` null: each neuron on its own largest magnitude (only its shape matters).
function paint(canvas, values, scale = null) {
  const top = scale ?? Math.max(1e-9, ...values.map(Math.abs));
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(CELLS, CELLS);
  values.forEach((v, k) => image.data.set([...diverging(v, top), 255], k * 4));
  ctx.putImageData(image, 0, 0);
}

function neuronCanvas(kind, title) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = CELLS;
  canvas.className = `nn-neuron nn-${kind}`;
  canvas.dataset.kind = kind;
  canvas.title = title;
  return canvas;
}

// A network drawing inside `root`; update(net) redraws it for a checkpoint's weights, and
// update(net, { outputRange: [lo, hi] }) paints a regression output on its targets' range.
export function networkView(root, { extent = 6 } = {}) {
  root.classList.add("nn-network");
  let shape = "";
  let columns = [];
  let svg = null;

  function build(net, features) {
    root.innerHTML = "";
    const sizes = [features.length, ...net.layers.map((l) => l.units)];
    const row = document.createElement("div");
    row.className = "nn-columns";
    columns = sizes.map((n, c) => {
      const column = document.createElement("div");
      column.className = "nn-column";
      const last = c === sizes.length - 1;
      const kind = c === 0 ? "input" : last ? "output" : "hidden";
      const label = document.createElement("div");
      label.className = "nn-column-label muted";
      label.textContent = c === 0 ? "features" : last ? "output" : `hidden ${c}`;
      column.append(label);
      const cells = Array.from({ length: n }, (_, k) => {
        const title = c === 0 ? features[k] : `${kind} layer ${c} unit ${k}`;
        const cell = document.createElement("div");
        cell.className = "nn-cell";
        const canvas = neuronCanvas(kind, title);
        cell.append(canvas);
        if (c === 0) {
          const name = document.createElement("span");
          name.className = "nn-feature-name";
          name.textContent = features[k];
          cell.append(name);
        }
        column.append(cell);
        return canvas;
      });
      row.append(column);
      return cells;
    });
    svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.classList.add("nn-links");
    root.append(svg, row);
    const links = sizes.slice(1).reduce((sum, n, l) => sum + sizes[l] * n, 0);
    root.dataset.inputs = String(features.length);
    root.dataset.hidden = String(sizes.slice(1, -1).reduce((a, b) => a + b, 0));
    root.dataset.links = String(links);
  }

  function drawLinks(net) {
    const box = root.getBoundingClientRect();
    svg.setAttribute("width", String(box.width));
    svg.setAttribute("height", String(box.height));
    svg.innerHTML = "";
    const biggest = Math.max(1e-9, ...net.layers.flatMap((l) => l.weights.flat().map(Math.abs)));
    const centre = (canvas, side) => {
      const r = canvas.getBoundingClientRect();
      return [side > 0 ? r.right - box.left : r.left - box.left, r.top - box.top + r.height / 2];
    };
    net.layers.forEach((layer, l) => {
      layer.weights.forEach((row, a) => {
        row.forEach((w, b) => {
          const [x1, y1] = centre(columns[l][a], 1);
          const [x2, y2] = centre(columns[l + 1][b], -1);
          const line = document.createElementNS("http://www.w3.org/2000/svg", "path");
          const mid = (x1 + x2) / 2;
          line.setAttribute("d", `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`);
          line.setAttribute("class", `nn-link ${w >= 0 ? "positive" : "negative"}`);
          line.setAttribute("stroke-width", (0.5 + 5 * (Math.abs(w) / biggest)).toFixed(2));
          line.dataset.weight = w.toFixed(4);
          const tip = document.createElementNS("http://www.w3.org/2000/svg", "title");
          tip.textContent = `weight ${w.toFixed(3)}`;
          line.append(tip);
          svg.append(line);
        });
      });
    });
  }

  return {
    update(net, { outputRange = null } = {}) {
      const features = net.features || ["x1", "x2"].slice(0, net.input_dim);
      const key = JSON.stringify([features, net.layers.map((l) => l.units)]);
      if (key !== shape) {
        shape = key;
        build(net, features);
      }
      const outputs = evaluate(net, features, extent);
      const last = outputs.length - 1;
      const fixed = outputRange ? Math.max(...outputRange.map(Math.abs)) : null;
      outputs.forEach((column, c) =>
        column.forEach((values, k) => paint(columns[c][k], values, c === last ? fixed : null)),
      );
      root.dataset.output = outputRange ? "regression" : "classification";
      drawLinks(net);
      root.dataset.epoch = String(net.epoch);
    },
    clear() {
      shape = "";
      root.innerHTML = "";
      delete root.dataset.epoch;
    },
  };
}
