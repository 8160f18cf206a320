/**
 * One boosting tree, grown best-first on gradient histograms (LightGBM's leaf-wise growth, Ke et al.,
 * NeurIPS 2017): the leaf whose best split gains most is split next, until maxLeaves, maxDepth or no
 * split gains. A leaf owns a contiguous range of the row index array, which a split partitions in
 * place (stably, so rows stay in ascending order and the code reads stay near-sequential). Only the
 * smaller child's histogram is built from rows; its sibling's is the parent's minus it.
 *
 * A histogram is built one pass per histogram column (gbdt-bundles.ts: a feature, or a bundle of
 * mutually exclusive sparse ones). Every feature's most frequent code gets the node's totals minus its
 * other codes' sums rather than a sum of its own, which is what lets a bundle, whose pass never sees
 * those rows, give each of its features the very histogram a pass of its own would.
 *
 * Gain and leaf values are XGBoost's second-order ones (Chen & Guestrin, KDD 2016) with L2 penalty λ:
 * gain = G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ), value = −G/(H+λ)·learningRate.
 *
 * Monotone constraints (a sign per column: +1 the score may not fall as the value rises, −1 may not
 * rise, 0 free) as XGBoost and LightGBM's basic method do: a split on a constrained column is taken
 * only when its children's values are ordered that way, and their midpoint bounds every leaf below
 * each side, so no later split can undo the order. Leaf values are clipped to their bounds and gains
 * measured at the clipped values. Unconstrained fits take the plain formulas.
 */
import type { Binned } from './gbdt-bins.js';
import { bundleColumns, type HistColumn } from './gbdt-bundles.js';
import type { GbdtTree } from './gbdt-model.js';
import type { GbdtParams } from './gbdt-params.js';

/** Fewest summed hessian in a child, as LightGBM's min_sum_hessian_in_leaf and scikit-learn's 1e-3. */
const MIN_CHILD_HESSIAN = 1e-3;

/** State shared by every tree of one fit; the typed arrays are reused from tree to tree. */
export interface GrowState {
  n: number;
  binned: Binned;
  /** Per column: its first slot in a histogram (a slot per value bin, plus one for missing). */
  offsets: Int32Array;
  /** Histogram length: 3 numbers (gradient, hessian, rows) per slot, a sink slot last. */
  histLength: number;
  /** Per feature: its most frequent code, whose sums are derived from the node's totals. */
  defaults: Int32Array;
  /** The histogram passes: a feature's own codes, or a bundle's. */
  columns: HistColumn[];
  columnOf: Int32Array;
  /** The columns this tree reads (those holding one of its features), ascending. */
  activeColumns: Int32Array;
  activeCount: number;
  grad: Float64Array;
  hess: Float64Array;
  /** The rows this tree sees, ascending; leaves own ranges of it. */
  rows: Uint32Array;
  rowCount: number;
  /** Columns this tree may split on, ascending. */
  features: Int32Array;
  featureCount: number;
  scratch: Uint32Array;
  orderedGrad: Float64Array;
  orderedHess: Float64Array;
  pool: Float64Array[];
  /** Per column: +1, −1 or 0 (free); null when no column is constrained. */
  signs: Int8Array | null;
}

interface Split {
  gain: number;
  feature: number;
  bin: number;
  missingLeft: boolean;
  /** Left child's sums. */
  g: number;
  h: number;
  c: number;
  /** The children's (clipped, unshrunk) values, which bound the leaves below a constrained split. */
  wl: number;
  wr: number;
}

interface Leaf {
  node: number;
  start: number;
  end: number;
  depth: number;
  g: number;
  h: number;
  hist: Float64Array | null;
  best: Split | null;
  /** Bounds on this leaf's unshrunk value (±Infinity when free). */
  lo: number;
  hi: number;
}

/** `bundle` false: a histogram pass per feature, the reference a bundled fit must equal. */
export function createGrowState(
  binned: Binned,
  n: number,
  signs?: ArrayLike<number>,
  bundle = true,
): GrowState {
  const width = binned.bins.length;
  const offsets = new Int32Array(width);
  let slots = 0;
  for (let f = 0; f < width; f++) {
    offsets[f] = slots;
    slots += (binned.bins[f] as number) + 1;
  }
  const { defaults, columns, columnOf } = bundleColumns(binned, n, offsets, slots, bundle);
  return {
    n,
    binned,
    offsets,
    histLength: (slots + 1) * 3,
    defaults,
    columns,
    columnOf,
    activeColumns: new Int32Array(columns.length),
    activeCount: 0,
    grad: new Float64Array(n),
    hess: new Float64Array(n),
    rows: new Uint32Array(n),
    rowCount: 0,
    features: new Int32Array(width),
    featureCount: 0,
    scratch: new Uint32Array(n),
    orderedGrad: new Float64Array(n),
    orderedHess: new Float64Array(n),
    pool: [],
    signs:
      signs && Array.from(signs).some((v) => v !== 0)
        ? Int8Array.from({ length: width }, (_, f) => Math.sign(signs[f] ?? 0))
        : null,
  };
}

