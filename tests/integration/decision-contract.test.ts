import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Warehouse } from '@driftwood/tasks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONTRACTS_DIR } from '../../tasks/src/contracts/index.js';
import { chooseThreshold, chooseThresholdFor, confusionAt } from '../../tasks/src/models/metrics.js';
import { initTf } from '../../tasks/src/models/tf.js';
import { prepareTrainingData } from '../../tasks/src/train/data.js';
import { fitAndEvaluate } from '../../tasks/src/train/fit.js';
import { resolveParams } from '../../tasks/src/train/index.js';
import { seededWarehouse, silentLog } from '../support/env.js';

/**
 * The contract's `training.calibration` and `training.threshold` reach training: the churn contract
 * with isotonic calibration and a miss that costs 20 false alarms, read from a contracts folder of its
 * own, on real simulated data (no MLflow needed: the fit and its evaluation only).
 */
describe('calibration and threshold from the contract, through training', () => {
  let db: Warehouse;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'driftwood-decision-'));
  const options = {
    dataset: 'churn',
    horizonHours: 48,
    labelDelayHours: 24,
    holdoutFraction: 0.2,
    validationFraction: 0.15,
    splitSeed: 7,
  };

  beforeAll(async () => {
    copyFileSync(
      path.join(DEFAULT_CONTRACTS_DIR, 'contract.schema.json'),
      path.join(dir, 'contract.schema.json'),
    );
    const churn = readFileSync(path.join(DEFAULT_CONTRACTS_DIR, 'churn.yaml'), 'utf8');
    const declared = churn.replace(
      /^training:\n/m,
      'training:\n  calibration: isotonic\n  threshold: { objective: cost, false_positive_cost: 1, false_negative_cost: 20 }\n',
    );
    expect(declared).not.toBe(churn);
    writeFileSync(path.join(dir, 'churn.yaml'), declared);
    ({ db } = await seededWarehouse({ hours: 144, seed: 5, customers: 900 }));
    await initTf(silentLog);
  });

  afterAll(async () => {
    await db?.destroy();
  });

  it('fits the declared calibration and picks the cheapest threshold on calibrated validation scores', async () => {
    const data = await prepareTrainingData({ ...options, contractsDir: dir }, { db, log: silentLog });
    expect(data.decision).toEqual({
      calibration: 'isotonic',
      threshold: { objective: 'cost', falsePositiveCost: 1, falseNegativeCost: 20 },
    });
    const fit = await fitAndEvaluate(data, resolveParams({ seed: 3 }));
    expect(fit.calibration.method).toBe('isotonic');
    const validation = fit.model.scores(data.validation.x);
    expect(fit.threshold).toBe(chooseThresholdFor(validation, data.validation.y, data.decision.threshold));
    // A miss costing 20 false alarms flags more validation rows than the F1 threshold does.
    const flagged = (t: number) => {
      const c = confusionAt(validation, data.validation.y, t);
      return c.tp + c.fp;
    };
    expect(flagged(fit.threshold)).toBeGreaterThan(flagged(chooseThreshold(validation, data.validation.y)));
    // The holdout is measured on the calibrated scores: the model's one-row path through the calibration.
    expect(fit.holdoutScores[0]).toBeCloseTo(fit.model.scoreOne(data.holdout.x.subarray(0, data.width)), 6);
    expect(fit.metrics.log_loss).toBeLessThan(fit.uncalibratedLogLoss.holdout);
    fit.model.dispose();
  });

  it('keeps the defaults, Platt and F1, for the churn contract as shipped', async () => {
    const data = await prepareTrainingData(options, { db, log: silentLog });
    expect(data.decision).toEqual({ calibration: 'platt', threshold: { objective: 'f1' } });
    const fit = await fitAndEvaluate(data, resolveParams({ seed: 3 }));
    expect(fit.calibration.method).toBe('platt');
    expect(fit.threshold).toBe(chooseThreshold(fit.model.scores(data.validation.x), data.validation.y));
    fit.model.dispose();
  });
});
