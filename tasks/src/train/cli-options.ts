import { DriftwoodError } from '../errors.js';
import {
  KIND_CHOICES,
  type KindChoice,
  MODEL_KINDS,
  type ModelKind,
  type ModelParams,
  type ModelRequest,
  SOLVERS,
  type Solver,
} from '../models/params.js';
import type { PromotionPolicy } from '../promote/decide.js';
import { DEFAULT_POLICY } from '../promote/decide.js';
import type { SearchSpace } from '../tune/index.js';

type Values = Record<string, string | boolean | undefined>;

/** The hyper-parameter flags `train` and `tune` take (parseArgs option specs). */
export const MODEL_FLAGS = {
  model: { type: 'string' },
  solver: { type: 'string' },
  epochs: { type: 'string' },
  'learning-rate': { type: 'string' },
  'batch-size': { type: 'string' },
  l2: { type: 'string' },
  seed: { type: 'string' },
  'hidden-units': { type: 'string' },
  patience: { type: 'string' },
  'no-class-weights': { type: 'boolean' },
  'no-monotonic': { type: 'boolean' },
  trees: { type: 'string' },
  'max-leaves': { type: 'string' },
  'max-depth': { type: 'string' },
  'min-leaf': { type: 'string' },
  'max-bins': { type: 'string' },
  subsample: { type: 'string' },
  colsample: { type: 'string' },
} as const;

export const POLICY_FLAGS = {
  'min-auc': { type: 'string' },
  margin: { type: 'string' },
  'max-regression': { type: 'string' },
  'segment-tolerance': { type: 'string' },
  'min-segment-size': { type: 'string' },
} as const;

const number = (v: Values, flag: string, whole: boolean): number | undefined => {
  const raw = v[flag];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n) || (whole && !Number.isInteger(n)))
    throw new DriftwoodError(
      'USAGE',
      `--${flag}: expected ${whole ? 'a whole number' : 'a number'}, got '${String(raw)}'`,
    );
  return n;
};

const kind = (raw: string, flag: string): ModelKind => {
  if (!(MODEL_KINDS as readonly string[]).includes(raw))
    throw new DriftwoodError('USAGE', `--${flag}: expected ${MODEL_KINDS.join(' or ')}, got '${raw}'`);
  return raw as ModelKind;
};

const units = (raw: string, flag: string): number[] => {
  const parts = raw.split(/[x,]/).map((s) => Number(s));
  if (parts.length === 0 || parts.some((u) => !Number.isInteger(u) || u < 1))
    throw new DriftwoodError('USAGE', `--${flag}: expected layer widths like 32 or 32,16, got '${raw}'`);
  return parts;
};

/** `--model`: a kind, or `auto` (fit the candidates, keep the best on validation). */
const kindChoice = (raw: string): KindChoice => {
  if (!(KIND_CHOICES as readonly string[]).includes(raw))
    throw new DriftwoodError('USAGE', `--model: expected ${KIND_CHOICES.join(' or ')}, got '${raw}'`);
  return raw as KindChoice;
};

/** Hyper-parameters given on the command line; the rest keep their defaults. */
export function modelParamsFromFlags(v: Values): ModelRequest {
  const out: ModelRequest = {};
  if (typeof v.model === 'string') out.kind = kindChoice(v.model);
  if (typeof v.solver === 'string') {
    if (!(SOLVERS as readonly string[]).includes(v.solver))
      throw new DriftwoodError('USAGE', `--solver: expected ${SOLVERS.join(' or ')}, got '${v.solver}'`);
    out.solver = v.solver as Solver;
  }
  const set = <K extends keyof ModelParams>(key: K, value: ModelParams[K] | undefined) => {
    if (value !== undefined) out[key] = value;
  };
  set('epochs', number(v, 'epochs', true));
  set('learningRate', number(v, 'learning-rate', false));
  set('batchSize', number(v, 'batch-size', true));
  set('l2', number(v, 'l2', false));
  set('seed', number(v, 'seed', true));
  set('patience', number(v, 'patience', true));
  set('trees', number(v, 'trees', true));
  set('maxLeaves', number(v, 'max-leaves', true));
  set('maxDepth', number(v, 'max-depth', true));
  set('minLeaf', number(v, 'min-leaf', true));
  set('maxBins', number(v, 'max-bins', true));
  set('subsample', number(v, 'subsample', false));
  set('colsample', number(v, 'colsample', false));
  if (typeof v['hidden-units'] === 'string') out.hiddenUnits = units(v['hidden-units'], 'hidden-units');
  if (v['no-class-weights'] === true) out.classWeighting = false;
  if (v['no-monotonic'] === true) out.monotonic = false;
  return out;
}

export function policyFromFlags(v: Values): PromotionPolicy {
  return {
    minRocAuc: number(v, 'min-auc', false) ?? DEFAULT_POLICY.minRocAuc,
    minImprovement: number(v, 'margin', false) ?? DEFAULT_POLICY.minImprovement,
    maxRegression: number(v, 'max-regression', false) ?? DEFAULT_POLICY.maxRegression,
    segmentTolerance: number(v, 'segment-tolerance', false) ?? DEFAULT_POLICY.segmentTolerance,
    minSegmentSize: number(v, 'min-segment-size', true) ?? DEFAULT_POLICY.minSegmentSize,
  };
}

/**
 * `--space 'learningRate=0.01,0.05;hiddenUnits=16|32x16;kind=logistic,mlp'`: values per parameter,
 * separated by commas (layer lists by `|`, widths inside a list by `x`).
 */
export function searchSpaceFromFlag(raw: string): SearchSpace {
  const space: Record<string, unknown[]> = {};
  for (const part of raw
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [key, list] = part.split('=');
    if (!key || list === undefined)
      throw new DriftwoodError('USAGE', `--space: expected name=v1,v2;…, got '${part}'`);
    const name = key.trim();
    switch (name) {
      case 'kind':
        space.kind = list.split(',').map((s) => kind(s.trim(), 'space kind'));
        break;
      case 'hiddenUnits':
        space.hiddenUnits = list.split('|').map((s) => units(s.trim(), 'space hiddenUnits'));
        break;
      case 'epochs':
      case 'learningRate':
      case 'batchSize':
      case 'l2':
      case 'seed':
      case 'patience':
      case 'trees':
      case 'maxLeaves':
      case 'maxDepth':
      case 'minLeaf':
      case 'maxBins':
      case 'subsample':
      case 'colsample':
        space[name] = list.split(',').map((s) => {
          const n = Number(s);
          if (s.trim() === '' || !Number.isFinite(n))
            throw new DriftwoodError('USAGE', `--space ${name}: expected numbers, got '${s}'`);
          return n;
        });
        break;
      default:
        throw new DriftwoodError(
          'USAGE',
          `--space: unknown parameter '${name}' (kind, hiddenUnits, epochs, learningRate, batchSize, l2, seed, patience, trees, maxLeaves, maxDepth, minLeaf, maxBins, subsample, colsample)`,
        );
    }
  }
  return space as SearchSpace;
}
