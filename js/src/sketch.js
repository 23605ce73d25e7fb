// What a person has drawn on the frame: handle regions (mask, trajectory, rotation centre,
// operation), the non-editable region, and the instruction JSON built from them.
import { roundPoint } from "./coords.js";
import { centroid, encodeMask, isEmpty, newMask, stampStroke } from "./masks.js";
import { resamplePath, thinPath } from "./paths.js";

export const FORMAT = "dragstream-instruction/1";
const MAX_UNDO = 40; // strokes kept for undo

export class Sketch {
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
      regions: this.regions.map((r) => ({ ...r, mask: r.mask.slice(), path: r.path.slice() })),
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
        mask: encodeMask(r.mask, this.width, this.height),
      })),
    };
  }
}
