// Drawing the overlays: masks at model resolution, vectors (trajectories, points, arcs) at display resolution.
import { modelToCanvas } from "./coords.js";
import { signedAngle } from "./paths.js";

const REGION_TINT = [255, 80, 40, 110];
const CURRENT_TINT = [255, 60, 30, 150];
const FROZEN_TINT = [40, 200, 255, 90];
const HANDLE = "#e8261c";
const TARGET = "#1f6fff";
const CENTER = "#ffd21f";

export function drawMasks(canvas, sketch) {
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

// Trajectories (handle red, sampled targets blue, the drawn polyline), rotation centres with the
// arc of the angle they turn, in canvas pixels of `canvas` (display size times devicePixelRatio).
export function drawVectors(canvas, sketch, mode, frames, scale) {
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
      path.forEach((p, i) => (i ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1])));
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
        ctx.fillText(`${((turn * 180) / Math.PI).toFixed(0)}°`, center[0] + radius + 4 * scale, center[1]);
      }
    }
  }
}
