// Frames arriving from the kernel: decode, draw in order, acknowledge (flow control), measure.

const WINDOW_MS = 2000; // the rate and jitter are measured over this much recent time
const MIN_SPAN_MS = 400; // and only once distinct frames span at least this long

// Frames per second and jitter (standard deviation of the intervals, ms) of draw times `t` (ms),
// or null where too few frames span too short a time to say.
export function rateAndJitter(t) {
  if (t.length < 3 || t[t.length - 1] - t[0] < MIN_SPAN_MS) return null;
  const intervals = t.slice(1).map((v, i) => v - t[i]);
  const mean = intervals.reduce((a, b) => a + b, 0) / intervals.length;
  const variance = intervals.reduce((a, b) => a + (b - mean) ** 2, 0) / intervals.length;
  return { fps: 1000 / mean, jitter: Math.sqrt(variance) };
}

export class FrameView {
  constructor(canvas, send, onStats) {
    this.canvas = canvas;
    this.send = send;
    this.onStats = onStats;
    this.lastSeq = 0;
    this.frameIndex = null;
    this.framesDrawn = 0;
    this.distinctDrawn = 0; // streamed frames that changed the frame on screen
    this.drawTimes = []; // when each of the recent distinct frames was drawn
    this.held = false; // a drag is being drawn: the frame on screen stays
    this.pendingDrag = null; // {id, sentAt}
    this.dragLatency = null; // seconds from applying a drag to its first frame on screen
  }

  async receive(meta, buffers) {
    let bitmap = null;
    try {
      bitmap = await createImageBitmap(new Blob([buffers[0]], { type: `image/${meta.format}` }));
      if (meta.seq > this.lastSeq && !this.held) {
        this.lastSeq = meta.seq;
        this.draw(bitmap, meta.index, meta.drag !== null && meta.drag !== undefined);
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
      if (last !== undefined && now - last > 1000) this.drawTimes = []; // the stream had stopped: start afresh
      this.drawTimes.push(now);
      while (this.drawTimes.length > 0 && now - this.drawTimes[0] > WINDOW_MS) this.drawTimes.shift();
    }
    this.onStats();
  }

  noteDrag(dragId) {
    if (this.pendingDrag && dragId === this.pendingDrag.id) {
      this.dragLatency = (performance.now() - this.pendingDrag.sentAt) / 1000;
      this.pendingDrag = null;
    }
  }

  // {fps, jitter} of distinct frames over the last two seconds, or null while there are too few
  // (or none came for a second: the stream stopped).
  rate() {
    const t = this.drawTimes;
    if (t.length === 0 || performance.now() - t[t.length - 1] > 1000) return null;
    return rateAndJitter(t);
  }
}
