// dragstream_widget front end, built from js/src (source sha256 dfb8cb0d39b3cab3d0669790dddb6226999a99acdd713397a92bfb097fc29a64)

// src/coords.js
function displayToModel(clientX, clientY, rect, width, height) {
  const x = (clientX - rect.left) / rect.width * width - 0.5;
  const y = (clientY - rect.top) / rect.height * height - 0.5;
  return [clamp(x, 0, width - 1), clamp(y, 0, height - 1)];
}
function modelToCanvas(point, canvasWidth, canvasHeight, width, height) {
  return [(point[0] + 0.5) / width * canvasWidth, (point[1] + 0.5) / height * canvasHeight];
}
function clamp(value, low, high) {
  return Math.min(Math.max(value, low), high);
}
function roundPoint(point) {
  return [Math.round(point[0] * 100) / 100, Math.round(point[1] * 100) / 100];
}

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
function select(options, value, onchange, title) {
  const node = h("select", { title, onchange: () => onchange(node.value) });
  for (const [v, label] of options) node.append(h("option", { value: v }, label));
  node.value = value;
  return node;
}
function checkbox(label, checked, onchange, title) {
  const input = h("input", { type: "checkbox", checked, onchange: () => onchange(input.checked) });
  return [h("label", { class: "dsw-check", title }, [input, label]), input];
}

