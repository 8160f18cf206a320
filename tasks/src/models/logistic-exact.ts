/**
 * Logistic regression fitted to its optimum: projected Newton on the full batch, in float64, on typed
 * arrays (no TF.js). Deterministic: the same inputs give bit-identical weights, since every sum runs
 * in one fixed order.
 *
 * The objective is the one the TF.js model minimises, so the project's `l2` keeps its meaning:
 *
 *   f(w, b) = (1/n)·Σᵢ sᵢ·[log(1 + e^zᵢ) − yᵢ·zᵢ] + l2·‖w‖²,   zᵢ = xᵢ·w + b
 *
 * with sᵢ the class weight of row i ("balanced": n / (2·n_class), as scikit-learn computes it, or 1)
 * and the intercept b not penalised. Multiplying by 1/(2·l2) gives scikit-learn's
 * `LogisticRegression` objective ½‖w‖² + C·Σᵢ sᵢ·loss_i with C = 1 / (2·l2·n) (see `sklearnC`), so
 * both reach the same coefficients. l2 = 0 is scikit-learn's `penalty=None`.
 *
 * Sign constraints (the monotone option: a weight may not leave the side the dataset's directions
 * give it) are bounds w_j ≥ 0 or w_j ≤ 0, handled by Bertsekas' projected Newton method
 * (SIAM J. Control Optim. 20(2), 1982): variables held at their bound by the gradient are fixed for
 * the step, Newton's step is taken on the others (Cholesky on their block of the Hessian), and the
 * step is projected back onto the bounds with an Armijo backtracking search along the projection arc.
 *
 * Each iteration costs n·d²/2 multiply-adds for the Hessian (d = columns + 1), so this suits tens to a
 * few hundred columns; it converges in a handful of iterations.
 */
import { DriftwoodError } from '../errors.js';

export interface ExactLogisticOptions {
  /** L2 strength in the TF.js convention: l2·‖w‖² added to the mean weighted loss (intercept free). */
  l2: number;
  /** Weight rows inversely to their class's frequency (scikit-learn's class_weight='balanced'). */
  classWeighting: boolean;
  /** Per column: +1 the weight may not go below 0, −1 not above 0, 0 free. */
  signs?: ArrayLike<number>;
  /** Stop when the projected gradient's largest component is below this (default 1e-10). */
  tolerance?: number;
  /** Newton iterations at most (default 100). */
  maxIterations?: number;
}

export interface ExactLogisticIteration {
  iteration: number;
  /** The objective f(w, b) after this iteration's step. */
  loss: number;
  /** The largest component of the projected gradient after the step. */
  gradientNorm: number;
  weights: Float64Array;
  intercept: number;
}

export interface ExactLogisticFit {
  weights: Float64Array;
  intercept: number;
  /** Newton iterations taken (0 when the start was already optimal). */
  iterations: number;
  /** Largest component of the projected gradient at the returned point. */
  gradientNorm: number;
  loss: number;
  converged: boolean;
}

/** scikit-learn's C for the project's l2 on n training rows (Infinity, i.e. no penalty, for l2 = 0). */
export function sklearnC(l2: number, n: number): number {
  return l2 > 0 ? 1 / (2 * l2 * n) : Number.POSITIVE_INFINITY;
}

/** Per-row weights: scikit-learn's "balanced" (n / (2·n_class)), or all 1 (also with one class only). */
export function rowWeights(y: ArrayLike<number>, balanced: boolean): Float64Array {
  const n = y.length;
  const s = new Float64Array(n).fill(1);
  if (!balanced) return s;
  let positives = 0;
  for (let i = 0; i < n; i++) positives += (y[i] as number) > 0.5 ? 1 : 0;
  if (positives === 0 || positives === n) return s;
  const w1 = n / (2 * positives);
  const w0 = n / (2 * (n - positives));
  for (let i = 0; i < n; i++) s[i] = (y[i] as number) > 0.5 ? w1 : w0;
  return s;
}

/** log(1 + e^z) without overflow. */
const softplus = (z: number): number => (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z)));
const sigmoid = (z: number): number => {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
};

interface Problem {
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  s: Float64Array;
  n: number;
  d: number;
  l2: number;
}

/** The objective f(w, b) of a problem (see the module comment). */
function objective(p: Problem, w: Float64Array, b: number, z: Float64Array): number {
  const { x, y, s, n, d } = p;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    let zi = b;
    const row = i * d;
    for (let j = 0; j < d; j++) zi += (x[row + j] as number) * (w[j] as number);
    z[i] = zi;
    sum += (s[i] as number) * (softplus(zi) - (y[i] as number) * zi);
  }
  let pen = 0;
  for (let j = 0; j < d; j++) pen += (w[j] as number) * (w[j] as number);
  return sum / n + p.l2 * pen;
}