function takeHist(s: GrowState): Float64Array {
  const h = s.pool.pop();
  if (h) {
    h.fill(0);
    return h;
  }
  return new Float64Array(s.histLength);
}

/** The next tree splits on s.features[0..count) (ascending): note the columns their histograms need. */
export function useFeatures(s: GrowState, count: number): void {
  s.featureCount = count;
  const active = new Uint8Array(s.columns.length);
  for (let k = 0; k < count; k++) active[s.columnOf[s.features[k] as number] as number] = 1;
  s.activeCount = 0;
  for (let c = 0; c < active.length; c++) if (active[c]) s.activeColumns[s.activeCount++] = c;
}

function buildHist(s: GrowState, start: number, end: number, hist: Float64Array): void {
  const { rows, n } = s;
  const m = end - start;
  // Every row, in order (the root without subsampling): no indirection at all. Otherwise the
  // gradients are gathered once, so each pass reads them sequentially.
  const all = m === n;
  const g = all ? s.grad : s.orderedGrad;
  const h = all ? s.hess : s.orderedHess;
  if (!all)
    for (let i = 0; i < m; i++) {
      const r = rows[start + i] as number;
      g[i] = s.grad[r] as number;
      h[i] = s.hess[r] as number;
    }
  let tg = 0;
  let th = 0;
  for (let i = 0; i < m; i++) {
    tg += g[i] as number;
    th += h[i] as number;
  }
  for (let k = 0; k < s.activeCount; k++) {
    const column = s.columns[s.activeColumns[k] as number] as HistColumn;
    const { codes, slot } = column;
    // A bundle's code says where its sums go; a single feature's code c goes to its slot c.
    const base = slot ? 0 : (s.offsets[column.features[0] as number] as number) * 3;
    if (slot && all)
      for (let i = 0; i < m; i++) {
        const at = slot[codes[i] as number] as number;
        hist[at] = (hist[at] as number) + (g[i] as number);
        hist[at + 1] = (hist[at + 1] as number) + (h[i] as number);
        hist[at + 2] = (hist[at + 2] as number) + 1;
      }
    else if (slot)
      for (let i = 0; i < m; i++) {
        const at = slot[codes[rows[start + i] as number] as number] as number;
        hist[at] = (hist[at] as number) + (g[i] as number);
        hist[at + 1] = (hist[at + 1] as number) + (h[i] as number);
        hist[at + 2] = (hist[at + 2] as number) + 1;
      }
    else if (all)
      for (let i = 0; i < m; i++) {
        const at = base + 3 * (codes[i] as number);
        hist[at] = (hist[at] as number) + (g[i] as number);
        hist[at + 1] = (hist[at + 1] as number) + (h[i] as number);
        hist[at + 2] = (hist[at + 2] as number) + 1;
      }
    else
      for (let i = 0; i < m; i++) {
        const at = base + 3 * (codes[rows[start + i] as number] as number);
        hist[at] = (hist[at] as number) + (g[i] as number);
        hist[at + 1] = (hist[at + 1] as number) + (h[i] as number);
        hist[at + 2] = (hist[at + 2] as number) + 1;
      }
  }
  // Each feature's most frequent code: the totals minus its other codes, summed in code order.
  for (let k = 0; k < s.featureCount; k++) {
    const f = s.features[k] as number;
    const base = (s.offsets[f] as number) * 3;
    const d = base + 3 * (s.defaults[f] as number);
    const top = base + 3 * (s.binned.bins[f] as number);
    let og = 0;
    let oh = 0;
    let oc = 0;
    for (let at = base; at <= top; at += 3)
      if (at !== d) {
        og += hist[at] as number;
        oh += hist[at + 1] as number;
        oc += hist[at + 2] as number;
      }
    hist[d] = tg - og;
    hist[d + 1] = th - oh;
    hist[d + 2] = m - oc;
  }
}