// src/paths.js
function resamplePath(points, count) {
  if (points.length === 0 || count < 1) return [];
  const lengths = [0];
  for (let i = 1; i < points.length; i++) {
    const d = Math.hypot(points[i][0] - points[i - 1][0], points[i][1] - points[i - 1][1]);
    lengths.push(lengths[i - 1] + d);
  }
  const total = lengths[lengths.length - 1];
  if (total === 0) return Array.from({ length: count }, () => points[points.length - 1].slice());
  const out = [];
  let segment = 1;
  for (let k = 1; k <= count; k++) {
    const s = total * k / count;
    while (segment < points.length - 1 && lengths[segment] < s) segment++;
    const span = lengths[segment] - lengths[segment - 1] || 1;
    const t = (s - lengths[segment - 1]) / span;
    const a = points[segment - 1];
    const b = points[segment];
    out.push([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
  }
  return out;
}
function signedAngle(center, handle, target) {
  const a = Math.atan2(handle[1] - center[1], handle[0] - center[0]);
  const b = Math.atan2(target[1] - center[1], target[0] - center[0]);
  let d = b - a;
  while (d <= -Math.PI) d += 2 * Math.PI;
  while (d > Math.PI) d -= 2 * Math.PI;
  return d;
}
function thinPath(points, spacing) {
  const out = [];
  for (const p of points) {
    const last = out[out.length - 1];
    if (!last || Math.hypot(p[0] - last[0], p[1] - last[1]) >= spacing) out.push(p);
  }
  const end = points[points.length - 1];
  if (end && out[out.length - 1] !== end) out.push(end);
  return out;
}

// src/draw.js
var REGION_TINT = [255, 80, 40, 110];
var CURRENT_TINT = [255, 60, 30, 150];
var FROZEN_TINT = [40, 200, 255, 90];
var HANDLE = "#e8261c";
var TARGET = "#1f6fff";
var CENTER = "#ffd21f";
function drawMasks(canvas, sketch) {
  const { width, height } = sketch;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(width, height);
  const data = image.data;
  const layers = [[sketch.frozen, FROZEN_TINT]];
  sketch.regions.forEach((r, i) => layers.push([r.mask, i === sketch.current ? CURRENT_TINT : REGION_TINT]));
  for (const [mask, tint] of layers) {
    for (let i = 0; i < mask.length; i++) {
      if (mask[i]) data.set(tint, 4 * i);
    }
  }
  ctx.putImageData(image, 0, 0);
}
function dot(ctx, p, radius, fill) {
  ctx.beginPath();
  ctx.arc(p[0], p[1], radius, 0, 2 * Math.PI);
  ctx.fillStyle = fill;
  ctx.fill();
  ctx.lineWidth = Math.max(1, radius / 4);
  ctx.strokeStyle = "rgba(255,255,255,0.9)";
  ctx.stroke();
}
function arrowHead(ctx, from, to, size, color) {
  const a = Math.atan2(to[1] - from[1], to[0] - from[0]);
  ctx.beginPath();
  ctx.moveTo(to[0], to[1]);
  ctx.lineTo(to[0] - size * Math.cos(a - 0.45), to[1] - size * Math.sin(a - 0.45));
  ctx.lineTo(to[0] - size * Math.cos(a + 0.45), to[1] - size * Math.sin(a + 0.45));
  ctx.closePath();
  ctx.fillStyle = color;
  ctx.fill();
}
function drawVectors(canvas, sketch, mode, frames, scale) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const toCanvas = (p) => modelToCanvas(p, canvas.width, canvas.height, sketch.width, sketch.height);
  const r = 6 * scale;
  for (const region of sketch.regions) {
    const rotating = region.operation === "rotate_2d";
    const targets = sketch.targets(region, mode, frames).map(toCanvas);
    if (region.path.length > 0) {
      const path = region.path.map(toCanvas);
      ctx.beginPath();
      path.forEach((p, i) => i ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1]));
      ctx.lineWidth = 2 * scale;
      ctx.strokeStyle = "rgba(255,255,255,0.85)";
      ctx.stroke();
      if (targets.length) arrowHead(ctx, path[path.length - 2] || path[0], targets[targets.length - 1], 9 * scale, TARGET);
      targets.forEach((t, i) => dot(ctx, t, i === targets.length - 1 ? r : r * 0.7, TARGET));
      dot(ctx, path[0], r, HANDLE);
    }
    if (rotating || region.center) {
      const c = sketch.shownCenter(region);
      if (!c) continue;
      const center = toCanvas(c);
      ctx.beginPath();
      ctx.moveTo(center[0] - r * 1.6, center[1]);
      ctx.lineTo(center[0] + r * 1.6, center[1]);
      ctx.moveTo(center[0], center[1] - r * 1.6);
      ctx.lineTo(center[0], center[1] + r * 1.6);
      ctx.lineWidth = 2 * scale;
      ctx.strokeStyle = CENTER;
      ctx.stroke();
      const last = sketch.targets(region, mode, frames).slice(-1)[0];
      if (region.path.length > 0 && last) {
        const handle = region.path[0];
        const start = Math.atan2(handle[1] - c[1], handle[0] - c[0]);
        const turn = signedAngle(c, handle, last);
        const radius = Math.max(12 * scale, Math.hypot(...toCanvas(handle).map((v, i) => v - center[i])) * 0.6);
        ctx.beginPath();
        ctx.arc(center[0], center[1], radius, start, start + turn, turn < 0);
        ctx.strokeStyle = CENTER;
        ctx.stroke();
        ctx.font = `${12 * scale}px sans-serif`;
        ctx.fillStyle = CENTER;
        ctx.fillText(`${(turn * 180 / Math.PI).toFixed(0)}\xB0`, center[0] + radius + 4 * scale, center[1]);
      }
    }
  }
}

