// LiveStrips front end: two small line charts drawn on canvases from the widget's JSON traits.
import { h } from "./dom.js";

const COLORS = { mean: "#1f6fff", std: "#e07b00", min: "#8a8a8a", max: "#8a8a8a", l_rec: "#d62728", l_cst: "#7b3fb5" };

function chart(ctx, width, height, title, series, options = {}) {
  const overlays = options.overlays || []; // [label, values, offset, color]: dashed, from position offset
  const pad = { left: 38, right: 6, top: overlays.length ? 28 : 16, bottom: 14 };
  ctx.clearRect(0, 0, width, height);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#333";
  ctx.fillText(title, pad.left, 11);
  const values = series.flatMap(([, v]) => v).concat(overlays.flatMap(([, v]) => v)).filter(Number.isFinite);
  const n = Math.max(0, ...series.map(([, v]) => v.length), ...overlays.map(([, v, o]) => v.length + o));
  if (values.length === 0 || n === 0) {
    ctx.fillStyle = "#888";
    ctx.fillText(options.empty || "no data yet", pad.left, height / 2);
    return;
  }
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (high - low < 1e-9) { high += 0.5; low -= 0.5; }
  const x = (i) => pad.left + (n === 1 ? 0 : (i / (n - 1)) * (width - pad.left - pad.right));
  const y = (v) => pad.top + (1 - (v - low) / (high - low)) * (height - pad.top - pad.bottom);
  for (const i of options.marks || []) {
    ctx.fillStyle = "rgba(232, 38, 28, 0.15)";
    ctx.fillRect(x(i) - 1.5, pad.top, 3, height - pad.top - pad.bottom);
  }
  ctx.strokeStyle = "#ccc";
  ctx.strokeRect(pad.left, pad.top, width - pad.left - pad.right, height - pad.top - pad.bottom);
  ctx.fillStyle = "#555";
  ctx.fillText(high.toPrecision(3), 2, pad.top + 8);
  ctx.fillText(low.toPrecision(3), 2, height - pad.bottom);
  let legend = pad.left + ctx.measureText(title).width + 10;
  for (const [name, v] of series) {
    ctx.beginPath();
    v.forEach((value, i) => (i ? ctx.lineTo(x(i), y(value)) : ctx.moveTo(x(i), y(value))));
    ctx.strokeStyle = COLORS[name];
    ctx.lineWidth = name === "min" || name === "max" ? 1 : 1.6;
    ctx.stroke();
    ctx.fillStyle = COLORS[name];
    ctx.fillText(name, legend, 11);
    legend += ctx.measureText(name).width + 8;
  }
  ctx.setLineDash([4, 3]);
  const labelled = new Set();
  for (const [label, v, offset, color] of overlays) {
    ctx.beginPath();
    v.forEach((value, i) => (i ? ctx.lineTo(x(i + offset), y(value)) : ctx.moveTo(x(i + offset), y(value))));
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.4;
    ctx.stroke();
    if (!labelled.has(label)) {
      ctx.fillStyle = color;
      const left = pad.left + [...labelled].reduce((w, l) => w + ctx.measureText(l).width + 10, 0);
      ctx.fillText(label, left, 24);
      labelled.add(label);
    }
  }
  ctx.setLineDash([]);
}

const BRANCH_COLORS = { "no drag": "#2a9d4b", "drag without ADSR": "#b5179e" };

function render({ model, el }) {
  const width = model.get("width");
  const drift = document.createElement("canvas");
  const losses = document.createElement("canvas");
  for (const canvas of [drift, losses]) {
    canvas.width = width;
    canvas.height = 150;
    canvas.className = "dsw-strip";
  }
  el.append(h("div", { class: "dsw-strips" }, [drift, losses]));
  const draw = () => {
    const d = model.get("drift");
    // With a comparison, zoom on it: a little of the stream before it, then the branches (dashed).
    const comparison = model.get("comparison");
    const branches = Object.entries(comparison.branches || {});
    const span = branches.length ? branches[0][1].mean.length : 0;
    const low = branches.length ? Math.max(0, comparison.start - 2 * span) : 0;
    const overlays = [];
    for (const [name, stats] of branches) {
      for (const key of ["max", "min", "std", "mean"]) {
        overlays.push([`${name} (dashed)`, stats[key], comparison.start - low, BRANCH_COLORS[name] || "#555"]);
      }
    }
    const marks = model.get("dragged").filter((i) => i >= low).map((i) => i - low);
    const main = ["max", "min", "std", "mean"].map((k) => [k, (d[k] || []).slice(low)]);
    chart(drift.getContext("2d"), width, 150, "latent per frame", main,
      { marks, overlays, empty: "latent statistics appear as blocks stream" });
    const l = model.get("losses");
    chart(losses.getContext("2d"), width, 150, "drag losses per iteration", [["l_rec", l.l_rec || []], ["l_cst", l.l_cst || []]],
      { empty: "losses appear while a drag optimises" });
  };
  for (const name of ["drift", "dragged", "losses", "comparison"]) model.on(`change:${name}`, draw);
  draw();
}

export default { render };
