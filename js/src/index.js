// DragStreamWidget front end: the streamed frame with drawing layers and the controls around it.
import { displayToModel, roundPoint } from "./coords.js";
import { checkbox, h, select } from "./dom.js";
import { drawMasks, drawVectors } from "./draw.js";
import { decodeMask } from "./masks.js";
import { Sketch } from "./sketch.js";
import { FrameView } from "./stream.js";

const OPERATIONS = [
  ["translate", "translate"],
  ["deform", "deform"],
  ["rotate_2d", "rotate 2D"],
  ["rotate_3d", "rotate 3D"],
];
const TOOLS = [
  ["select", "Select", "click an object: its region is proposed from the model's features; refine it with the brush (V)"],
  ["handle", "Handle", "paint the region to drag (brush) (H)"],
  ["frozen", "Keep", "paint the non-editable region, which must not change (K)"],
  ["erase", "Eraser", "erase painted regions (E)"],
  ["path", "Trajectory", "drag from the handle point (red) to the target (blue) (T)"],
  ["center", "Centre", "click to place the rotation centre (C)"],
];

function render({ model, el }) {
  const [height, width] = model.get("frame_size");
  // Our own root: the host (a notebook, an ipywidgets box) may restyle `el` itself.
  const root = h("div", { class: "dsw" });
  const sketch = new Sketch(width, height);
  const ui = { tool: "handle", mode: "animate", operation: "translate", localError: null };
  ui.applying = null; // the drag sent and not yet answered: {id, regions, current} to restore on failure
  ui.heldWasPlaying = false; // the stream was playing when a drawing held it
  ui.brush = Math.max(1, Math.round(Math.max(width, height) / 24));
  const send = (content) => model.send(content);

  // ----- the stage: frame, mask overlay, vector overlay -----
  const frameCanvas = h("canvas", { class: "dsw-frame", width, height });
  const maskCanvas = h("canvas", { class: "dsw-masks", width, height });
  const vectorCanvas = h("canvas", { class: "dsw-vectors" });
  const stage = h("div", { class: "dsw-stage" }, [frameCanvas, maskCanvas, vectorCanvas]);
  stage.style.aspectRatio = `${width} / ${height}`;
  root.style.width = `${model.get("display_width")}px`; // controls wrap to the video's width
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
    const shown = rate ? `${rate.fps.toFixed(1)} frames/s shown (jitter ${rate.jitter.toFixed(0)} ms)` : "– frames/s shown";
    const parts = [frames.held ? `frame ${frames.frameIndex ?? "-"} (held)` : `frame ${frames.frameIndex ?? "-"}`, shown];
    const generated = model.get("generation_fps");
    if (generated > 0 && model.get("playing")) parts.push(`${generated.toFixed(1)} frames/s generated`);
    if (frames.dragLatency !== null) parts.push(`last drag on screen after ${frames.dragLatency.toFixed(2)} s`);
    info.textContent = parts.join(" · ");
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

  // ----- pointer input: drawn locally at display rate, committed on release -----
  let last = null;
  // Rounded to 1/100 px, as sent: painted masks and sent points use the very same coordinates.
  const toModel = (e) => roundPoint(displayToModel(e.clientX, e.clientY, stage.getBoundingClientRect(), width, height));
  vectorCanvas.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    vectorCanvas.setPointerCapture(e.pointerId);
    root.focus({ preventScroll: true }); // keyboard shortcuts act on the widget drawn on last
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
    // Every position the pointer passed, not only the one per animation frame the browser delivers.
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

  // ----- holding the frame while a drag is drawn -----
  // The first stroke holds the stream on the frame on screen (the kernel pauses and keeps the frames
  // queued after it; the kernel also computes the drag's reference features meanwhile, as they do not
  // depend on the drag). Apply resumes it in the kernel; Clear, Play or Step here.
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

  // ----- drags -----
  // An Apply sends the drawing and consumes it (a second Apply finds nothing to send); while the kernel
  // runs it, Apply is disabled. A drag the kernel refuses gives its drawing back.
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
    frames.held = false; // the kernel resumes once the drag is in
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
        ui.tool = "handle"; // refine with the brush
        showTools();
        redraw();
      } catch (error) {
        localError(`selection: ${error.message}`);
      }
    }
  });

  // ----- controls -----
  const control = (name) => () => { releaseFrame(false); send({ type: "control", name }); };
  const playOrPause = () => { releaseFrame(false); send({ type: "control", name: model.get("playing") ? "pause" : "play" }); };
  const playButton = h("button", { class: "dsw-play", title: "play or pause (Space)", onclick: playOrPause });
  const speed = h("input", { type: "range", min: 1, max: 30, step: 1, value: model.get("speed"), title: "playback speed, frames per second",
    oninput: () => { model.set("speed", Number(speed.value)); model.save_changes(); speedLabel.textContent = `${speed.value} fps`; } });
  const speedLabel = h("span", { class: "dsw-small" }, `${model.get("speed")} fps`);
  const prompt = h("input", { type: "text", class: "dsw-prompt", value: model.get("prompt"), title: "prompt (takes effect on reset)",
    onchange: () => { model.set("prompt", prompt.value); model.save_changes(); } });
  const seed = h("input", { type: "number", class: "dsw-seed", value: model.get("seed"), min: 0, title: "seed (takes effect on reset)",
    onchange: () => { model.set("seed", Math.max(0, Math.floor(Number(seed.value) || 0))); model.save_changes(); } });
  const toolbar = h("div", { class: "dsw-row" }, [
    playButton,
    h("button", { onclick: control("step"), title: "generate one block (S)" }, "Step"),
    h("button", { class: "dsw-replay", onclick: control("replay"), title: "play back the stream so far" }, "Replay"),
    ...historyButtons(control),
    h("button", { onclick: control("reset"), title: "restart the stream with this prompt and seed" }, "Reset"),
    h("button", { onclick: control("stop"), title: "stop a running drag optimisation and pause" }, "Stop"),
    h("button", { class: "dsw-export", onclick: () => send({ type: "export" }), title: "write the stream so far (MP4, GIF) and its drag instructions (JSON) to the widget's export folder" }, "Export"),
    speed, speedLabel, prompt, seed,
  ]);

  const toolButtons = TOOLS.map(([name, label, title]) =>
    h("button", { class: "dsw-tool", "data-tool": name, title, onclick: () => { ui.tool = name; showTools(); } }, label));
  function showTools() {
    toolButtons.forEach((b) => b.classList.toggle("dsw-active", b.dataset.tool === ui.tool));
    vectorCanvas.dataset.tool = ui.tool;
  }
  const mode = select([["edit", "edit the frame on screen"], ["animate", "animate the next frames"]], ui.mode,
    (v) => { ui.mode = v; redraw(); }, "mode");
  const operation = select(OPERATIONS, ui.operation, (v) => { ui.operation = v; sketch.region.operation = v; redraw(); }, "operation of the current region");
  const brush = h("input", { type: "range", min: 1, max: Math.max(2, Math.round(Math.max(width, height) / 6)), value: ui.brush,
    title: "brush radius in model pixels", oninput: () => { ui.brush = Number(brush.value); } });
  const animationFrames = h("input", { type: "number", class: "dsw-seed", min: 1, max: 240, value: model.get("animation_frames"),
    title: "frames an animation lasts (one target point per frame)",
    onchange: () => { model.set("animation_frames", Math.max(1, Math.floor(Number(animationFrames.value) || 1))); model.save_changes(); redraw(); } });
  const applyButton = h("button", { class: "dsw-apply", onclick: apply, title: "apply the drag (Enter)" }, "Apply");
  const [applyOnReleaseLabel, applyOnRelease] = checkbox("apply on release", false, () => {}, "apply the drag as soon as the trajectory is drawn");
  function clearDrawing() {
    sketch.checkpoint();
    sketch.clearAll();
    sketch.region.operation = ui.operation;
    ui.localError = null;
    releaseFrame(true); // Cancel: the stream goes on as it was
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
    mode, operation, ...toolButtons,
    h("span", { class: "dsw-group" }, [h("span", { class: "dsw-small" }, "brush"), brush]),
    h("span", { class: "dsw-group" }, [h("span", { class: "dsw-small" }, "frames"), animationFrames]),
    h("button", { onclick: () => { sketch.checkpoint(); sketch.addRegion(ui.operation); redraw(); }, title: "start another handle region" }, "+ Region"),
    h("button", { class: "dsw-undo-stroke", onclick: undoStroke, title: "undo the last stroke (Ctrl+Z)" }, "Undo stroke"),
    h("button", { class: "dsw-clear", onclick: clearDrawing, title: "clear the drawing and let the stream go on (Esc)" }, "Clear"),
    applyOnReleaseLabel,
    applyButton,
  ]);

  const toggles = h("div", { class: "dsw-row" }, [h("span", { class: "dsw-small" }, "method:")]);
  for (const [name, label, title] of [
    ["adsr", "ADSR", "re-standardise the dragged latent to its neighbouring frames"],
    ["sfs", "SFS", "low-pass the context keys/values while optimising"],
    ["css", "CSS", "Gaussian map on the latent gradient around the target"],
    ["compare", "compare (Fig. 2a)", "before each drag, also run it without ADSR and not at all; the strips show both dashed"],
  ]) {
    const [node, input] = checkbox(label, model.get(name), (v) => { model.set(name, v); model.save_changes(); }, title);
    model.on(`change:${name}`, () => { input.checked = model.get(name); });
    toggles.append(node);
  }

  function showPlaying() {
    playButton.textContent = model.get("playing") ? "Pause" : "Play";
  }
  model.on("change:playing", showPlaying);
  model.on("change:status", () => { ui.localError = null; showStatus(); }); // the kernel's news comes after
  model.on("change:state", showStatus);
  model.on("change:generation_fps", showInfo);
  model.on("change:playing", showInfo);
  model.on("change:prompt", () => { prompt.value = model.get("prompt"); });
  model.on("change:seed", () => { seed.value = model.get("seed"); });
  model.on("change:frame", () => frames.showStill(model.get("frame"), model.get("frame_index")));

  // ----- keyboard, while the widget has focus (clicking the frame gives it) -----
  const TOOL_KEYS = { v: "select", h: "handle", k: "frozen", e: "erase", t: "path", c: "center" };
  root.tabIndex = 0;
  root.dataset.lmSuppressShortcuts = "true"; // the notebook's own shortcuts stay out of the widget
  root.addEventListener("keydown", (e) => {
    if (e.target.closest("input, select, textarea")) return; // typing a prompt or a seed
    const key = e.key.toLowerCase();
    if ((e.ctrlKey || e.metaKey) && key === "z") undoStroke();
    else if (e.ctrlKey || e.metaKey || e.altKey) return;
    else if (key === " ") playOrPause();
    else if (key === "enter") apply();
    else if (key === "escape") clearDrawing();
    else if (key === "s") control("step")();
    else if (TOOL_KEYS[key]) { ui.tool = TOOL_KEYS[key]; showTools(); }
    else return;
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

export default { render };

// Undo and Redo go by the person's actions: a drag (an animation whole), a reset, a prompt change.
function historyButtons(control) {
  return [
    h("button", { class: "dsw-undo", onclick: control("undo"), title: "undo the last drag, reset or prompt change (with the blocks since)" }, "Undo"),
    h("button", { class: "dsw-redo", onclick: control("redo"), title: "redo what the last undo took back" }, "Redo"),
  ];
}