// src/masks.js
function newMask(width, height) {
  return new Uint8Array(width * height);
}
function stampDisc(mask, width, height, cx, cy, r, value) {
  const x0 = Math.max(0, Math.floor(cx - r));
  const x1 = Math.min(width - 1, Math.ceil(cx + r));
  const y0 = Math.max(0, Math.floor(cy - r));
  const y1 = Math.min(height - 1, Math.ceil(cy + r));
  const r2 = r * r;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r2) mask[y * width + x] = value;
    }
  }
}
function stampStroke(mask, width, height, a, b, r, value) {
  const length = Math.hypot(b[0] - a[0], b[1] - a[1]);
  const steps = Math.max(1, Math.ceil(length / Math.max(r / 2, 0.5)));
  for (let i = 0; i <= steps; i++) {
    const t = i / steps;
    stampDisc(mask, width, height, a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]), r, value);
  }
}
function isEmpty(mask) {
  return !mask.some((v) => v !== 0);
}
function encodeMask(mask, width, height) {
  const counts = [];
  let current = 0;
  let run = 0;
  for (let i = 0; i < mask.length; i++) {
    const v = mask[i] ? 1 : 0;
    if (v === current) {
      run += 1;
    } else {
      counts.push(run);
      current = v;
      run = 1;
    }
  }
  counts.push(run);
  return { size: [height, width], counts };
}
function centroid(mask, width) {
  let sx = 0;
  let sy = 0;
  let n = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i]) {
      sx += i % width;
      sy += Math.floor(i / width);
      n += 1;
    }
  }
  return n ? [sx / n, sy / n] : null;
}
function decodeMask(encoded, width, height) {
  const [h2, w] = encoded.size;
  if (h2 !== height || w !== width) throw new Error(`a ${w}x${h2} mask does not fit the ${width}x${height} frame`);
  const mask = newMask(width, height);
  let at = 0;
  encoded.counts.forEach((run, i) => {
    if (i % 2 === 1) mask.fill(1, at, Math.min(at + run, mask.length));
    at += run;
  });
  return mask;
}

// src/sketch.js
var FORMAT = "dragstream-instruction/1";
var MAX_UNDO = 40;
var Sketch = class {
  constructor(width, height) {
    this.width = width;
    this.height = height;
    this.history = [];
    this.clearAll();
  }
  // Snapshot before a stroke (or Clear, + Region), so strokes can be undone one at a time.
  checkpoint() {
    this.history.push({
      frozen: this.frozen.slice(),
      current: this.current,
      regions: this.regions.map((r) => ({ ...r, mask: r.mask.slice(), path: r.path.slice() }))
    });
    if (this.history.length > MAX_UNDO) this.history.shift();
  }
  // Back to the last snapshot; false when there is none.
  undoStroke() {
    const state = this.history.pop();
    if (!state) return false;
    this.frozen = state.frozen;
    this.regions = state.regions;
    this.current = state.current;
    return true;
  }
  clearAll() {
    this.frozen = newMask(this.width, this.height);
    this.clearRegions("translate");
  }
  clearRegions(operation) {
    this.regions = [];
    this.addRegion(operation);
  }
  addRegion(operation) {
    this.regions.push({ mask: newMask(this.width, this.height), path: [], center: null, operation });
    this.current = this.regions.length - 1;
  }
  get region() {
    return this.regions[this.current];
  }
  // tool: "handle" paints the current region, "frozen" the non-editable region, "erase" clears both.
  paint(tool, a, b, radius) {
    const { width, height } = this;
    if (tool === "handle") stampStroke(this.region.mask, width, height, a, b, radius, 1);
    if (tool === "frozen") stampStroke(this.frozen, width, height, a, b, radius, 1);
    if (tool === "erase") {
      stampStroke(this.region.mask, width, height, a, b, radius, 0);
      stampStroke(this.frozen, width, height, a, b, radius, 0);
    }
  }
  startPath(point) {
    this.region.path = [point];
  }
  extendPath(point) {
    this.region.path.push(point);
  }
  setCenter(point) {
    this.region.center = point;
  }
  // Targets of a region: one for an edit, one per frame (`frames` of them) for an animation.
  targets(region, mode, frames) {
    const path = region.path;
    if (path.length < 2) return [];
    if (mode === "edit") return [path[path.length - 1]];
    const spacing = 0.25;
    return resamplePath(thinPath(path, spacing), frames);
  }
  // The rotation centre shown for a region: the one set, else the centroid of its mask (as the kernel does).
  shownCenter(region) {
    return region.center || centroid(region.mask, this.width);
  }
  drawn() {
    return this.regions.filter((r) => r.path.length > 0 || !isEmpty(r.mask));
  }
  // The instruction in the kernel's JSON format, or throws an Error saying what is missing.
  instruction(mode, frames, frameIndex) {
    const regions = this.drawn();
    if (regions.length === 0) throw new Error("nothing to apply: paint a handle region and draw its trajectory");
    regions.forEach((r, i) => {
      if (r.path.length < 2) {
        throw new Error(`region ${i} has no trajectory: drag from the handle point to where it should go`);
      }
    });
    return {
      format: FORMAT,
      mode,
      frame_size: [this.height, this.width],
      frame_index: frameIndex,
      frozen_mask: isEmpty(this.frozen) ? null : encodeMask(this.frozen, this.width, this.height),
      regions: regions.map((r) => ({
        operation: r.operation,
        handle: roundPoint(r.path[0]),
        targets: this.targets(r, mode, frames).map(roundPoint),
        center: r.center ? roundPoint(r.center) : null,
        mask: encodeMask(r.mask, this.width, this.height)
      }))
    };
  }
};

