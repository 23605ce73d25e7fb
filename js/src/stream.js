// Frames arriving from the kernel: decode, draw in order, acknowledge (flow control), measure.

export class FrameView {
  constructor(canvas, send, onStats) {
    this.canvas = canvas;
    this.send = send;
    this.onStats = onStats;
    this.lastSeq = 0;
    this.frameIndex = null;
    this.framesDrawn = 0;
    this.drawTimes = [];
    this.pendingDrag = null; // {id, sentAt}
    this.dragLatency = null; // seconds from applying a drag to its first frame on screen
  }

  async receive(meta, buffers) {
    let bitmap = null;
    try {
      bitmap = await createImageBitmap(new Blob([buffers[0]], { type: `image/${meta.format}` }));
      if (meta.seq > this.lastSeq) {
        this.lastSeq = meta.seq;
        this.draw(bitmap, meta.index);
        this.noteDrag(meta.drag);
      }
    } finally {
      if (bitmap) bitmap.close();
      this.send({ type: "ack", seq: meta.seq });
    }
  }

  // The lossless still the kernel keeps in a trait (shown on render and when the stream goes idle).
  async showStill(bytes, index) {
    if (!bytes || bytes.byteLength === 0) return;
    const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
    this.draw(bitmap, index);
    bitmap.close();
  }

  draw(bitmap, index) {
    const ctx = this.canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0, this.canvas.width, this.canvas.height);
    this.frameIndex = index;
    this.framesDrawn += 1;
    const now = performance.now();
    this.drawTimes.push(now);
    while (this.drawTimes.length > 0 && now - this.drawTimes[0] > 2000) this.drawTimes.shift();
    this.onStats();
  }

  noteDrag(dragId) {
    if (this.pendingDrag && dragId === this.pendingDrag.id) {
      this.dragLatency = (performance.now() - this.pendingDrag.sentAt) / 1000;
      this.pendingDrag = null;
    }
  }

  // Frames drawn per second over the last two seconds.
  fps() {
    const t = this.drawTimes;
    if (t.length < 2 || performance.now() - t[t.length - 1] > 1000) return 0;
    return ((t.length - 1) * 1000) / (t[t.length - 1] - t[0]);
  }
}
