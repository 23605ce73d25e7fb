// dragstream_widget front end, built from js/src (source sha256 dfb8cb0d39b3cab3d0669790dddb6226999a99acdd713397a92bfb097fc29a64)

// src/dom.js
function h(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of [].concat(children)) node.append(child);
  return node;
}

// src/strips.js
var COLORS = { mean: "#1f6fff", std: "#e07b00", min: "#8a8a8a", max: "#8a8a8a", l_rec: "#d62728", l_cst: "#7b3fb5" };
function axisTicks(first, last, count = 5) {
  if (!(last > first)) return [first];
  const raw = (last - first) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  const ticks = [];
  for (let t = Math.ceil(first / step) * step; t <= last; t += step) ticks.push(t);
  return ticks;
}
function chart(ctx, width, height, title, series, options = {}) {
  const overlays = options.overlays || [];
  const pad = { left: 38, right: 6, top: overlays.length ? 28 : 16, bottom: 24 };
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
  if (high - low < 1e-9) {
    high += 0.5;
    low -= 0.5;
  }
  const x = (i) => pad.left + (n === 1 ? 0 : i / (n - 1) * (width - pad.left - pad.right));
  const y = (v) => pad.top + (1 - (v - low) / (high - low)) * (height - pad.top - pad.bottom);
  for (const i of options.marks || []) {
    ctx.fillStyle = "rgba(232, 38, 28, 0.15)";
    ctx.fillRect(x(i) - 1.5, pad.top, 3, height - pad.top - pad.bottom);
  }
  for (const [i, label] of options.starts || []) {
    ctx.strokeStyle = "rgba(60, 60, 60, 0.55)";
    ctx.setLineDash([2, 2]);
    ctx.beginPath();
    ctx.moveTo(x(i), pad.top);
    ctx.lineTo(x(i), height - pad.bottom);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = "#555";
    ctx.fillText(label, x(i) + 2, pad.top + 10);
  }
  ctx.strokeStyle = "#ccc";
  ctx.strokeRect(pad.left, pad.top, width - pad.left - pad.right, height - pad.top - pad.bottom);
  const first = options.first || 0;
  ctx.fillStyle = "#555";
  ctx.strokeStyle = "#999";
  for (const t of axisTicks(first, first + n - 1)) {
    const tx = x(t - first);
    ctx.beginPath();
    ctx.moveTo(tx, height - pad.bottom);
    ctx.lineTo(tx, height - pad.bottom + 3);
    ctx.stroke();
    const label = String(t);
    ctx.fillText(label, tx - ctx.measureText(label).width / 2, height - pad.bottom + 13);
  }
  if (options.axis) {
    ctx.fillStyle = "#777";
    ctx.fillText(options.axis, width - pad.right - ctx.measureText(options.axis).width, height - 1);
  }
  ctx.fillStyle = "#555";
  ctx.fillText(high.toPrecision(3), 2, pad.top + 8);
  ctx.fillText(low.toPrecision(3), 2, height - pad.bottom);
  let legend = pad.left + ctx.measureText(title).width + 10;
  for (const [name, v] of series) {
    ctx.beginPath();
    v.forEach((value, i) => i ? ctx.lineTo(x(i), y(value)) : ctx.moveTo(x(i), y(value)));
    ctx.strokeStyle = COLORS[name];
    ctx.lineWidth = name === "min" || name === "max" ? 1 : 1.6;
    ctx.stroke();
    ctx.fillStyle = COLORS[name];
    ctx.fillText(name, legend, 11);
    legend += ctx.measureText(name).width + 8;
  }
  ctx.setLineDash([4, 3]);
  const labelled = /* @__PURE__ */ new Set();
  for (const [label, v, offset, color] of overlays) {
    ctx.beginPath();
    v.forEach((value, i) => i ? ctx.lineTo(x(i + offset), y(value)) : ctx.moveTo(x(i + offset), y(value)));
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
var BRANCH_COLORS = { "no drag": "#2a9d4b", "drag without ADSR": "#b5179e" };
function levelsToImage(levels, w, hgt, ramp) {
  const image = new ImageData(w, hgt);
  levels.forEach((v, i) => {
    const t = v / 255;
    const [r, g, b] = ramp === "heat" ? [255 * Math.min(1, 1.6 * t), 255 * t * t, 90 * (1 - t) + 60 * t] : [40 + 180 * t * t, 40 + 215 * t, 90 + 60 * t];
    image.data.set([r, g, b, 255], 4 * i);
  });
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = hgt;
  canvas.getContext("2d").putImageData(image, 0, 0);
  return canvas;
}
function drawMaps(ctx, width, height, maps) {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#333";
  if (!maps.gradient) {
    ctx.fillText("CSS map, |gradient| and |step| appear while a drag optimises", 6, 11);
    ctx.fillStyle = "#888";
    ctx.fillText("no data yet", 6, height / 2);
    return;
  }
  const { width: w, height: hgt } = maps;
  const panels = [
    ["CSS Gaussian map", maps.gaussian, "heat"],
    ["|gradient| of the latent", maps.gradient, "gradient"],
    ["|step| it took", maps.step, "gradient"]
  ].filter(([, levels]) => levels);
  const side = Math.min((width - 6 * (panels.length + 1)) / panels.length, height - 20);
  const scale = side / Math.max(w, hgt);
  panels.forEach(([title, levels, ramp], k) => {
    const left = 6 + k * (side + 6);
    ctx.fillStyle = "#333";
    ctx.fillText(title, left, 11);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(levelsToImage(levels, w, hgt, ramp), left, 16, w * scale, hgt * scale);
    const cell = (x, y) => [left + (x + 0.5) * scale, 16 + (y + 0.5) * scale];
    if (maps.handle) {
      ctx.strokeStyle = "#ff3b30";
      ctx.lineWidth = 1.2;
      ctx.beginPath();
      for (let y = 0; y < hgt; y++) {
        for (let x = 0; x < w; x++) {
          const inside = (i, j) => i >= 0 && j >= 0 && i < w && j < hgt && maps.handle[j * w + i] >= 128;
          if (!inside(x, y)) continue;
          const [x0, y0] = [left + x * scale, 16 + y * scale];
          if (!inside(x, y - 1)) {
            ctx.moveTo(x0, y0);
            ctx.lineTo(x0 + scale, y0);
          }
          if (!inside(x, y + 1)) {
            ctx.moveTo(x0, y0 + scale);
            ctx.lineTo(x0 + scale, y0 + scale);
          }
          if (!inside(x - 1, y)) {
            ctx.moveTo(x0, y0);
            ctx.lineTo(x0, y0 + scale);
          }
          if (!inside(x + 1, y)) {
            ctx.moveTo(x0 + scale, y0);
            ctx.lineTo(x0 + scale, y0 + scale);
          }
        }
      }
      ctx.stroke();
    }
    for (const path of maps.paths || []) {
      const points = path.map(([x, y]) => cell(x - 0.5, y - 0.5));
      ctx.beginPath();
      points.forEach(([x, y], i) => i ? ctx.lineTo(x, y) : ctx.moveTo(x, y));
      ctx.strokeStyle = "rgba(255, 255, 255, 0.8)";
      ctx.lineWidth = 1;
      ctx.stroke();
      points.forEach(([x, y], i) => {
        ctx.beginPath();
        ctx.arc(x, y, i === 0 || i === points.length - 1 ? 3 : 1.5, 0, 2 * Math.PI);
        ctx.fillStyle = i === 0 ? "#ff3b30" : "#1f9bff";
        ctx.fill();
      });
    }
  });
}
function drawProbe(ctx, width, height, probe) {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#333";
  ctx.fillText(probe.block === void 0 ? "frequency probe of each drag" : `frequency probe, drag at block ${probe.block}`, 6, 11);
  if (probe.error || !probe.cutoffs) {
    ctx.fillStyle = probe.error ? "#c0392b" : "#888";
    ctx.fillText(probe.error || "appears when a drag starts", 6, height / 2);
    return;
  }
  const half = (width - 18) / 2;
  const top = 28;
  const bottom = height - 16;
  ctx.fillStyle = "#555";
  ctx.fillText("attention change per cutoff", 6, 24);
  const high = Math.max(1e-6, ...probe.change);
  const bar = half / probe.cutoffs.length;
  probe.cutoffs.forEach((c, i) => {
    const value = probe.change[i];
    const barHeight = value / high * (bottom - top - 10);
    ctx.fillStyle = "#7b3fb5";
    ctx.fillRect(6 + i * bar + 3, bottom - barHeight, bar - 6, barHeight);
    ctx.fillStyle = "#333";
    ctx.fillText(String(c), 6 + i * bar + 3, height - 3);
    ctx.fillText(value.toFixed(2), 6 + i * bar + 3, bottom - barHeight - 2);
  });
  const left = 12 + half;
  ctx.fillStyle = "#555";
  ctx.fillText("context K/V energy by band", left, 24);
  if (!probe.keys.length) {
    ctx.fillText("no context yet", left, height / 2);
    return;
  }
  const all = probe.keys.concat(probe.values).filter((v) => v > 0);
  const lo = Math.log10(Math.min(...all));
  const hi = Math.log10(Math.max(...all)) + 1e-9;
  const n = probe.band_centers.length;
  const x = (i) => left + (n === 1 ? 0 : i / (n - 1) * (half - 6));
  const y = (v) => top + (1 - (Math.log10(Math.max(v, 1e-12)) - lo) / (hi - lo || 1)) * (bottom - top);
  for (const [name, color] of [["keys", "#1f6fff"], ["values", "#e07b00"]]) {
    ctx.beginPath();
    probe[name].forEach((v, i) => i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v)));
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.stroke();
    ctx.fillStyle = color;
    ctx.fillText(name, name === "keys" ? left : left + 34, height - 3);
  }
  ctx.fillStyle = "#333";
  ctx.fillText("low \u2192 high freq.", left + 80, height - 3);
}
function sharpCanvas(cssWidth, cssHeight) {
  const canvas = h("canvas", { class: "dsw-strip" });
  const resize = () => {
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(cssWidth * dpr);
    canvas.height = Math.round(cssHeight * dpr);
    canvas.style.width = `${cssWidth}px`;
    canvas.style.height = `${cssHeight}px`;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  };
  return { canvas, resize, width: cssWidth, height: cssHeight };
}
function segmentStarts(blocks, segments) {
  const starts = [];
  for (let i = 0; i < segments.length; i++) {
    if (i === 0 || blocks[i] !== blocks[i - 1] || segments[i] !== segments[i - 1]) {
      starts.push([i, `s${segments[i]}`]);
    }
  }
  return starts;
}
function mapsHeight(width, panels = 3) {
  return Math.round((width - 6 * (panels + 1)) / panels) + 22;
}
function render({ model, el }) {
  const width = model.get("width");
  const drift = sharpCanvas(width, 150);
  const losses = sharpCanvas(width, 150);
  const maps = sharpCanvas(width, mapsHeight(width));
  const probe = sharpCanvas(width, 150);
  const strips = [drift, losses, maps, probe];
  const root = h("div", { class: "dsw-strips" }, strips.map((s) => s.canvas));
  el.append(root);
  const draw = () => {
    const [driftCtx, lossCtx, mapsCtx, probeCtx] = strips.map((s) => s.resize());
    root.dataset.dpr = window.devicePixelRatio || 1;
    const d = model.get("drift");
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
    chart(
      driftCtx,
      width,
      150,
      "latent per frame",
      main,
      { marks, overlays, first: (d.first || 0) + low, axis: "latent frame", empty: "latent statistics appear as blocks stream" }
    );
    const l = model.get("losses");
    const starts = segmentStarts(l.block || [], l.segment || []);
    root.dataset.segmentStarts = starts.length;
    chart(
      lossCtx,
      width,
      150,
      "drag losses per iteration",
      [["l_rec", l.l_rec || []], ["l_cst", l.l_cst || []]],
      { starts, first: l.first || 0, axis: "iteration", empty: "losses appear while a drag optimises" }
    );
    drawMaps(mapsCtx, width, maps.height, model.get("maps"));
    drawProbe(probeCtx, width, 150, model.get("probe"));
  };
  for (const name of ["drift", "dragged", "losses", "comparison", "maps", "probe"]) model.on(`change:${name}`, draw);
  let media = null;
  const watchRatio = () => {
    media = window.matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`);
    media.addEventListener("change", onRatio, { once: true });
  };
  const onRatio = () => {
    draw();
    watchRatio();
  };
  watchRatio();
  draw();
  return () => media && media.removeEventListener("change", onRatio);
}
var strips_default = { render };
export {
  axisTicks,
  strips_default as default,
  mapsHeight,
  segmentStarts
};