// src/stream.js
var WINDOW_MS = 2e3;
var MIN_SPAN_MS = 400;
function rateAndJitter(t) {
  if (t.length < 3 || t[t.length - 1] - t[0] < MIN_SPAN_MS) return null;
  const intervals = t.slice(1).map((v, i) => v - t[i]);
  const mean = intervals.reduce((a, b) => a + b, 0) / intervals.length;
  const variance = intervals.reduce((a, b) => a + (b - mean) ** 2, 0) / intervals.length;
  return { fps: 1e3 / mean, jitter: Math.sqrt(variance) };
}
var FrameView = class {
  constructor(canvas, send, onStats) {
    this.canvas = canvas;
    this.send = send;
    this.onStats = onStats;
    this.lastSeq = 0;
    this.frameIndex = null;
    this.framesDrawn = 0;
    this.distinctDrawn = 0;
    this.drawTimes = [];
    this.held = false;
    this.pendingDrag = null;
    this.dragLatency = null;
  }
  async receive(meta, buffers) {
    let bitmap = null;
    try {
      bitmap = await createImageBitmap(new Blob([buffers[0]], { type: `image/${meta.format}` }));
      if (meta.seq > this.lastSeq && !this.held) {
        this.lastSeq = meta.seq;
        this.draw(bitmap, meta.index, meta.drag !== null && meta.drag !== void 0);
        this.noteDrag(meta.drag);
      }
    } finally {
      if (bitmap) bitmap.close();
      this.send({ type: "ack", seq: meta.seq });
    }
  }
  // The lossless still the kernel keeps in a trait (shown on render and when the stream goes idle):
  // the frame on screen again, sharper, so it does not count as a frame shown.
  async showStill(bytes, index) {
    if (!bytes || bytes.byteLength === 0) return;
    if (this.held && index !== this.frameIndex) return;
    const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
    this.paint(bitmap, index);
    bitmap.close();
    this.onStats();
  }
  paint(bitmap, index) {
    const ctx = this.canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0, this.canvas.width, this.canvas.height);
    this.frameIndex = index;
    this.framesDrawn += 1;
  }
  // A streamed frame: counted when it shows another frame than the one on screen, or a drag's re-render.
  draw(bitmap, index, dragged) {
    const distinct = index !== this.frameIndex || dragged;
    this.paint(bitmap, index);
    if (distinct) {
      this.distinctDrawn += 1;
      const now = performance.now();
      const last = this.drawTimes[this.drawTimes.length - 1];
      if (last !== void 0 && now - last > 1e3) this.drawTimes = [];
      this.drawTimes.push(now);
      while (this.drawTimes.length > 0 && now - this.drawTimes[0] > WINDOW_MS) this.drawTimes.shift();
    }
    this.onStats();
  }
  noteDrag(dragId) {
    if (this.pendingDrag && dragId === this.pendingDrag.id) {
      this.dragLatency = (performance.now() - this.pendingDrag.sentAt) / 1e3;
      this.pendingDrag = null;
    }
  }
  // {fps, jitter} of distinct frames over the last two seconds, or null while there are too few
  // (or none came for a second: the stream stopped).
  rate() {
    const t = this.drawTimes;
    if (t.length === 0 || performance.now() - t[t.length - 1] > 1e3) return null;
    return rateAndJitter(t);
  }
};

