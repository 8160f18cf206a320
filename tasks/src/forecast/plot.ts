import { Raster } from '../evaluate/plots.js';

const W = 640;
const H = 320;
const PAD = 36;
const ACTUAL: readonly [number, number, number] = [60, 60, 60];
const MODEL: readonly [number, number, number] = [31, 119, 180];
const NAIVE: readonly [number, number, number] = [220, 150, 90];

/**
 * Forecast against actual closes over the test period (gray: actual, blue: the model, orange: the
 * persistence forecast), with the price range written on the y-axis.
 */
export function forecastPng(
  actual: readonly number[],
  model: readonly number[],
  persistence: readonly number[],
): Buffer {
  const r = new Raster(W, H);
  const all = [...actual, ...model, ...persistence].filter(Number.isFinite);
  const lo = Math.min(...all);
  const hi = Math.max(...all);
  const span = hi - lo || 1;
  const px = (i: number) => PAD + (i / Math.max(1, actual.length - 1)) * (W - 2 * PAD);
  const py = (v: number) => H - PAD - ((v - lo) / span) * (H - 2 * PAD);
  r.line(PAD, H - PAD, W - PAD, H - PAD, ACTUAL, 2);
  r.line(PAD, H - PAD, PAD, PAD, ACTUAL, 2);
  const series: [readonly number[], readonly [number, number, number], number][] = [
    [persistence, NAIVE, 1],
    [actual, ACTUAL, 2],
    [model, MODEL, 1],
  ];
  for (const [values, colour, thickness] of series)
    for (let i = 1; i < values.length; i++)
      r.line(px(i - 1), py(values[i - 1] as number), px(i), py(values[i] as number), colour, thickness);
  r.text(4, PAD - 14, hi.toFixed(0), ACTUAL);
  r.text(4, H - PAD + 6, lo.toFixed(0), ACTUAL);
  return r.toBuffer();
}