/** The objective f(w, b) on rows x (row-major, `width` columns) and labels y; for tests and benches. */
export function logisticObjective(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  width: number,
  weights: ArrayLike<number>,
  intercept: number,
  options: Pick<ExactLogisticOptions, 'l2' | 'classWeighting'>,
): number {
  const problem: Problem = {
    x,
    y,
    s: rowWeights(y, options.classWeighting),
    n: y.length,
    d: width,
    l2: options.l2,
  };
  return objective(problem, Float64Array.from(weights), intercept, new Float64Array(y.length));
}

/**
 * Gradient (length d + 1, intercept last) and, when `hessian` is given, the Hessian (row-major
 * (d+1)×(d+1)) at the point whose margins are z.
 */
function derivatives(
  p: Problem,
  w: Float64Array,
  z: Float64Array,
  grad: Float64Array,
  hessian?: Float64Array,
): void {
  const { x, y, s, n, d } = p;
  const D = d + 1;
  grad.fill(0);
  hessian?.fill(0);
  for (let i = 0; i < n; i++) {
    const prob = sigmoid(z[i] as number);
    const si = s[i] as number;
    const r = si * (prob - (y[i] as number));
    const row = i * d;
    for (let j = 0; j < d; j++) grad[j] = (grad[j] as number) + r * (x[row + j] as number);
    grad[d] = (grad[d] as number) + r;
    if (hessian) {
      const c = si * prob * (1 - prob);
      // Upper triangle only; mirrored below.
      for (let j = 0; j < d; j++) {
        const cj = c * (x[row + j] as number);
        if (cj === 0) continue;
        const hj = j * D;
        for (let k = j; k < d; k++)
          hessian[hj + k] = (hessian[hj + k] as number) + cj * (x[row + k] as number);
        hessian[hj + d] = (hessian[hj + d] as number) + cj;
      }
      hessian[d * D + d] = (hessian[d * D + d] as number) + c;
    }
  }
  for (let j = 0; j < d; j++) grad[j] = (grad[j] as number) / n + 2 * p.l2 * (w[j] as number);
  grad[d] = (grad[d] as number) / n;
  if (hessian) {
    for (let j = 0; j < D; j++)
      for (let k = j; k < D; k++) {
        const v = (hessian[j * D + k] as number) / n + (j === k && j < d ? 2 * p.l2 : 0);
        hessian[j * D + k] = v;
        hessian[k * D + j] = v;
      }
  }
}

/**
 * Solves A·u = r for the symmetric positive definite block of A on `free` (in place in u), by
 * Cholesky. A block that is not numerically positive definite (l2 = 0 with collinear columns) gets a
 * growing ridge until it is.
 */
function solveBlock(A: Float64Array, D: number, free: number[], r: Float64Array, u: Float64Array): void {
  const m = free.length;
  const L = new Float64Array(m * m);
  let scale = 0;
  for (const j of free) scale = Math.max(scale, Math.abs(A[j * D + j] as number));
  for (let ridge = 0, attempt = 0; ; attempt++) {
    let ok = true;
    for (let a = 0; a < m && ok; a++) {
      const ja = free[a] as number;
      for (let c = 0; c <= a; c++) {
        const jc = free[c] as number;
        let v = (A[ja * D + jc] as number) + (a === c ? ridge : 0);
        for (let k = 0; k < c; k++) v -= (L[a * m + k] as number) * (L[c * m + k] as number);
        if (a === c) {
          if (!(v > 0)) {
            ok = false;
            break;
          }
          L[a * m + a] = Math.sqrt(v);
        } else {
          L[a * m + c] = v / (L[c * m + c] as number);
        }
      }
    }
    if (ok) break;
    if (attempt > 40) throw new DriftwoodError('MODEL_INVALID', 'the Hessian could not be factorised');
    ridge = ridge === 0 ? Math.max(scale, 1) * 1e-12 : ridge * 10;
  }
  // Forward then back substitution.
  const t = new Float64Array(m);
  for (let a = 0; a < m; a++) {
    let v = r[free[a] as number] as number;
    for (let k = 0; k < a; k++) v -= (L[a * m + k] as number) * (t[k] as number);
    t[a] = v / (L[a * m + a] as number);
  }
  for (let a = m - 1; a >= 0; a--) {
    let v = t[a] as number;
    for (let k = a + 1; k < m; k++) v -= (L[k * m + a] as number) * (u[free[k] as number] as number);
    u[free[a] as number] = v / (L[a * m + a] as number);
  }
}

/**
 * Fits the logistic regression on rows x (row-major, `width` columns, float32 or float64) and
 * labels y in {0, 1}. `onIteration` sees each accepted step (its arrays are copies).
 */
