/**
 * Exclusive feature bundling (LightGBM's EFB: Ke et al., NeurIPS 2017, section 4). Columns that are
 * mostly at one code, one-hot columns above all, and never off it in the same row share one
 * histogram column: a histogram pass then reads one code per row for the whole bundle instead of one
 * per column. A categorical one-hot encoded into 200 columns costs one pass, not 200.
 *
 * Only bundles without a single conflicting row are made, so every column's histogram is recovered
 * exactly: its other codes' sums are accumulated over the same rows in the same order as a pass of
 * its own would, and its most frequent code's sums are derived from the node's totals, as they are
 * for every column (gbdt-tree.ts). A bundled fit is therefore the very same model as an unbundled one.
 */
import type { Binned } from './gbdt-bins.js';

/** One histogram pass: a column of codes and the features it feeds. */
export interface HistColumn {
  /** The n training rows' codes: a feature's own column of Binned.codes, or a bundle's. */
  codes: Uint8Array;
  /** The features read through it, ascending. */
  features: number[];
  /**
   * A bundle's: per bundle code, where its sums go in a histogram (the index of the slot's first
   * number). Code 0, every feature at its most frequent code, goes to a sink slot nobody reads.
   * Null for a single feature, whose code c goes to its own slot c.
   */
  slot: Int32Array | null;
}

export interface Bundling {
  /** Per feature: its most frequent code over the training rows (the lowest on ties). */
  defaults: Int32Array;
  columns: HistColumn[];
  /** Per feature: the index in `columns` of the column it is read through. */
  columnOf: Int32Array;
}

/** A column is a candidate when at most this share of rows is off its most frequent code. */
const SPARSE_SHARE = 0.5;
/** Bundles a candidate is tried against before it stays on its own (bounds the search). */
const MAX_BUNDLES = 64;
/** Codes in a bundle, its code 0 included: one byte per row, as Binned.codes. */
const MAX_BUNDLE_CODES = 256;

interface Open {
  features: number[];
  /** Codes taken so far, code 0 included. */
  codes: number;
  /** A bit per row: some feature of the bundle is off its most frequent code there. */
  taken: Uint32Array;
}

/**
 * Groups the features of `binned` into histogram columns. `offsets[f]` is feature f's first slot in a
 * histogram (3 numbers a slot) and `sink` a slot past every feature's. With `bundle` false every
 * feature is a column of its own (the reference the bundled fit is tested against).
 */
export function bundleColumns(
  binned: Binned,
  n: number,
  offsets: Int32Array,
  sink: number,
  bundle = true,
): Bundling {
  const width = binned.bins.length;
  const defaults = new Int32Array(width);
  const counts = new Int32Array(256);
  const used: number[][] = [];
  const offRows = new Int32Array(width);
  for (let f = 0; f < width; f++) {
    const col = binned.codes.subarray(f * n, (f + 1) * n);
    counts.fill(0);
    for (let i = 0; i < n; i++) counts[col[i] as number] = (counts[col[i] as number] as number) + 1;
    let d = 0;
    for (let c = 1; c <= (binned.bins[f] as number); c++)
      if ((counts[c] as number) > (counts[d] as number)) d = c;
    defaults[f] = d;
    offRows[f] = n - (counts[d] as number);
    const codes: number[] = [];
    for (let c = 0; c <= (binned.bins[f] as number); c++)
      if (c !== d && (counts[c] as number) > 0) codes.push(c);
    used.push(codes);
  }

  // Greedy, as LightGBM's: the candidates with most rows off their default first, each into the
  // first bundle it has no row in common with and room in.
  const candidates: number[] = [];
  if (bundle)
    for (let f = 0; f < width; f++)
      if ((offRows[f] as number) <= SPARSE_SHARE * n && (used[f] as number[]).length < MAX_BUNDLE_CODES)
        candidates.push(f);
  candidates.sort((a, b) => (offRows[b] as number) - (offRows[a] as number) || a - b);
  const open: Open[] = [];
  const bundled = new Uint8Array(width);
  const rows = new Uint32Array(n);
  for (const f of candidates) {
    const col = binned.codes.subarray(f * n, (f + 1) * n);
    const d = defaults[f] as number;
    let m = 0;
    for (let i = 0; i < n; i++) if (col[i] !== d) rows[m++] = i;
    const need = (used[f] as number[]).length;
    let into: Open | undefined;
    for (const b of open) {
      if (b.codes + need > MAX_BUNDLE_CODES) continue;
      let clash = false;
      for (let k = 0; k < m && !clash; k++) {
        const r = rows[k] as number;
        clash = ((b.taken[r >>> 5] as number) & (1 << (r & 31))) !== 0;
      }
      if (!clash) {
        into = b;
        break;
      }
    }
    if (!into) {
      if (open.length >= MAX_BUNDLES) continue;
      into = { features: [], codes: 1, taken: new Uint32Array((n + 31) >>> 5) };
      open.push(into);
    }
    into.features.push(f);
    into.codes += need;
    for (let k = 0; k < m; k++) {
      const r = rows[k] as number;
      into.taken[r >>> 5] = (into.taken[r >>> 5] as number) | (1 << (r & 31));
    }
  }

  const columns: HistColumn[] = [];
  for (const b of open) {
    if (b.features.length < 2) continue;
    const features = b.features.sort((p, q) => p - q);
    const codes = new Uint8Array(n);
    const slot = new Int32Array(b.codes);
    slot[0] = sink * 3;
    let next = 1;
    for (const f of features) {
      bundled[f] = 1;
      // Feature f's code c becomes bundle code remap[c]; its default stays 0.
      const remap = new Uint8Array(256);
      for (const c of used[f] as number[]) {
        remap[c] = next;
        slot[next] = ((offsets[f] as number) + c) * 3;
        next++;
      }
      const col = binned.codes.subarray(f * n, (f + 1) * n);
      for (let i = 0; i < n; i++) {
        const c = remap[col[i] as number] as number;
        if (c !== 0) codes[i] = c;
      }
    }
    columns.push({ codes, features, slot });
  }
  for (let f = 0; f < width; f++)
    if (!bundled[f])
      columns.push({ codes: binned.codes.subarray(f * n, (f + 1) * n), features: [f], slot: null });
  // In feature order, so that passes read the codes roughly as they lie in memory.
  columns.sort((p, q) => (p.features[0] as number) - (q.features[0] as number));
  const columnOf = new Int32Array(width);
  columns.forEach((c, k) => {
    for (const f of c.features) columnOf[f] = k;
  });
  return { defaults, columns, columnOf };
}
