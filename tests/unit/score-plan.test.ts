import { describe, expect, it } from 'vitest';
import { isDriftwoodError } from '../../tasks/src/errors.js';
import type { ModelVersion } from '../../tasks/src/mlflow/types.js';
import { readScoresParquet, type ScoreRow, scoresParquet } from '../../tasks/src/score/files.js';
import { checkSparkScores } from '../../tasks/src/score/index.js';
import { labelAt, type ScoringInputManifest, scoringPlan, thresholdOf } from '../../tasks/src/score/plan.js';

const AS_OF = Date.parse('2026-11-01T03:20:00Z');
const version = (threshold?: string) =>
  ({
    name: 'parcels',
    version: '3',
    tags: threshold === undefined ? [] : [{ key: 'driftwood.threshold', value: threshold }],
  }) as unknown as ModelVersion;
const score = (entityToken: string, s: number, over: Partial<ScoreRow> = {}): ScoreRow => ({
  entityToken,
  score: s,
  label: labelAt(s, 0.4),
  modelName: 'parcels',
  modelVersion: '3',
  asOf: AS_OF,
  ...over,
});
const manifest = (rows: number): ScoringInputManifest => ({
  format: 'driftwood.scoring-input/v1',
  dataset: 'parcels',
  asOf: AS_OF,
  modelName: 'parcels',
  modelVersion: '3',
  modelUri: 'models:/parcels/3',
  threshold: 0.4,
  rows,
  numeric: ['weight_kg'],
  categorical: ['carrier'],
});

describe('scoringPlan', () => {
  it('names the partitions by the as-of hour, so a rerun of the date lands in the same place', () => {
    const plan = scoringPlan('parcels', AS_OF);
    expect(plan.scoresPrefix).toBe('scores/parcels/dt=2026-11-01/hr=03/');
    expect(plan.inputPrefix).toBe('scoring/parcels/dt=2026-11-01/hr=03/input/');
    expect(scoringPlan('parcels', AS_OF + 30 * 60_000).scoresPrefix).toBe(plan.scoresPrefix);
  });

  it.each([
    ['../x', AS_OF, '--dataset'],
    ['parcels', Number.NaN, '--as-of'],
    ['parcels', -1, '--as-of'],
  ])('refuses dataset %s at %s, naming %s', (dataset, asOf, flag) => {
    expect(() => scoringPlan(dataset, asOf)).toThrow(flag);
  });
});

describe('thresholdOf and labelAt', () => {
  it('labels at the version threshold, as the API does (probability >= threshold)', () => {
    const t = thresholdOf(version('0.37'));
    expect(t).toBe(0.37);
    expect([labelAt(0.37, t), labelAt(0.369999, t), labelAt(0.9, t)]).toEqual([1, 0, 1]);
  });

  it.each([undefined, 'abc', '0', '1', '1.5'])('refuses a version whose threshold tag is %s', (tag) => {
    try {
      thresholdOf(version(tag));
      expect.unreachable();
    } catch (err) {
      expect(isDriftwoodError(err) && err.code).toBe('MODEL_INVALID');
      expect(String(err)).toContain('driftwood.threshold');
    }
  });
});

describe('checkSparkScores', () => {
  const good = [score('a', 0.1), score('b', 0.7)];

  it('accepts one score per input row of the pinned version and time', () => {
    expect(checkSparkScores(good, manifest(2), AS_OF)).toBeUndefined();
  });

  it.each([
    ['a row short', [score('a', 0.1)], 'holds 1 scores for 2 input rows'],
    ['an entity twice', [score('a', 0.1), score('a', 0.2)], 'scored twice'],
    ['another version', [score('a', 0.1), score('b', 0.2, { modelVersion: '2' })], 'version 2'],
    ['another as-of', [score('a', 0.1), score('b', 0.2, { asOf: AS_OF - 1 })], 'not this run'],
  ])('refuses %s', (_, rows, message) => {
    expect(checkSparkScores(rows, manifest(2), AS_OF)).toContain(message);
  });
});

describe('scores Parquet', () => {
  it('round-trips every column exactly', async () => {
    const rows = [score('a', 0.123456789012345), score('b', 1 / 3)];
    expect(await readScoresParquet('k', scoresParquet(rows))).toEqual(rows);
  });
});
