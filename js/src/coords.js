// Display <-> model pixel coordinates.
// Model pixels: x right, y down, pixel centres at integers, so pixel i covers [i - 0.5, i + 0.5].
// The stage shows the W x H frame stretched to its box, whatever the cell width or aspect ratio.

export function displayToModel(clientX, clientY, rect, width, height) {
  const x = ((clientX - rect.left) / rect.width) * width - 0.5;
  const y = ((clientY - rect.top) / rect.height) * height - 0.5;
  return [clamp(x, 0, width - 1), clamp(y, 0, height - 1)];
}

export function modelToCanvas(point, canvasWidth, canvasHeight, width, height) {
  return [((point[0] + 0.5) / width) * canvasWidth, ((point[1] + 0.5) / height) * canvasHeight];
}

export function clamp(value, low, high) {
  return Math.min(Math.max(value, low), high);
}

// Model points are sent rounded to 1/100 px: exact enough, and short JSON.
export function roundPoint(point) {
  return [Math.round(point[0] * 100) / 100, Math.round(point[1] * 100) / 100];
}
