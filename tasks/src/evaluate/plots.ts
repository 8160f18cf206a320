import { PNG } from 'pngjs';
import type { Confusion } from '../models/metrics.js';

type Rgb = readonly [number, number, number];
const WHITE: Rgb = [255, 255, 255];
const AXIS: Rgb = [60, 60, 60];
const GRID: Rgb = [225, 225, 225];
const CURVE: Rgb = [31, 119, 180];
const CHANCE: Rgb = [200, 120, 120];

/** 3×5 glyphs for the figures drawn on plots (digits, '.', and the letters the labels use). */
const GLYPHS: Record<string, string> = {
  '0': '111101101101111',
  '1': '010110010010111',
  '2': '111001111100111',
  '3': '111001111001111',
  '4': '101101111001001',
  '5': '111100111001111',
  '6': '111100111101111',
  '7': '111001001001001',
  '8': '111101111101111',
  '9': '111101111001111',
  '.': '000000000000010',
  '=': '000111000111000',
  A: '010101111101101',
  C: '111100100100111',
  F: '111100110100100',
  O: '111101101101111',
  P: '111101111100100',
  R: '110101110101101',
  T: '111010010010010',
  U: '101101101101111',
};

/** A small RGB raster on pngjs: enough for curves, axes, cells and figures, without a native canvas. */
export class Raster {
  readonly png: PNG;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.png = new PNG({ width, height });
    this.fill(0, 0, width, height, WHITE);
  }

  set(x: number, y: number, c: Rgb): void {
    const xi = Math.round(x);
    const yi = Math.round(y);
    if (xi < 0 || yi < 0 || xi >= this.width || yi >= this.height) return;
    const o = (yi * this.width + xi) * 4;
    this.png.data[o] = c[0];
    this.png.data[o + 1] = c[1];
    this.png.data[o + 2] = c[2];
    this.png.data[o + 3] = 255;
  }

  fill(x: number, y: number, w: number, h: number, c: Rgb): void {
    for (let j = Math.max(0, Math.floor(y)); j < Math.min(this.height, y + h); j++)
      for (let i = Math.max(0, Math.floor(x)); i < Math.min(this.width, x + w); i++) this.set(i, j, c);
  }

  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, thickness = 1): void {
    const steps = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
    const r = (thickness - 1) / 2;
    for (let s = 0; s <= steps; s++) {
      const x = x0 + ((x1 - x0) * s) / steps;
      const y = y0 + ((y1 - y0) * s) / steps;
      if (r <= 0) this.set(x, y, c);
      else this.fill(x - r, y - r, thickness, thickness, c);
    }
  }

  text(x: number, y: number, s: string, c: Rgb, scale = 2): void {
    let cx = x;
    for (const ch of s.toUpperCase()) {
      const g = GLYPHS[ch];
      if (g)
        for (let k = 0; k < 15; k++)
          if (g[k] === '1') this.fill(cx + (k % 3) * scale, y + Math.floor(k / 3) * scale, scale, scale, c);
      cx += 4 * scale;
    }
  }

  toBuffer(): Buffer {
    return PNG.sync.write(this.png);
  }
}

const SIZE = 320;
const PAD = 36;

/** A unit-square plot (both axes 0..1) with a grid, the given curve and an optional chance line. */
function unitPlot(
  points: [number, number][],
  title: string,
  chance?: [number, number, number, number],
): Buffer {
  const r = new Raster(SIZE, SIZE);
  const span = SIZE - 2 * PAD;
  const px = (v: number) => PAD + v * span;
  const py = (v: number) => SIZE - PAD - v * span;
  for (let t = 0; t <= 10; t++) {
    r.line(px(t / 10), py(0), px(t / 10), py(1), GRID);
    r.line(px(0), py(t / 10), px(1), py(t / 10), GRID);
  }
  r.line(px(0), py(0), px(1), py(0), AXIS, 2);
  r.line(px(0), py(0), px(0), py(1), AXIS, 2);
  r.text(px(0) - 4, py(0) + 8, '0', AXIS);
  r.text(px(1) - 4, py(0) + 8, '1', AXIS);
  r.text(px(0) - 14, py(1) - 4, '1', AXIS);
  if (chance) r.line(px(chance[0]), py(chance[1]), px(chance[2]), py(chance[3]), CHANCE);
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1] as [number, number];
    const b = points[i] as [number, number];
    r.line(px(a[0]), py(a[1]), px(b[0]), py(b[1]), CURVE, 2);
  }
  r.text(PAD, 10, title, AXIS);
  return r.toBuffer();
}

export function rocPng(curve: [number, number][], auc: number): Buffer {
  return unitPlot(curve, `ROC AUC=${auc.toFixed(3)}`, [0, 0, 1, 1]);
}

export function prPng(curve: [number, number][], ap: number, positiveRate: number): Buffer {
  // Precision steps down at each false positive: draw the curve as steps, as sklearn's display does.
  const steps: [number, number][] = [];
  for (const p of curve) {
    const prev = steps[steps.length - 1];
    if (prev) steps.push([p[0], prev[1]]);
    steps.push(p);
  }
  return unitPlot(steps, `PR AUC=${ap.toFixed(3)}`, [0, positiveRate, 1, positiveRate]);
}

/** The 2×2 confusion matrix as shaded cells (darker = more rows) with the counts written in. */
export function confusionPng(c: Confusion, threshold: number): Buffer {
  const r = new Raster(SIZE, SIZE);
  const cells: [number, number, number][] = [
    [0, 0, c.tn],
    [1, 0, c.fp],
    [0, 1, c.fn],
    [1, 1, c.tp],
  ];
  const max = Math.max(1, c.tn, c.fp, c.fn, c.tp);
  const cell = (SIZE - 2 * PAD) / 2;
  for (const [col, row, count] of cells) {
    const shade = Math.round(235 - 185 * (count / max));
    const x = PAD + col * cell;
    const y = PAD + row * cell;
    r.fill(x, y, cell - 2, cell - 2, [shade, shade, 245]);
    const label = String(count);
    r.text(x + cell / 2 - label.length * 6, y + cell / 2 - 5, label, shade < 140 ? WHITE : AXIS, 3);
  }
  // Rows are the truth (0 then 1), columns the prediction (0 then 1); the top line names the threshold.
  r.text(PAD, 10, `T=${threshold.toFixed(3)}`, AXIS);
  r.text(14, PAD + cell / 2 - 5, '0', AXIS);
  r.text(14, PAD + cell * 1.5 - 5, '1', AXIS);
  r.text(PAD + cell / 2 - 3, SIZE - PAD + 10, '0', AXIS);
  r.text(PAD + cell * 1.5 - 3, SIZE - PAD + 10, '1', AXIS);
  return r.toBuffer();
}