export function fitLogisticExact(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  width: number,
  options: ExactLogisticOptions,
  onIteration: (it: ExactLogisticIteration) => void = () => undefined,
): ExactLogisticFit {
  const n = y.length;
  const d = width;
  if (x.length !== n * d)
    throw new DriftwoodError('USAGE', `exact logistic: ${x.length} values are not ${n} rows × ${d} columns`);
  if (!(options.l2 >= 0))
    throw new DriftwoodError('USAGE', `exact logistic: l2 must be ≥ 0, got ${options.l2}`);
  if (n === 0) throw new DriftwoodError('DATA_MISSING', 'exact logistic: no training rows');
  const signs = options.signs;
  if (signs && signs.length !== d)
    throw new DriftwoodError('USAGE', `exact logistic: ${signs.length} signs for ${d} columns`);
  const tolerance = options.tolerance ?? 1e-10;
  const maxIterations = options.maxIterations ?? 100;
  const p: Problem = { x, y, s: rowWeights(y, options.classWeighting), n, d, l2: options.l2 };
  const D = d + 1;
  const sign = (j: number): number => (signs && j < d ? Math.sign(signs[j] as number) : 0);

  // theta = [w…, b]; zero is feasible for every sign constraint.
  let theta = new Float64Array(D);
  let z = new Float64Array(n);
  let f = objective(p, theta.subarray(0, d), 0, z);
  const grad = new Float64Array(D);
  const hessian = new Float64Array(D * D);
  const step = new Float64Array(D);
  const rhs = new Float64Array(D);
  let trial = new Float64Array(D);
  let trialZ = new Float64Array(n);

  // Largest component of the projected gradient: at a bound, only the part pointing inwards counts.
  const projectedNorm = (): number => {
    let m = 0;
    for (let j = 0; j < D; j++) {
      const g = grad[j] as number;
      const sj = sign(j);
      const atBound = sj !== 0 && (theta[j] as number) * sj <= 0;
      const v = atBound && g * sj > 0 ? 0 : Math.abs(g);
      if (v > m) m = v;
    }
    return m;
  };
  const project = (v: Float64Array): void => {
    for (let j = 0; j < d; j++) {
      const sj = sign(j);
      if (sj !== 0 && (v[j] as number) * sj < 0) v[j] = 0;
    }
  };

  derivatives(p, theta, z, grad);
  let gnorm = projectedNorm();
  let iterations = 0;
  while (gnorm > tolerance && iterations < maxIterations) {
    derivatives(p, theta, z, grad, hessian);
    // Bertsekas' ε-active set: a bounded variable this close to its bound, with the gradient pushing
    // it outwards, stays where it is for this step.
    let eps = 0;
    for (let j = 0; j < D; j++) {
      const t = theta[j] as number;
      const sj = sign(j);
      let moved = t - (grad[j] as number);
      if (sj !== 0 && moved * sj < 0) moved = 0;
      eps = Math.max(eps, Math.abs(t - moved));
    }
    eps = Math.min(eps, 1e-3);
    const free: number[] = [];
    step.fill(0);
    for (let j = 0; j < D; j++) {
      const sj = sign(j);
      const held = sj !== 0 && (theta[j] as number) * sj <= eps && (grad[j] as number) * sj > 0;
      if (!held) free.push(j);
      rhs[j] = -(grad[j] as number);
    }
    if (free.length > 0) solveBlock(hessian, D, free, rhs, step);
    // Close to the optimum the decrease Newton predicts falls below the rounding noise of the
    // objective (a sum over n rows), where a line search only sees noise and creeps: there the full
    // step is taken, and kept only while it shrinks the gradient.
    let predicted = 0;
    for (let j = 0; j < D; j++) predicted -= (grad[j] as number) * (step[j] as number);
    const final = predicted <= 1e-9 * (1 + Math.abs(f));
    // Otherwise, Armijo search along the projection arc P(θ + α·step).
    let alpha = 1;
    let accepted = false;
    let fTrial = f;
    for (let k = 0; k < 60; k++) {
      for (let j = 0; j < D; j++) trial[j] = (theta[j] as number) + alpha * (step[j] as number);
      project(trial);
      let decrease = 0;
      for (let j = 0; j < D; j++)
        decrease += (grad[j] as number) * ((trial[j] as number) - (theta[j] as number));
      fTrial = objective(p, trial.subarray(0, d), trial[d] as number, trialZ);
      if (final || fTrial <= f + 1e-4 * decrease) {
        accepted = true;
        break;
      }
      alpha /= 2;
    }
    if (!accepted) break; // No further decrease is representable: the point is as good as float64 gets.
    [theta, trial] = [trial, theta];
    [z, trialZ] = [trialZ, z];
    const fBefore = f;
    f = fTrial;
    derivatives(p, theta, z, grad);
    const before = gnorm;
    gnorm = projectedNorm();
    if (final && gnorm >= before) {
      // Rounding, not curvature, limits the gradient now: keep the previous point and stop.
      [theta, trial] = [trial, theta];
      [z, trialZ] = [trialZ, z];
      f = fBefore;
      derivatives(p, theta, z, grad);
      gnorm = projectedNorm();
      break;
    }
    iterations++;
    onIteration({
      iteration: iterations,
      loss: f,
      gradientNorm: gnorm,
      weights: Float64Array.from(theta.subarray(0, d)),
      intercept: theta[d] as number,
    });
  }
  return {
    weights: Float64Array.from(theta.subarray(0, d)),
    intercept: theta[d] as number,
    iterations,
    gradientNorm: gnorm,
    loss: f,
    converged: gnorm <= tolerance,
  };
}
