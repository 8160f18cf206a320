import { existsSync, renameSync } from 'node:fs';
import path from 'node:path';
import { DriftwoodError, type MlflowClient, type Warehouse } from '@driftwood/tasks';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { evidenceTagKey } from '../../tasks/src/evaluate/evidence.js';
import { runEvaluate } from '../../tasks/src/evaluate/index.js';
import { DEFAULT_POLICY } from '../../tasks/src/promote/decide.js';
import { DEFAULT_BOOTSTRAP, runPromote } from '../../tasks/src/promote/index.js';
import { runTrain, type TrainResult } from '../../tasks/src/train/index.js';
import { mlflowClient, ROOT, seededWarehouse, silentLog, uniqueName } from '../support/env.js';

/**
 * The evaluate step hands its evidence to promote: promote decides from the JSON on the
 * challenger's run with both models' files gone from MLflow's artifact store (so it cannot have
 * scored anything), and refuses evidence about another version, another champion or contract.
 */
const mlflowUri = inject('mlflowUri');
// The global setup's server keeps its artifacts here (scripts/mlflow.sh start <port> <dir>).
const artifactRoot = path.join(ROOT, '.driftwood', 'test', `mlflow-${new URL(mlflowUri).port}`, 'artifacts');

describe.skipIf(!existsSync(artifactRoot))('promote from the evaluate step’s evidence', () => {
  let db: Warehouse;
  let mlflow: MlflowClient;
  let modelName: string;
  let experiment: string;
  let first: TrainResult;
  let second: TrainResult;

  const policy = { ...DEFAULT_POLICY, minRocAuc: 0.5 };
  // The gate promotes only a measurably better model: on this data (the same seed, so the same
  // holdout) fewer epochs rank the holdout better (ROC AUC after 10 epochs 0.627, 3: 0.724, 2: 0.765).
  const train = (epochs = 10) =>
    runTrain(
      {
        dataset: 'churn',
        experiment,
        modelName,
        horizonHours: 48,
        labelDelayHours: 24,
        params: { kind: 'logistic', seed: 7, epochs },
        holdoutFraction: 0.2,
        validationFraction: 0.15,
      },
      {
        db,
        mlflow,
        log: silentLog,
        now: Date.now,
        source: { commit: 'e1dence', user: 'evidence-test', packages: {} },
      },
    );
  const promote = (version: string) =>
    runPromote(
      { modelName, alias: 'champion', policy, version },
      { mlflow, log: silentLog, now: Date.now, user: 'evidence-test' },
    );
  const evaluate = (version: string) =>
    runEvaluate(
      { modelName, version, championAlias: 'champion', bootstrap: DEFAULT_BOOTSTRAP },
      { mlflow, log: silentLog, now: Date.now },
    );
  const champion = async () => (await mlflow.getVersionByAlias(modelName, 'champion'))?.version;
  const refusal = async (p: Promise<unknown>): Promise<DriftwoodError> => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DriftwoodError);
    const e = err as DriftwoodError;
    expect(e.code).toBe('SCHEMA_MISMATCH');
    expect(e.exitCode).toBe(2);
    expect(e.message.split('\n')).toHaveLength(1);
    return e;
  };

  /** Moves a version's model files out of the server's artifact store; returns how to put them back. */
  const hideModelFiles = async (version: string): Promise<() => void> => {
    const uri = await mlflow.resolveVersionArtifacts(await mlflow.getModelVersion(modelName, version));
    const dir = path.join(artifactRoot, uri.replace(/^mlflow-artifacts:\/?/, ''));
    const moved = ['model.json', 'weights.bin', 'transform.json'].map((f) => path.join(dir, f));
    for (const f of moved) renameSync(f, `${f}.hidden`);
    return () => {
      for (const f of moved) renameSync(`${f}.hidden`, f);
    };
  };

  beforeAll(async () => {
    mlflow = mlflowClient(mlflowUri);
    modelName = uniqueName('churn-evidence');
    experiment = uniqueName('exp-evidence');
    ({ db } = await seededWarehouse({ hours: 168, seed: 13, customers: 700 }));
    first = await train();
    // No evidence yet: promote runs evaluate first (the path a user running promote alone takes).
    expect(await promote(first.modelVersion)).toMatchObject({ promoted: true, previous: null });
    second = await train(2);
  });

  afterAll(async () => {
    await db?.destroy();
  });

  it('evaluate writes its evidence on the challenger’s run, with the ids of its inputs, and tags the version', async () => {
    const e = await evaluate(second.modelVersion);
    expect(e.evidence).toBe(`runs:/${second.runId}/evidence/champion.json`);
    const mv = await mlflow.getModelVersion(modelName, second.modelVersion);
    expect(mv.tags?.find((t) => t.key === evidenceTagKey('champion'))?.value).toBe(e.evidence);
    const run = await mlflow.getRun(second.runId);
    const stored = JSON.parse(
      (await mlflow.downloadArtifact(run.info.artifact_uri, 'evidence/champion.json')).toString(),
    );
    expect(stored).toMatchObject({
      format: 'driftwood.evidence/v1',
      inputs: {
        dataset: 'churn',
        candidate: { version: second.modelVersion, runId: second.runId },
        champion: { alias: 'champion', version: first.modelVersion, runId: first.runId },
        featuresId: second.featuresId,
        holdoutSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
        contract: { version: expect.any(Number), digest: expect.stringMatching(/^[0-9a-f]+$/) },
      },
      candidate: { version: second.modelVersion },
      champion: { version: first.modelVersion },
      comparison: { diff: expect.any(Number) },
      smoke: { passed: true },
      bootstrap: DEFAULT_BOOTSTRAP,
    });
    expect(stored.comparison.diff).toBeGreaterThan(0);
    expect(stored.behaviour.length).toBeGreaterThan(0);
    expect(stored.candidate.segments.length).toBeGreaterThan(0);
  });

  it('promote decides from the evidence alone: both versions’ model files are unreadable', async () => {
    const restore = [await hideModelFiles(first.modelVersion), await hideModelFiles(second.modelVersion)];
    try {
      // The files really are gone: anything that loads a model now fails.
      await expect(evaluate(second.modelVersion)).rejects.toThrow();
      const t0 = performance.now();
      const r = await promote(second.modelVersion);
      const ms = Math.round(performance.now() - t0);
      expect(r).toMatchObject({ promoted: true, version: second.modelVersion, previous: first.modelVersion });
      expect(r.evaluation.diff).toBeGreaterThan(0);
      expect(await champion()).toBe(second.modelVersion);
      expect(await mlflow.getVersionByAlias(modelName, `staging-${second.modelVersion}`)).toBeUndefined();
      process.stderr.write(`promote from evidence: ${ms} ms\n`);
    } finally {
      for (const undo of restore) undo();
    }
  });

  it('refuses evidence about another version', async () => {
    const other = (await mlflow.getModelVersion(modelName, second.modelVersion)).tags?.find(
      (t) => t.key === evidenceTagKey('champion'),
    )?.value as string;
    await mlflow.setModelVersionTag(modelName, first.modelVersion, evidenceTagKey('champion'), other);
    const e = await refusal(promote(first.modelVersion));
    expect(e.message).toMatch(
      new RegExp(
        `it is for version ${second.modelVersion} \\(run ${second.runId}\\), not version ${first.modelVersion}`,
      ),
    );
    expect(await champion()).toBe(second.modelVersion);
  });

  it('refuses evidence judged against a champion that no longer holds the alias', async () => {
    const third = await train(3);
    await evaluate(third.modelVersion);
    await mlflow.setAlias(modelName, 'champion', first.modelVersion);
    try {
      // Not retryable as it is: the candidate must be judged again against the champion of now.
      const e = (await promote(third.modelVersion).catch((err: unknown) => err)) as DriftwoodError;
      expect(e).toBeInstanceOf(DriftwoodError);
      expect(e.code).toBe('CHAMPION_CHANGED');
      expect(e.exitCode).toBe(2);
      expect(e.message).toBe(
        `champion changed from ${second.modelVersion} to ${first.modelVersion} since evaluation; re-evaluate`,
      );
      expect(await champion()).toBe(first.modelVersion);
      // Evaluated again against the alias as it is now, the same version is judged and promoted.
      await evaluate(third.modelVersion);
      expect(await promote(third.modelVersion)).toMatchObject({
        promoted: true,
        previous: first.modelVersion,
      });
    } finally {
      await mlflow.setAlias(modelName, 'champion', second.modelVersion);
    }
  });
});
