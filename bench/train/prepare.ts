/**
 * The learners' inputs, made once per dataset and handed unchanged to both sides (Driftwood in this
 * process, the references in Python through float32 files):
 *
 * - linear family (logistic regressions): numeric columns median-imputed, a 0/1 `missing` column
 *   after each one that has missing values in training, then standardised; categoricals one-hot.
 *   Medians, means and standard deviations come from the training rows only.
 * - tree family (gradient-boosted trees): numeric columns raw, NaN left in for the learner to route;
 *   categoricals one-hot, the same columns as the linear family's.
 * - native (LightGBM and HistGradientBoosting only, as extra rows): numeric raw, each categorical one
 *   column of level codes (NaN missing), declared categorical to the library.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RawDataset } from './generated.js';

export interface Matrix {
  x: Float32Array;
  y: Float32Array;
}

export interface Family {
  width: number;
  columns: string[];
  train: Matrix;
  validation: Matrix;
  holdout: Matrix;
  /** Native family only: the indices of the categorical columns. */
  categorical?: number[];
}

export type Split = { train: number[]; validation: number[]; holdout: number[] };

const PARTS = ['train', 'validation', 'holdout'] as const;

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const s = Float64Array.from(values).sort();
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Builds a family's matrices: `columns` maps one raw row index to that row's values. */
function family(
  columns: string[],
  split: Split,
  y: Float32Array,
  fill: (row: number, out: Float32Array, offset: number) => void,
  categorical?: number[],
): Family {
  const width = columns.length;
  const matrix = (rows: number[]): Matrix => {
    const x = new Float32Array(rows.length * width);
    rows.forEach((r, i) => {
      fill(r, x, i * width);
    });
    return { x, y: Float32Array.from(rows, (r) => y[r] as number) };
  };
  return {
    width,
    columns,
    train: matrix(split.train),
    validation: matrix(split.validation),
    holdout: matrix(split.holdout),
    ...(categorical ? { categorical } : {}),
  };
}

/** The three families of a generated dataset (native only when it has categorical columns). */
export function families(d: RawDataset, split: Split): { linear: Family; tree: Family; native?: Family } {
  const w = d.numeric.length;
  const k = d.categorical.length;
  // Training statistics of each numeric column: median of the present values, missingness, then the
  // mean and standard deviation of the imputed values.
  const stats = d.numeric.map((_, j) => {
    const present: number[] = [];
    let missing = 0;
    for (const r of split.train) {
      const v = d.num[r * w + j] as number;
      if (Number.isNaN(v)) missing++;
      else present.push(v);
    }
    const impute = median(present);
    let sum = 0;
    let sq = 0;
    for (const v of present) {
      sum += v;
      sq += v * v;
    }
    const n = split.train.length;
    sum += impute * missing;
    sq += impute * impute * missing;
    const mean = sum / n;
    const sd = Math.sqrt(Math.max(sq / n - mean * mean, 0)) || 1;
    const pMiss = missing / n;
    const missSd = Math.sqrt(pMiss * (1 - pMiss)) || 1;
    return { impute, mean, sd, indicator: missing > 0, pMiss, missSd };
  });
  const levels = d.categorical.map((c) => c.levels);
  const oneHotNames = d.categorical.flatMap((c) =>
    Array.from({ length: c.levels }, (_, l) => `${c.name}=${l}`),
  );
  const oneHot = (r: number, out: Float32Array, at: number) => {
    let o = at;
    for (let c = 0; c < k; c++) {
      const code = d.cat[r * k + c] as number;
      if (code >= 0) out[o + code] = 1;
      o += levels[c] as number;
    }
  };

  const linearNames = d.numeric.flatMap((name, j) =>
    stats[j]?.indicator ? [name, `${name}__missing`] : [name],
  );
  const linear = family([...linearNames, ...oneHotNames], split, d.y, (r, out, at) => {
    let o = at;
    for (let j = 0; j < w; j++) {
      const s = stats[j] as (typeof stats)[number];
      const raw = d.num[r * w + j] as number;
      const miss = Number.isNaN(raw);
      out[o++] = ((miss ? s.impute : raw) - s.mean) / s.sd;
      if (s.indicator) out[o++] = ((miss ? 1 : 0) - s.pMiss) / s.missSd;
    }
    oneHot(r, out, o);
  });
  const tree = family([...d.numeric, ...oneHotNames], split, d.y, (r, out, at) => {
    for (let j = 0; j < w; j++) out[at + j] = d.num[r * w + j] as number;
    oneHot(r, out, at + w);
  });
  if (k === 0) return { linear, tree };
  const native = family(
    [...d.numeric, ...d.categorical.map((c) => c.name)],
    split,
    d.y,
    (r, out, at) => {
      for (let j = 0; j < w; j++) out[at + j] = d.num[r * w + j] as number;
      for (let c = 0; c < k; c++) {
        const code = d.cat[r * k + c] as number;
        out[at + w + c] = code >= 0 ? code : Number.NaN;
      }
    },
    Array.from({ length: k }, (_, c) => w + c),
  );
  return { linear, tree, native };
}

/** What the Python side reads: meta.json and one float32 file per family, part, x or y. */
export interface Exchange {
  dataset: string;
  l2: number;
  threads: number;
  /** Return the logistic regression's coefficients, and those of a tight (tol 1e-12) refit. */
  coefficients: boolean;
  families: Record<string, { width: number; categorical?: number[] }>;
}

export function writeExchange(
  dir: string,
  meta: Omit<Exchange, 'families'>,
  fams: Record<string, Family | undefined>,
): void {
  const families: Exchange['families'] = {};
  for (const [name, f] of Object.entries(fams)) {
    if (!f) continue;
    families[name] = { width: f.width, ...(f.categorical ? { categorical: f.categorical } : {}) };
    for (const part of PARTS) {
      writeFileSync(path.join(dir, `${name}.${part}.x.f32`), f[part].x);
      writeFileSync(path.join(dir, `${name}.${part}.y.f32`), f[part].y);
    }
  }
  writeFileSync(path.join(dir, 'meta.json'), JSON.stringify({ ...meta, families } satisfies Exchange));
}
