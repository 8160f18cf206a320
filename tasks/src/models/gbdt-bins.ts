/**
 * Quantile binning of the training rows. Bin b of a column holds the values v with
 * edges[b − 1] < v <= edges[b]; the last bin everything above the last edge; NaN gets the code
 * `edges.length + 1`, past every value bin. Training assigns codes with the very comparison serving
 * makes (`v <= edge`, in float64, on the same float32 values), which is what makes the saved
 * thresholds reproduce the binned partition exactly.
 */

export interface Binned {
  /** Codes, column-major: column f's n codes start at f·n. */
  codes: Uint8Array;
  /** Per column: the bin edges (value bins = edges.length + 1). */
  edges: Float64Array[];
  /** Per column: the number of value bins; the missing code equals it. */
  bins: Int32Array;
}

/**
 * Edges of one column: midpoints between neighbouring distinct values when there are at most
 * maxBins of them (as scikit-learn does), otherwise cuts at the maxBins-quantiles, moved to the
 * midpoint to the next smaller distinct value.
 */
function columnEdges(sorted: Float32Array, maxBins: number): Float64Array {
  const n = sorted.length;
  if (n === 0) return new Float64Array(0);
  let distinct = 1;
  for (let i = 1; i < n; i++) if (sorted[i] !== sorted[i - 1]) distinct++;
  const edges: number[] = [];
  if (distinct <= maxBins) {
    for (let i = 1; i < n; i++)
      if (sorted[i] !== sorted[i - 1]) edges.push(((sorted[i - 1] as number) + (sorted[i] as number)) / 2);
    return Float64Array.from(edges);
  }
  for (let k = 1; k < maxBins; k++) {
    const i = Math.round((k * n) / maxBins);
    if (i <= 0 || i >= n) continue;
    const hi = sorted[i] as number;
    // The cut falls just below `hi`, between it and the next smaller distinct value.
    let j = i - 1;
    while (j >= 0 && sorted[j] === hi) j--;
    if (j < 0) continue;
    const edge = ((sorted[j] as number) + hi) / 2;
    if (edges.length === 0 || edge > (edges[edges.length - 1] as number)) edges.push(edge);
  }
  return Float64Array.from(edges);
}

/** Smallest b with v <= edges[b], or edges.length when v is above them all. */
export function binOf(edges: Float64Array, v: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (v <= (edges[mid] as number)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * Column f's distinct values, sorted, when it has at most maxBins of them (one-hot and other coded
 * columns), else null: their edges are the same as from the whole sorted column, without its sort.
 */
function fewDistinct(
  x: Float32Array,
  n: number,
  width: number,
  f: number,
  maxBins: number,
): Float32Array | null {
  const seen = new Set<number>();
  for (let i = 0; i < n; i++) {
    const v = x[i * width + f] as number;
    if (Number.isNaN(v) || seen.has(v)) continue;
    if (seen.size === maxBins) return null;
    seen.add(v);
  }
  return Float32Array.from(seen).sort();
}

/** Bins rows x (row-major, `width` columns) with edges from those same rows. */
export function binRows(x: Float32Array, n: number, width: number, maxBins: number): Binned {
  const codes = new Uint8Array(n * width);
  const edges: Float64Array[] = [];
  const bins = new Int32Array(width);
  // Float32 like the rows: sorting it is half the work of sorting doubles, and loses nothing.
  const column = new Float32Array(n);
  for (let f = 0; f < width; f++) {
    const few = fewDistinct(x, n, width, f, maxBins);
    let e: Float64Array;
    if (few) e = columnEdges(few, maxBins);
    else {
      let m = 0;
      for (let i = 0; i < n; i++) {
        const v = x[i * width + f] as number;
        if (!Number.isNaN(v)) column[m++] = v;
      }
      e = columnEdges(column.subarray(0, m).sort(), maxBins);
    }
    edges.push(e);
    bins[f] = e.length + 1;
    const out = codes.subarray(f * n, (f + 1) * n);
    const missing = e.length + 1;
    for (let i = 0; i < n; i++) {
      const v = x[i * width + f] as number;
      out[i] = Number.isNaN(v) ? missing : binOf(e, v);
    }
  }
  return { codes, edges, bins };
}