// src/index.js
var OPERATIONS = [
  ["translate", "translate"],
  ["deform", "deform"],
  ["rotate_2d", "rotate 2D"],
  ["rotate_3d", "rotate 3D"]
];
var TOOLS = [
  ["select", "Select", "click an object: its region is proposed from the model's features; refine it with the brush (V)"],
  ["handle", "Handle", "paint the region to drag (brush) (H)"],
  ["frozen", "Keep", "paint the non-editable region, which must not change (K)"],
  ["erase", "Eraser", "erase painted regions (E)"],
  ["path", "Trajectory", "drag from the handle point (red) to the target (blue) (T)"],
  ["center", "Centre", "click to place the rotation centre (C)"]
];
function render({ model, el }) {
  const [height, width] = model.get("frame_size");
  const root = h("div", { class: "dsw" });
  const sketch = new Sketch(width, height);
  const ui = { tool: "handle", mode: "animate", operation: "translate", localError: null };
  ui.applying = null;
  ui.heldWasPlaying = false;
  ui.brush = Math.max(1, Math.round(Math.max(width, height) / 24));
  const send = (content) => model.send(content);
  const frameCanvas = h("canvas", { class: "dsw-frame", width, height });
  const maskCanvas = h("canvas", { class: "dsw-masks", width, height });
  const vectorCanvas = h("canvas", { class: "dsw-vectors" });
  const stage = h("div", { class: "dsw-stage" }, [frameCanvas, maskCanvas, vectorCanvas]);
  stage.style.aspectRatio = `${width} / ${height}`;
  root.style.width = `${model.get("display_width")}px`;
  if (Math.max(width, height) < 256) stage.classList.add("dsw-pixelated");
  const info = h("div", { class: "dsw-info" });
  const status = h("div", { class: "dsw-status" });
  const frames = new FrameView(frameCanvas, send, () => showInfo());
  let redrawQueued = false;
  function redraw() {
    if (redrawQueued) return;
    redrawQueued = true;
    requestAnimationFrame(() => {
      redrawQueued = false;
      drawMasks(maskCanvas, sketch);
      root.dataset.regionPixels = sketch.region.mask.reduce((a, v) => a + v, 0);
      drawVectors(vectorCanvas, sketch, ui.mode, model.get("animation_frames"), window.devicePixelRatio || 1);
    });
  }
  function showInfo() {
    const rate = frames.rate();
    const shown = rate ? `${rate.fps.toFixed(1)} frames/s shown (jitter ${rate.jitter.toFixed(0)} ms)` : "\u2013 frames/s shown";
    const parts = [frames.held ? `frame ${frames.frameIndex ?? "-"} (held)` : `frame ${frames.frameIndex ?? "-"}`, shown];
    const generated = model.get("generation_fps");
    if (generated > 0 && model.get("playing")) parts.push(`${generated.toFixed(1)} frames/s generated`);
    if (frames.dragLatency !== null) parts.push(`last drag on screen after ${frames.dragLatency.toFixed(2)} s`);
    info.textContent = parts.join(" \xB7 ");
    info.title = info.textContent;
    root.dataset.framesDrawn = frames.framesDrawn;
    root.dataset.distinctDrawn = frames.distinctDrawn;
    root.dataset.frameIndex = frames.frameIndex ?? "";
    root.dataset.fps = rate ? rate.fps.toFixed(2) : "";
    root.dataset.jitter = rate ? rate.jitter.toFixed(1) : "";
    root.dataset.held = frames.held;
    root.dataset.dragLatency = frames.dragLatency ?? "";
  }
  function showStatus() {
    const error = ui.localError || (model.get("state") === "error" ? model.get("status") : null);
    status.textContent = ui.localError ? ui.localError : model.get("status");
    status.classList.toggle("dsw-error", Boolean(error));
    status.classList.toggle("dsw-busy", !error && model.get("state") === "busy");
    root.dataset.state = error ? "error" : model.get("state");
  }
  function localError(message) {
    ui.localError = message;
    showStatus();
  }
  let last = null;
  const toModel = (e) => roundPoint(displayToModel(e.clientX, e.clientY, stage.getBoundingClientRect(), width, height));
  vectorCanvas.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    vectorCanvas.setPointerCapture(e.pointerId);
    root.focus({ preventScroll: true });
    ui.localError = null;
    holdFrame();
    if (ui.tool === "select") {
      const [x, y] = toModel(e);
      send({ type: "select", x, y, frame: frames.frameIndex });
      showStatus();
      return;
    }
    sketch.checkpoint();
    last = toModel(e);
    if (ui.tool === "path") sketch.startPath(last);
    else if (ui.tool === "center") sketch.setCenter(last);
    else sketch.paint(ui.tool, last, last, ui.brush);
    redraw();
    showStatus();
  });
  vectorCanvas.addEventListener("pointermove", (e) => {
    if (last === null) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    for (const event of events.length ? events : [e]) {
      const point = toModel(event);
      if (ui.tool === "path") sketch.extendPath(point);
      else if (ui.tool === "center") sketch.setCenter(point);
      else sketch.paint(ui.tool, last, point, ui.brush);
      last = point;
    }
    redraw();
  });
  const release = () => {
    if (last === null) return;
    last = null;
    if (ui.tool === "path" && applyOnRelease.checked) apply();
  };
  vectorCanvas.addEventListener("pointerup", release);
  vectorCanvas.addEventListener("pointercancel", release);
  new ResizeObserver(() => {
    const rect = stage.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    vectorCanvas.width = Math.max(1, Math.round(rect.width * dpr));
    vectorCanvas.height = Math.max(1, Math.round(rect.height * dpr));
    redraw();
  }).observe(stage);
  function holdFrame() {
    if (!frames.held) {
      frames.held = true;
      ui.heldWasPlaying = model.get("playing");
      showInfo();
    }
    send({ type: "drawing" });
  }
  function releaseFrame(resume) {
    if (!frames.held) return;
    frames.held = false;
    if (resume && ui.heldWasPlaying) send({ type: "control", name: "play" });
    ui.heldWasPlaying = false;
    showInfo();
  }
  function apply() {
    if (ui.applying) {
      localError("a drag is running: wait until it is on screen");
      return;
    }
    let instruction;
    try {
      instruction = sketch.instruction(ui.mode, model.get("animation_frames"), frames.frameIndex);
    } catch (error) {
      localError(error.message);
      return;
    }
    const id = Math.floor(performance.timeOrigin + performance.now());
    sketch.checkpoint();
    ui.applying = { id, regions: sketch.regions, current: sketch.current };
    sketch.clearRegions(ui.operation);
    frames.held = false;
    frames.pendingDrag = { id, sentAt: performance.now() };
    frames.dragLatency = null;
    showApplying();
    redraw();
    showInfo();
    send({ type: "apply", id, instruction });
  }
  function showApplying() {
    applyButton.disabled = Boolean(ui.applying);
    root.dataset.applying = Boolean(ui.applying);
  }
  model.on("msg:custom", (msg, buffers) => {
    if (msg.type === "frame") frames.receive(msg, buffers);
    if (msg.type === "applied" && ui.applying && msg.id === ui.applying.id) {
      if (!msg.ok) {
        sketch.regions = ui.applying.regions;
        sketch.current = ui.applying.current;
        redraw();
      }
      ui.applying = null;
      showApplying();
    }
    if (msg.type === "selected") {
      try {
        sketch.checkpoint();
        sketch.region.mask = decodeMask(msg.mask, width, height);
        ui.tool = "handle";
        showTools();
        redraw();
      } catch (error) {
        localError(`selection: ${error.message}`);
      }
    }
  });
  const control = (name) => () => {
    releaseFrame(false);
    send({ type: "control", name });
  };
  const playOrPause = () => {
    releaseFrame(false);
    send({ type: "control", name: model.get("playing") ? "pause" : "play" });
  };
  const playButton = h("button", { class: "dsw-play", title: "play or pause (Space)", onclick: playOrPause });
  const speed = h("input", {
    type: "range",
    min: 1,
    max: 30,
    step: 1,
    value: model.get("speed"),
    title: "playback speed, frames per second",
    oninput: () => {
      model.set("speed", Number(speed.value));
      model.save_changes();
      speedLabel.textContent = `${speed.value} fps`;
    }
  });
  const speedLabel = h("span", { class: "dsw-small" }, `${model.get("speed")} fps`);
  const prompt = h("input", {
    type: "text",
    class: "dsw-prompt",
    value: model.get("prompt"),
    title: "prompt (takes effect on reset)",
    onchange: () => {
      model.set("prompt", prompt.value);
      model.save_changes();
    }
  });
  const seed = h("input", {
    type: "number",
    class: "dsw-seed",
    value: model.get("seed"),
    min: 0,
    title: "seed (takes effect on reset)",
    onchange: () => {
      model.set("seed", Math.max(0, Math.floor(Number(seed.value) || 0)));
      model.save_changes();
    }
  });
  const toolbar = h("div", { class: "dsw-row" }, [
    playButton,
    h("button", { onclick: control("step"), title: "generate one block (S)" }, "Step"),
    h("button", { class: "dsw-replay", onclick: control("replay"), title: "play back the stream so far" }, "Replay"),
    ...historyButtons(control),
    h("button", { onclick: control("reset"), title: "restart the stream with this prompt and seed" }, "Reset"),
    h("button", { onclick: control("stop"), title: "stop a running drag optimisation and pause" }, "Stop"),
    h("button", { class: "dsw-export", onclick: () => send({ type: "export" }), title: "write the stream so far (MP4, GIF) and its drag instructions (JSON) to the widget's export folder" }, "Export"),
    speed,
    speedLabel,
    prompt,
    seed
  ]);
  const toolButtons = TOOLS.map(([name, label, title]) => h("button", { class: "dsw-tool", "data-tool": name, title, onclick: () => {
    ui.tool = name;
    showTools();
  } }, label));
  function showTools() {
    toolButtons.forEach((b) => b.classList.toggle("dsw-active", b.dataset.tool === ui.tool));
    vectorCanvas.dataset.tool = ui.tool;
  }
  const mode = select(
    [["edit", "edit the frame on screen"], ["animate", "animate the next frames"]],
    ui.mode,
    (v) => {
      ui.mode = v;
      redraw();
    },
    "mode"
  );
  const operation = select(OPERATIONS, ui.operation, (v) => {
    ui.operation = v;
    sketch.region.operation = v;
    redraw();
  }, "operation of the current region");
  const brush = h("input", {
    type: "range",
    min: 1,
    max: Math.max(2, Math.round(Math.max(width, height) / 6)),
    value: ui.brush,
    title: "brush radius in model pixels",
    oninput: () => {
      ui.brush = Number(brush.value);
    }
  });
  const animationFrames = h("input", {
    type: "number",
    class: "dsw-seed",
    min: 1,
    max: 240,
    value: model.get("animation_frames"),
    title: "frames an animation lasts (one target point per frame)",
    onchange: () => {
      model.set("animation_frames", Math.max(1, Math.floor(Number(animationFrames.value) || 1)));
      model.save_changes();
      redraw();
    }
  });
  const applyButton = h("button", { class: "dsw-apply", onclick: apply, title: "apply the drag (Enter)" }, "Apply");
  const [applyOnReleaseLabel, applyOnRelease] = checkbox("apply on release", false, () => {
  }, "apply the drag as soon as the trajectory is drawn");
  function clearDrawing() {
    sketch.checkpoint();
    sketch.clearAll();
    sketch.region.operation = ui.operation;
    ui.localError = null;
    releaseFrame(true);
    redraw();
    showStatus();
  }
  function undoStroke() {
    if (!sketch.undoStroke()) {
      localError("nothing drawn to undo");
      return;
    }
    ui.localError = null;
    redraw();
    showStatus();
  }
  const tools = h("div", { class: "dsw-row" }, [
    mode,
    operation,
    ...toolButtons,
    h("span", { class: "dsw-group" }, [h("span", { class: "dsw-small" }, "brush"), brush]),
    h("span", { class: "dsw-group" }, [h("span", { class: "dsw-small" }, "frames"), animationFrames]),
    h("button", { onclick: () => {
      sketch.checkpoint();
      sketch.addRegion(ui.operation);
      redraw();
    }, title: "start another handle region" }, "+ Region"),
    h("button", { class: "dsw-undo-stroke", onclick: undoStroke, title: "undo the last stroke (Ctrl+Z)" }, "Undo stroke"),
    h("button", { class: "dsw-clear", onclick: clearDrawing, title: "clear the drawing and let the stream go on (Esc)" }, "Clear"),
    applyOnReleaseLabel,
    applyButton
  ]);
  const toggles = h("div", { class: "dsw-row" }, [h("span", { class: "dsw-small" }, "method:")]);
  for (const [name, label, title] of [
    ["adsr", "ADSR", "re-standardise the dragged latent to its neighbouring frames"],
    ["sfs", "SFS", "low-pass the context keys/values while optimising"],
    ["css", "CSS", "Gaussian map on the latent gradient around the target"],
    ["compare", "compare (Fig. 2a)", "before each drag, also run it without ADSR and not at all; the strips show both dashed"]
  ]) {
    const [node, input] = checkbox(label, model.get(name), (v) => {
      model.set(name, v);
      model.save_changes();
    }, title);
    model.on(`change:${name}`, () => {
      input.checked = model.get(name);
    });
    toggles.append(node);
  }
  function showPlaying() {
    playButton.textContent = model.get("playing") ? "Pause" : "Play";
  }
  model.on("change:playing", showPlaying);
  model.on("change:status", () => {
    ui.localError = null;
    showStatus();
  });
  model.on("change:state", showStatus);
  model.on("change:generation_fps", showInfo);
  model.on("change:playing", showInfo);
  model.on("change:prompt", () => {
    prompt.value = model.get("prompt");
  });
  model.on("change:seed", () => {
    seed.value = model.get("seed");
  });
  model.on("change:frame", () => frames.showStill(model.get("frame"), model.get("frame_index")));
  const TOOL_KEYS = { v: "select", h: "handle", k: "frozen", e: "erase", t: "path", c: "center" };
  root.tabIndex = 0;
  root.dataset.lmSuppressShortcuts = "true";
  root.addEventListener("keydown", (e) => {
    if (e.target.closest("input, select, textarea")) return;
    const key = e.key.toLowerCase();
    if ((e.ctrlKey || e.metaKey) && key === "z") undoStroke();
    else if (e.ctrlKey || e.metaKey || e.altKey) return;
    else if (key === " ") playOrPause();
    else if (key === "enter") apply();
    else if (key === "escape") clearDrawing();
    else if (key === "s") control("step")();
    else if (TOOL_KEYS[key]) {
      ui.tool = TOOL_KEYS[key];
      showTools();
    } else return;
    e.preventDefault();
    e.stopPropagation();
  });
  root.append(toolbar, stage, info, tools, toggles, status);
  el.append(root);
  showPlaying();
  showTools();
  showStatus();
  showInfo();
  frames.showStill(model.get("frame"), model.get("frame_index"));
  const ticker = setInterval(showInfo, 500);
  return () => clearInterval(ticker);
}
var index_default = { render };
function historyButtons(control) {
  return [
    h("button", { class: "dsw-undo", onclick: control("undo"), title: "undo the last drag, reset or prompt change (with the blocks since)" }, "Undo"),
    h("button", { class: "dsw-redo", onclick: control("redo"), title: "redo what the last undo took back" }, "Redo")
  ];
}
export {
  index_default as default
};
