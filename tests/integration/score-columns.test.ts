import { writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadContract } from '../../tasks/src/contracts/index.js';
import { tabularProfile } from '../../tasks/src/features/profile.js';
import { ensureContractTables } from '../../tasks/src/ingest/schema.js';
import { openObjectStore } from '../../tasks/src/lake/object-store.js';
import { loadModelVersion } from '../../tasks/src/models/serving-model.js';
import { tokenise } from '../../tasks/src/pii.js';
import { readScores, runScore } from '../../tasks/src/score/index.js';
import { INPUT_MANIFEST_FILE, labelAt, scoringPlan } from '../../tasks/src/score/plan.js';
import { partitionOf } from '../../tasks/src/time.js';
import { openWarehouse, type Warehouse } from '../../tasks/src/warehouse/db.js';
import { mlflowClient, silentLog, tempHome, uniqueName } from '../support/env.js';
import { registerTestModel } from '../support/serving-model.js';

const HOUR = 3_600_000;
const AS_OF = Date.parse('2026-11-20T05:00:00Z');
const DATASET = `parcels_${Date.now().toString(36)}`;
const PII_KEY = 'score-columns-key-0123456789abcdef';
const THRESHOLD = 0.5;

const contractYaml = (modelName: string) => `
dataset: ${DATASET}
version: 1
description: Parcels shipped by a courier; the target is a late delivery, known days after shipping.
task: binary_classification
builder: columns
model: { name: ${modelName} }
tables:
  - name: ${DATASET}_shipments
    files: [shipments.csv]
    key: parcel_ref
    columns:
      - { name: parcel_ref, type: string, role: id, nullable: false, on_anomaly: drop_row }
      - { name: shipped_at, type: timestamp, role: timestamp, nullable: false, on_anomaly: drop_row }
      - { name: weight_kg, type: number, role: feature, nullable: true, on_anomaly: coerce }
      - { name: stops, type: integer, role: feature, nullable: true, on_anomaly: coerce }
      - { name: carrier, type: string, role: feature, nullable: false, on_anomaly: drop_row }
      - { name: late, type: string, role: target, nullable: true, allowed: ['yes', 'no'], positive: 'yes', on_anomaly: coerce }
`;

/**
 * 60 parcels: every third one has no outcome yet; ten were shipped at or after the as-of time and
 * two were loaded in a partition after it (neither is known then).
 */
const parcels = Array.from({ length: 60 }, (_, i) => {
  const shippedAt = i >= 50 ? AS_OF + (i - 50) * HOUR : AS_OF - (i + 1) * 5 * HOUR;
  const loadedAt = i === 3 || i === 7 ? AS_OF + 2 * HOUR : Math.min(shippedAt, AS_OF - HOUR);
  return {
    parcel_ref: `P${String(i).padStart(4, '0')}`,
    shipped_at: shippedAt,
    weight_kg: i % 11 === 0 ? null : 0.5 + ((i * 37) % 190),
    stops: i % 13 === 0 ? null : i % 7,
    carrier: ['a', 'b', 'c'][i % 3],
    late: i % 3 === 0 ? null : i % 2 === 0 ? 'yes' : 'no',
    source_key: `raw/${DATASET}/${partitionOf(loadedAt)}/shipments.csv`,
  };
});
const knownAtAsOf = parcels.filter(
  (p) => p.shipped_at < AS_OF && p.parcel_ref !== 'P0003' && p.parcel_ref !== 'P0007',
);

/**
 * A `columns` dataset is scored for every row known at the as-of time, labelled or not, with the
 * probability its version gives the inputs the API computes for that id; training still sees the
 * labelled rows only.
 */
describe('batch scoring of a columns dataset', () => {
  const mlflow = mlflowClient(inject('mlflowUri'));
  const home = tempHome('driftwood-score-columns-');
  const contractsDir = path.join(home, 'contracts');
  const modelName = uniqueName('score-columns');
  const lake = openObjectStore(`file://${path.join(home, 'lake')}`);
  let db: Warehouse;

  beforeAll(async () => {
    await mkdir(contractsDir, { recursive: true });
    writeFileSync(path.join(contractsDir, `${DATASET}.yaml`), contractYaml(modelName));
    db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
    await ensureContractTables(db, await loadContract(DATASET, contractsDir));
    await db.batchInsert(`${DATASET}_shipments`, parcels, 100);
    const { version } = await registerTestModel(mlflow, {
      modelName,
      experiment: uniqueName('score-columns'),
      seed: 7,
      alias: 'champion',
      fields: { numeric: ['weight_kg', 'stops'], categorical: ['carrier'] },
    });
    await mlflow.setModelVersionTag(modelName, version, 'driftwood.threshold', String(THRESHOLD));
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it('scores the rows without an outcome too, as the model scores their inputs by id; training keeps the labelled ones', async () => {
    const options = {
      dataset: DATASET,
      modelName,
      alias: 'champion',
      asOf: AS_OF,
      piiKey: PII_KEY,
      contractsDir,
    };
    const deps = { db, lake, mlflow, log: silentLog };
    const done = await runScore({ ...options, stage: 'all' }, deps);
    const unlabelled = knownAtAsOf.filter((p) => p.late === null);
    expect(unlabelled.length).toBeGreaterThan(10);
    expect(done.rows).toBe(knownAtAsOf.length);

    const scores = await readScores(db, DATASET, AS_OF);
    const byToken = new Map(scores.map((s) => [s.entityToken, s]));
    expect([...byToken.keys()].sort()).toEqual(
      knownAtAsOf.map((p) => tokenise(p.parcel_ref, PII_KEY)).sort(),
    );

    // The API's by-id inputs (the builder's statement filtered to the id) through the champion.
    const profile = tabularProfile(await loadContract(DATASET, contractsDir));
    const mv = await mlflow.getVersionByAlias(modelName, 'champion');
    const serving = await loadModelVersion(mlflow, mv as NonNullable<typeof mv>, 'champion');
    try {
      for (const p of knownAtAsOf) {
        const features = await profile.rowOf(db, AS_OF, p.parcel_ref);
        const expected = serving.score(features as NonNullable<typeof features>);
        const got = byToken.get(tokenise(p.parcel_ref, PII_KEY));
        expect([p.parcel_ref, got?.score]).toEqual([p.parcel_ref, expected]);
        // `label` is the prediction at the threshold, not the outcome (absent for a third of them).
        expect(got?.label).toBe(labelAt(expected, THRESHOLD));
      }
    } finally {
      serving.dispose();
    }
    expect(new Set(scores.map((s) => s.label)).size).toBe(2);

    const training = await profile.build(db, AS_OF, 0);
    expect(training.map((r) => r.customerId)).toEqual(
      knownAtAsOf.filter((p) => p.late !== null).map((p) => p.parcel_ref),
    );

    // The Spark engine's input holds the same rows.
    await runScore({ ...options, stage: 'inputs' }, deps);
    const manifest = JSON.parse(
      (await lake.get(`${scoringPlan(DATASET, AS_OF).inputPrefix}${INPUT_MANIFEST_FILE}`)).toString('utf8'),
    ) as { rows: number };
    expect(manifest.rows).toBe(knownAtAsOf.length);
  });
});