/** The best split of a leaf over the tree's columns, or null when none gains or fits minLeaf. */
function bestSplit(s: GrowState, leaf: Leaf, p: GbdtParams): Split | null {
  const hist = leaf.hist as Float64Array;
  const { g, h } = leaf;
  const c = leaf.end - leaf.start;
  const l2 = p.l2;
  const { signs } = s;
  const { lo, hi } = leaf;
  // With constraints, a value is clipped to the leaf's bounds and its gain taken at that value:
  // −(2·G·w + (H+λ)·w²), which is G²/(H+λ) when nothing is clipped.
  const clip = (gs: number, hs: number): number => Math.min(Math.max(-gs / (hs + l2), lo), hi);
  const gainAt = (gs: number, hs: number, w: number): number => -(2 * gs * w + (hs + l2) * w * w);
  const parent = signs ? gainAt(g, h, clip(g, h)) : (g * g) / (h + l2);
  let best: Split | null = null;
  let bestGain = 0;
  const consider = (
    f: number,
    bin: number,
    lg: number,
    lh: number,
    lc: number,
    missingLeft: boolean,
  ): void => {
    const rc = c - lc;
    const rh = h - lh;
    if (lc < p.minLeaf || rc < p.minLeaf || lh < MIN_CHILD_HESSIAN || rh < MIN_CHILD_HESSIAN) return;
    const rg = g - lg;
    let gain: number;
    let wl = 0;
    let wr = 0;
    if (signs) {
      wl = clip(lg, lh);
      wr = clip(rg, rh);
      const sign = signs[f] as number;
      if ((sign > 0 && wl > wr) || (sign < 0 && wl < wr)) return;
      gain = gainAt(lg, lh, wl) + gainAt(rg, rh, wr) - parent;
    } else gain = (lg * lg) / (lh + l2) + (rg * rg) / (rh + l2) - parent;
    if (gain > bestGain) {
      bestGain = gain;
      best = { gain, feature: f, bin, missingLeft, g: lg, h: lh, c: lc, wl, wr };
    }
  };
  for (let k = 0; k < s.featureCount; k++) {
    const f = s.features[k] as number;
    const nb = s.binned.bins[f] as number;
    const base = (s.offsets[f] as number) * 3;
    const mg = hist[base + 3 * nb] as number;
    const mh = hist[base + 3 * nb + 1] as number;
    const mc = hist[base + 3 * nb + 2] as number;
    let lg = 0;
    let lh = 0;
    let lc = 0;
    for (let b = 0; b < nb; b++) {
      lg += hist[base + 3 * b] as number;
      lh += hist[base + 3 * b + 1] as number;
      lc += hist[base + 3 * b + 2] as number;
      if (b < nb - 1) {
        // Missing values seen here: try them on each side. Not seen: they go where most rows go,
        // as scikit-learn does.
        consider(f, b, lg, lh, lc, mc > 0 ? false : lc >= c - lc);
        if (mc > 0) consider(f, b, lg + mg, lh + mh, lc + mc, true);
      } else if (mc > 0) {
        consider(f, b, lg, lh, lc, false); // every value left, the missing ones right
      }
    }
  }
  return best;
}

/** Partitions leaf's rows stably: those going left first; returns how many went left. */
function partition(s: GrowState, leaf: Leaf, split: Split): number {
  const { rows, scratch, n } = s;
  const col = split.feature * n;
  const missing = s.binned.bins[split.feature] as number;
  const codes = s.binned.codes;
  let l = leaf.start;
  let r = 0;
  for (let i = leaf.start; i < leaf.end; i++) {
    const row = rows[i] as number;
    const code = codes[col + row] as number;
    if (code <= split.bin || (code === missing && split.missingLeft)) rows[l++] = row;
    else scratch[r++] = row;
  }
  rows.set(scratch.subarray(0, r), l);
  return l - leaf.start;
}

/** A grown tree, and per node the bin its split compares codes with (for rows the tree did not see). */
export interface GrownTree {
  tree: GbdtTree;
  splitBin: Int32Array;
}

/**
 * Grows one tree on s.rows[0..rowCount) with the gradients in s.grad/s.hess, and adds each leaf's
 * value to `margin` of the rows it holds.
 */
