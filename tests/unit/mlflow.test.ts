import { describe, expect, it } from 'vitest';
import { missingPoints, pointKey } from '../../tasks/src/mlflow/client.js';

describe('missingPoints (what a retried log-batch still sends)', () => {
  const p = (key: string, step: number, value: number, timestamp = 1000) => ({ key, step, value, timestamp });

  it.each([
    ['nothing stored', [], 3],
    ['all stored', [p('loss', 0, 0.9), p('loss', 1, 0.8), p('val_loss', 0, 1)], 0],
    ['part stored', [p('loss', 0, 0.9)], 2],
    ['same step, other value', [p('loss', 0, 0.91)], 3],
    ['same step, other timestamp', [p('loss', 0, 0.9, 999)], 3],
  ])('%s', (_name, stored, expected) => {
    const points = [p('loss', 0, 0.9), p('loss', 1, 0.8), p('val_loss', 0, 1)];
    const left = missingPoints(points, new Set(stored.map(pointKey)));
    expect(left).toHaveLength(expected);
    for (const m of left) expect(stored.map(pointKey)).not.toContain(pointKey(m));
  });
});
