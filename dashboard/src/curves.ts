/** Curve points (x and y in [0, 1]) to SVG path data, without a DOM: the Models page draws from these. */

export interface Plot {
  width: number;
  height: number;
  /** Room for the axes' labels, on every side. */
  pad: number;
}

export const PLOT: Plot = { width: 360, height: 300, pad: 36 };

/** The pixel position of a unit-square point: y grows upwards, as on a chart. */
export function toPixels([x, y]: readonly [number, number], plot: Plot = PLOT): [number, number] {
  const w = plot.width - 2 * plot.pad;
  const h = plot.height - 2 * plot.pad;
  const clamp = (v: number) => Math.min(1, Math.max(0, v));
  return [round2(plot.pad + clamp(x) * w), round2(plot.height - plot.pad - clamp(y) * h)];
}

/** `M x y L x y …` through every finite point, in order; '' for fewer than two. */
export function pathData(points: readonly (readonly [number, number])[], plot: Plot = PLOT): string {
  const finite = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (finite.length < 2) return '';
  return finite.map((p, i) => `${i === 0 ? 'M' : 'L'}${toPixels(p, plot).join(' ')}`).join(' ');
}

const round2 = (v: number) => Math.round(v * 100) / 100;