export function growTree(s: GrowState, p: GbdtParams, margin: Float64Array): GrownTree {
  const tree: GbdtTree = { feature: [], threshold: [], missingLeft: [], left: [], right: [], value: [] };
  const splitBins: number[] = [];
  const addNode = (): number => {
    tree.feature.push(-1);
    tree.threshold.push(0);
    tree.missingLeft.push(false);
    tree.left.push(-1);
    tree.right.push(-1);
    tree.value.push(0);
    splitBins.push(-1);
    return tree.feature.length - 1;
  };
  const splittable = (count: number, depth: number): boolean =>
    count >= 2 * p.minLeaf && (p.maxDepth === 0 || depth < p.maxDepth);

  let g = 0;
  let h = 0;
  for (let i = 0; i < s.rowCount; i++) {
    const r = s.rows[i] as number;
    g += s.grad[r] as number;
    h += s.hess[r] as number;
  }
  const root: Leaf = {
    node: addNode(),
    start: 0,
    end: s.rowCount,
    depth: 0,
    g,
    h,
    hist: null,
    best: null,
    lo: Number.NEGATIVE_INFINITY,
    hi: Number.POSITIVE_INFINITY,
  };
  if (splittable(s.rowCount, 0)) {
    root.hist = takeHist(s);
    buildHist(s, 0, s.rowCount, root.hist);
    root.best = bestSplit(s, root, p);
  }
  const leaves: Leaf[] = [root];
  while (leaves.length < p.maxLeaves) {
    let pick = -1;
    let pickGain = 0;
    for (let k = 0; k < leaves.length; k++) {
      const b = (leaves[k] as Leaf).best;
      if (b && (pick < 0 || b.gain > pickGain)) {
        pick = k;
        pickGain = b.gain;
      }
    }
    if (pick < 0) break;
    const leaf = leaves[pick] as Leaf;
    const split = leaf.best as Split;
    const nLeft = partition(s, leaf, split);
    const l = addNode();
    const r = addNode();
    const edges = s.binned.edges[split.feature] as Float64Array;
    tree.feature[leaf.node] = split.feature;
    // The last value bin has no edge above it: "every value" is any finite number.
    tree.threshold[leaf.node] = split.bin < edges.length ? (edges[split.bin] as number) : Number.MAX_VALUE;
    tree.missingLeft[leaf.node] = split.missingLeft;
    tree.left[leaf.node] = l;
    tree.right[leaf.node] = r;
    splitBins[leaf.node] = split.bin;
    const depth = leaf.depth + 1;
    // Children inherit the leaf's bounds; below a constrained split the midpoint parts them.
    const sign = s.signs ? (s.signs[split.feature] as number) : 0;
    const mid = (split.wl + split.wr) / 2;
    const left: Leaf = {
      node: l,
      start: leaf.start,
      end: leaf.start + nLeft,
      depth,
      g: split.g,
      h: split.h,
      hist: null,
      best: null,
      lo: sign < 0 ? Math.max(leaf.lo, mid) : leaf.lo,
      hi: sign > 0 ? Math.min(leaf.hi, mid) : leaf.hi,
    };
    const right: Leaf = {
      node: r,
      start: leaf.start + nLeft,
      end: leaf.end,
      depth,
      g: leaf.g - split.g,
      h: leaf.h - split.h,
      hist: null,
      best: null,
      lo: sign > 0 ? Math.max(leaf.lo, mid) : leaf.lo,
      hi: sign < 0 ? Math.min(leaf.hi, mid) : leaf.hi,
    };
    leaves.splice(pick, 1, left, right);
    const full = leaves.length >= p.maxLeaves;
    const [small, large] = nLeft <= leaf.end - leaf.start - nLeft ? [left, right] : [right, left];
    const wantSmall = !full && splittable(small.end - small.start, depth);
    const wantLarge = !full && splittable(large.end - large.start, depth);
    const parentHist = leaf.hist as Float64Array;
    if (wantSmall || wantLarge) {
      small.hist = takeHist(s);
      buildHist(s, small.start, small.end, small.hist);
      if (wantLarge) {
        // The sibling's histogram is the parent's minus the small child's, written over the parent's.
        const sh = small.hist;
        for (let i = 0; i < s.histLength; i++) parentHist[i] = (parentHist[i] as number) - (sh[i] as number);
        large.hist = parentHist;
      } else s.pool.push(parentHist);
      for (const child of [small, large]) {
        if (!child.hist) continue;
        child.best = bestSplit(s, child, p);
        if (!child.best) {
          s.pool.push(child.hist);
          child.hist = null;
        }
      }
    } else s.pool.push(parentHist);
    leaf.hist = null;
  }
  for (const leaf of leaves) {
    if (leaf.hist) s.pool.push(leaf.hist);
    const raw = leaf.h + p.l2 > 0 ? -leaf.g / (leaf.h + p.l2) : 0;
    const value = (s.signs ? Math.min(Math.max(raw, leaf.lo), leaf.hi) : raw) * p.learningRate;
    tree.value[leaf.node] = value;
    for (let i = leaf.start; i < leaf.end; i++) {
      const r = s.rows[i] as number;
      margin[r] = (margin[r] as number) + value;
    }
  }
  return { tree, splitBin: Int32Array.from(splitBins) };
}

/** A training row's leaf value, found by its codes (for rows outside this tree's sample). */
export function binnedLeafValue(s: GrowState, grown: GrownTree, row: number): number {
  const { tree, splitBin } = grown;
  const codes = s.binned.codes;
  let node = 0;
  for (;;) {
    const f = tree.feature[node] as number;
    if (f < 0) return tree.value[node] as number;
    const code = codes[f * s.n + row] as number;
    const left = code <= (splitBin[node] as number) || (code === s.binned.bins[f] && tree.missingLeft[node]);
    node = (left ? tree.left[node] : tree.right[node]) as number;
  }
}
