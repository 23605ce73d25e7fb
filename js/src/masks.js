// Brush masks at model resolution: Uint8Array(width * height), 1 = painted.

export function newMask(width, height) {
  return new Uint8Array(width * height);
}

// Paint (value 1) or erase (value 0) a disc of radius r model pixels centred at (cx, cy).
export function stampDisc(mask, width, height, cx, cy, r, value) {
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

// A stroke from a to b: discs every half radius, so fast pointer moves leave no gaps.
export function stampStroke(mask, width, height, a, b, r, value) {
  const length = Math.hypot(b[0] - a[0], b[1] - a[1]);
  const steps = Math.max(1, Math.ceil(length / Math.max(r / 2, 0.5)));
  for (let i = 0; i <= steps; i++) {
    const t = i / steps;
    stampDisc(mask, width, height, a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]), r, value);
  }
}

export function isEmpty(mask) {
  return !mask.some((v) => v !== 0);
}

// Row-major run lengths, alternating from unpainted: the {"size", "counts"} format of ops.encode_mask.
export function encodeMask(mask, width, height) {
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

export function centroid(mask, width) {
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

// The inverse of encodeMask: {"size": [height, width], "counts"} to a Uint8Array(width * height).
export function decodeMask(encoded, width, height) {
  const [h, w] = encoded.size;
  if (h !== height || w !== width) throw new Error(`a ${w}x${h} mask does not fit the ${width}x${height} frame`);
  const mask = newMask(width, height);
  let at = 0;
  encoded.counts.forEach((run, i) => {
    if (i % 2 === 1) mask.fill(1, at, Math.min(at + run, mask.length));
    at += run;
  });
  return mask;
}
