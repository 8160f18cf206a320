import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { mlflowClient, ROOT, runCli, runProcess, tempHome, uniqueName } from '../support/env.js';

/**
 * The whole loop with real parts: simulated files in a lake folder → the churn_pipeline DAG run by
 * `airflow dags test` (ingest, snapshot, features, train, evaluate, promote: each the real CLI in its
 * own process) → MLflow run, registered version,
 * champion alias → the API loads the champion and answers.
 */
describe('churn_pipeline end to end', () => {
  let app: FastifyInstance | undefined;
  afterAll(async () => app?.close());

  it('produces a champion that the API serves', async () => {
    const home = tempHome('driftwood-e2e-');
    const modelName = uniqueName('churn-e2e');
    const env = {
      DRIFTWOOD_HOME: home,
      MLFLOW_TRACKING_URI: inject('mlflowUri'),
      DRIFTWOOD_MODEL_NAME: modelName,
      DRIFTWOOD_EXPERIMENT: uniqueName('e2e'),
      DRIFTWOOD_PII_KEY: 'e2e-key-0123456789abcdef',
      // One migrated Airflow metadata DB for every run of this suite on the machine.
      AIRFLOW_HOME: path.join(ROOT, '.driftwood', 'test', 'airflow'),
    };
    const sim = await runCli(
      [
        'simulate',
        '--dataset',
        'churn',
        '--start',
        '2026-11-01T00:00Z',
        '--hours',
        '120',
        '--seed',
        '3',
        '--customers',
        '600',
      ],
      env,
    );
    expect(sim.code, sim.stderr).toBe(0);

    const dag = await runProcess(
      path.join(ROOT, 'scripts', 'airflow.sh'),
      ['dags-test', 'churn_pipeline', '2026-11-06T00:00:00+00:00'],
      env,
    );
    expect(dag.code, `${dag.stdout.slice(-3000)}\n${dag.stderr.slice(-3000)}`).toBe(0);

    const ingest = JSON.parse(readFileSync(path.join(home, 'results', 'ingest.json'), 'utf8'));
    expect(ingest.loaded).toBe(ingest.objectsSeen);
    // The snapshot is what features and training read.
    const snapshot = JSON.parse(readFileSync(path.join(home, 'results', 'snapshot.json'), 'utf8'));
    const features = JSON.parse(readFileSync(path.join(home, 'results', 'features.json'), 'utf8'));
    expect(features.id).toBe(snapshot.id);
    const train = JSON.parse(readFileSync(path.join(home, 'results', 'train.json'), 'utf8'));
    expect(train.cutoff).toBe(snapshot.manifest.cutoff);
    const promote = JSON.parse(readFileSync(path.join(home, 'results', 'promote.json'), 'utf8'));
    expect(promote).toMatchObject({ promoted: true, alias: 'champion', version: train.modelVersion });

    const mlflow = mlflowClient(inject('mlflowUri'));
    expect((await mlflow.getVersionByAlias(modelName, 'champion'))?.version).toBe(train.modelVersion);
    const run = await mlflow.getRun(train.runId);
    expect(run.info.status).toBe('FINISHED');

    app = await buildApp({ openAccess: true, mlflow, modelName, alias: 'champion' });
    await app.ready();
    const res = await app.inject({
      method: 'POST',
      url: '/v1/predict',
      payload: { plan: 'standard', region: 'east', sessions_30d: 3 },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().model.version).toBe(train.modelVersion);
    expect(res.json().probability).toBeGreaterThan(0);
    expect(res.json().probability).toBeLessThan(1);
  });
});
