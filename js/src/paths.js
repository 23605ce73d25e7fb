// Trajectories: a drawn polyline resampled to one target per frame, and rotation angles.

// `count` points evenly spaced by arc length along `points`, ending at its last point
// (the handle, points[0], is not among them).
export function resamplePath(points, count) {
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
    const s = (total * k) / count;
    while (segment < points.length - 1 && lengths[segment] < s) segment++;
    const span = lengths[segment] - lengths[segment - 1] || 1;
    const t = (s - lengths[segment - 1]) / span;
    const a = points[segment - 1];
    const b = points[segment];
    out.push([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
  }
  return out;
}

// Signed angle at `center` from `handle` to `target`, atan2 in image coordinates (clockwise on screen).
export function signedAngle(center, handle, target) {
  const a = Math.atan2(handle[1] - center[1], handle[0] - center[0]);
  const b = Math.atan2(target[1] - center[1], target[0] - center[0]);
  let d = b - a;
  while (d <= -Math.PI) d += 2 * Math.PI;
  while (d > Math.PI) d -= 2 * Math.PI;
  return d;
}

// Drop points closer than `spacing` to the previous kept one (pointer moves come at display rate).
export function thinPath(points, spacing) {
  const out = [];
  for (const p of points) {
    const last = out[out.length - 1];
    if (!last || Math.hypot(p[0] - last[0], p[1] - last[1]) >= spacing) out.push(p);
  }
  const end = points[points.length - 1];
  if (end && out[out.length - 1] !== end) out.push(end);
  return out;
}
