import { createServer, type Server } from 'node:http';
import { DriftwoodError, type MlflowClient, type Warehouse } from '@driftwood/tasks';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runEvaluate } from '../../tasks/src/evaluate/index.js';
import { MlflowClient as Client } from '../../tasks/src/mlflow/client.js';
import { DEFAULT_POLICY, type PromotionPolicy } from '../../tasks/src/promote/decide.js';
import {
  type AliasEvent,
  auditArtifactPath,
  auditTagKey,
  versionAt,
} from '../../tasks/src/promote/history.js';
import { DEFAULT_BOOTSTRAP, readAuditTrail, runPromote } from '../../tasks/src/promote/index.js';
import { runHistory, runRollback } from '../../tasks/src/promote/rollback.js';
import { type ContractSource, readContractSource } from '../../tasks/src/train/contract.js';
import { runTrain, type TrainResult } from '../../tasks/src/train/index.js';
import { mlflowClient, seededWarehouse, silentLog, uniqueName } from '../support/env.js';
import { registerTestModel } from '../support/serving-model.js';

/** A port of this suite's own range, for the fault-injecting proxy in front of MLflow. */
const PROXY_PORT = 7510;

describe('training run, registry and promotion against a live MLflow server', () => {
  let db: Warehouse;
  let mlflow: MlflowClient;
  let modelName: string;
  let experiment: string;
  let first: TrainResult;
  let second: TrainResult;
  let third: TrainResult;
  let contract: ContractSource | undefined;

  const train = (seed: number, params: { l2?: number } = {}) =>
    runTrain(
      {
        dataset: 'churn',
        experiment,
        modelName,
        horizonHours: 48,
        labelDelayHours: 24,
        params: { kind: 'logistic', seed, epochs: 30, ...params },
        holdoutFraction: 0.2,
        validationFraction: 0.15,
      },
      {
        db,
        mlflow,
        log: silentLog,
        now: Date.now,
        source: { commit: 'feedc0de', user: 'registry-test', packages: { node: process.versions.node } },
        ...(contract ? { contract } : {}),
      },
    );
  const promote = (policy: Partial<PromotionPolicy>, version?: string) =>
    runPromote(
      {
        modelName,
        alias: 'champion',
        policy: { ...DEFAULT_POLICY, ...policy },
        ...(version ? { version } : {}),
      },
      { mlflow, log: silentLog, now: Date.now, user: 'release-bot' },
    );
  const champion = async () => (await mlflow.getVersionByAlias(modelName, 'champion'))?.version;
  const versionTags = async (v: string) =>
    Object.fromEntries(
      ((await mlflow.getModelVersion(modelName, v)).tags ?? []).map((t) => [t.key, t.value]),
    );

  beforeAll(async () => {
    mlflow = mlflowClient(inject('mlflowUri'));
    modelName = uniqueName('churn-reg');
    experiment = uniqueName('exp-reg');
    ({ db } = await seededWarehouse({ hours: 168, seed: 21, customers: 1000 }));
    contract = await readContractSource('churn');
    first = await train(7);
  });

  afterAll(async () => {
    await db?.destroy();
  });

  it('records params, UI tags, per-epoch metrics (once each) and the dataset input on the run', async () => {
    const run = await mlflow.getRun(first.runId);
    const params = Object.fromEntries((run.data.params ?? []).map((p) => [p.key, p.value]));
    expect(params).toMatchObject({
      model: 'logistic_regression',
      epochs: '30',
      seed: '7',
      class_weighting: 'true',
    });
    const tags = Object.fromEntries((run.data.tags ?? []).map((t) => [t.key, t.value]));
    expect(tags).toMatchObject({
      'mlflow.user': 'registry-test',
      'mlflow.source.git.commit': 'feedc0de',
      'mlflow.source.name': 'driftwood train',
      'driftwood.model_kind': 'logistic',
    });
    // What tells runs apart comes first: model kind, the features' short id, the start to the minute.
    expect(tags['mlflow.runName']).toMatch(/^churn logistic [0-9a-f]{8} \d\d-\d\d \d\d:\d\d$/);
    for (const key of ['loss', 'val_loss', 'val_roc_auc']) {
      const steps = (await mlflow.getMetricHistory(first.runId, key))
        .map((m) => m.step)
        .sort((a, b) => a - b);
      expect(steps).toEqual(Array.from({ length: first.epochsRun }, (_, i) => i));
    }
    const metrics = Object.fromEntries((run.data.metrics ?? []).map((m) => [m.key, m.value]));
    for (const k of [
      'accuracy',
      'precision',
      'recall',
      'f1',
      'roc_auc',
      'pr_auc',
      'log_loss',
      'brier',
      'threshold',
    ])
      expect(metrics[`holdout_${k}`]).toBeCloseTo(first.metrics[k as keyof typeof first.metrics], 9);
    expect(Object.keys(metrics).filter((k) => k.startsWith('holdout_roc_auc/plan/')).length).toBeGreaterThan(
      1,
    );
    expect(
      Object.keys(metrics).filter((k) => k.startsWith('holdout_roc_auc/region/')).length,
    ).toBeGreaterThan(1);
    expect(run.inputs?.dataset_inputs?.[0]?.dataset).toMatchObject({
      name: 'churn-features',
      digest: first.dataDigest.slice(0, 36),
    });
  });

  it('makes its experiments of the model-training kind, and tags one made before without it', async () => {
    const kind = async (name: string) =>
      (await mlflow.getExperimentByName(name))?.tags?.find((t) => t.key === 'mlflow.experimentKind')?.value;
    const made = uniqueName('exp-kind');
    await mlflow.ensureExperiment(made);
    expect(await kind(made)).toBe('custom_model_development');
    // An experiment created by someone else, without the tag, gets it on first use.
    const older = uniqueName('exp-kind-old');
    const raw = await fetch(`${inject('mlflowUri')}/api/2.0/mlflow/experiments/create`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: older }),
    });
    expect(raw.ok).toBe(true);
    expect(await kind(older)).toBeUndefined();
    await mlflow.ensureExperiment(older);
    expect(await kind(older)).toBe('custom_model_development');
  });

  it('stores plots, holdout, transform, config and package versions on the run, and the model with an MLmodel', async () => {
    const run = await mlflow.getRun(first.runId);
    const root = run.info.artifact_uri;
    for (const plot of ['roc', 'pr', 'confusion']) {
      const png = PNG.sync.read(await mlflow.downloadArtifact(root, `plots/${plot}.png`));
      expect([png.width, png.height]).toEqual([320, 320]);
    }
    const holdout = JSON.parse((await mlflow.downloadArtifact(root, 'evaluation/holdout.json')).toString());
    expect(holdout.rows).toHaveLength(first.rows.holdout);
    expect(holdout.dataDigest).toBe(first.dataDigest);
    expect(contract?.version).toBeDefined();
    expect((await mlflow.downloadArtifact(root, 'contract/churn.yaml')).toString()).toBe(contract?.text);
    const tags = Object.fromEntries((run.data.tags ?? []).map((t) => [t.key, t.value]));
    expect(tags['driftwood.contract_sha256']).toBe(contract?.sha256);
    expect(tags['driftwood.contract_version']).toBe(contract?.version);
    const config = JSON.parse((await mlflow.downloadArtifact(root, 'config/train.json')).toString());
    expect(config.params).toMatchObject({ kind: 'logistic', seed: 7, epochs: 30 });
    expect(
      JSON.parse((await mlflow.downloadArtifact(root, 'environment/packages.json')).toString()).node,
    ).toBe(process.versions.node);
    expect(JSON.parse((await mlflow.downloadArtifact(root, 'transform.json')).toString()).format).toMatch(
      /^driftwood\.transform\//,
    );
    const mv = await mlflow.getModelVersion(modelName, first.modelVersion);
    const files = (await mlflow.listArtifacts(await mlflow.resolveVersionArtifacts(mv))).map((f) =>
      f.path.split('/').pop(),
    );
    expect(files).toEqual(expect.arrayContaining(['MLmodel', 'model.json', 'weights.bin', 'transform.json']));
    expect(Number(await versionTags(first.modelVersion).then((t) => t['driftwood.threshold']))).toBeCloseTo(
      first.metrics.threshold,
      9,
    );
  });

  it('the same data and seed give identical metrics (a second version)', async () => {
    second = await train(7);
    expect(second.modelVersion).not.toBe(first.modelVersion);
    expect(second.metrics).toEqual(first.metrics);
    expect((await mlflow.getVersionByAlias(modelName, 'challenger'))?.version).toBe(second.modelVersion);
  });

  it('promotes the first model through its own staging alias to champion, with an audit trail', async () => {
    const r = await promote({}, first.modelVersion);
    expect(r).toMatchObject({ promoted: true, version: first.modelVersion, previous: null });
    expect(r.checks.filter((c) => c.name.startsWith('behaviour:')).every((c) => c.passed)).toBe(true);
    expect(await champion()).toBe(first.modelVersion);
    // Staged under its own alias, removed once champion moved.
    expect(await mlflow.getVersionByAlias(modelName, `staging-${first.modelVersion}`)).toBeUndefined();
    const tags = await versionTags(first.modelVersion);
    expect(tags).toMatchObject({
      'driftwood.champion_by': 'release-bot',
      'driftwood.previous_champion': 'none',
    });
    expect(tags['driftwood.gate.champion']).toMatch(/^passed at /);
  });

  it('an identical retrain is not promoted: the gate says so with the real figures, exit code 99', async () => {
    let caught: unknown;
    try {
      await promote({});
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DriftwoodError);
    expect((caught as DriftwoodError).exitCode).toBe(99);
    const result = (caught as DriftwoodError).details.result as Awaited<ReturnType<typeof promote>>;
    // Identical models scored on the one holdout: the champion's figure equals the candidate's.
    expect(result.evaluation.championRocAuc).toBe(result.evaluation.candidateRocAuc);
    expect(result.evaluation.diff).toBe(0);
    const auc = first.metrics.roc_auc.toFixed(4);
    expect(result.reason).toBe(
      `beats_champion: ROC AUC ${auc} = champion v${first.modelVersion}'s ${auc} (same training data and settings): not better`,
    );
    expect(await champion()).toBe(first.modelVersion);
    const tags = await versionTags(second.modelVersion);
    expect(tags['driftwood.gate.champion']).toMatch(/^failed at .*: not better$/);
    // The numbers as a line on the version's page; the whole evidence is JSON on the run.
    expect(tags['driftwood.evaluation.champion']).toBe(
      `ROC AUC ${auc} vs ${auc} (+0.0000), interval [0.0000, 0.0000], ${second.rows.holdout} holdout rows; failed: beats_champion`,
    );
  });

  it('scores challenger and champion on the same holdout (driftwood evaluate)', async () => {
    const e = await runEvaluate(
      { modelName, championAlias: 'champion', bootstrap: DEFAULT_BOOTSTRAP },
      { mlflow, log: silentLog },
    );
    expect(e.candidate.version).toBe(second.modelVersion);
    expect(e.champion?.version).toBe(first.modelVersion);
    expect(e.holdout).toMatchObject({ runId: second.runId, rows: second.rows.holdout });
    // Scored through the serving loader on raw rows, the candidate matches its training-time figure.
    expect(e.candidate.metrics.roc_auc).toBeCloseTo(second.metrics.roc_auc, 6);
    expect(e.comparison).toMatchObject({ diff: 0, low: 0, high: 0 });
  });

  it('a passing gate moves champion and records the previous champion; rollback restores it', async () => {
    // Other settings on the same data and seed (so the same holdout): measurably better here
    // (ROC AUC 0.898 with l2 0.1 against 0.863, measured).
    third = await train(7, { l2: 0.1 });
    expect(third.metrics.roc_auc).toBeGreaterThan(first.metrics.roc_auc);
    const before = Date.now();
    const r = await promote({});
    expect(r).toMatchObject({ promoted: true, version: third.modelVersion, previous: first.modelVersion });
    expect(r.reason).toMatch(
      new RegExp(
        `ROC AUC [0-9.]+ > champion v${first.modelVersion}'s [0-9.]+ \\(\\+0\\.0\\d{3}, 95% interval`,
      ),
    );
    expect(await champion()).toBe(third.modelVersion);
    expect(await versionTags(third.modelVersion)).toMatchObject({
      'driftwood.previous_champion': first.modelVersion,
    });
    expect((await versionTags(first.modelVersion))['driftwood.champion_until']).toBeDefined();

    const back = await runRollback(
      { modelName, alias: 'champion' },
      { mlflow, log: silentLog, now: Date.now, user: 'oncall' },
    );
    expect(back).toMatchObject({ version: first.modelVersion, previous: third.modelVersion });
    expect(await champion()).toBe(first.modelVersion);

    const trail = await readAuditTrail(mlflow, modelName);
    expect(trail.map((e) => [e.action, e.version, e.previous, e.by])).toEqual([
      ['promote', first.modelVersion, null, 'release-bot'],
      ['promote', third.modelVersion, first.modelVersion, 'release-bot'],
      ['rollback', first.modelVersion, third.modelVersion, 'oncall'],
    ]);
    // In MLflow: one short line per move on the registered model; the whole event on the run.
    const auditTags = ((await mlflow.getRegisteredModel(modelName)).tags ?? []).filter((t) =>
      t.key.startsWith('driftwood.audit.'),
    );
    expect(auditTags).toHaveLength(3);
    for (const t of auditTags) expect(t.value.length).toBeLessThan(200);
    const line = auditTags.find((t) => t.key === auditTagKey(trail[1] as AliasEvent))?.value;
    expect(line).toBe(
      `promoted champion to v${third.modelVersion} from v${first.modelVersion} by release-bot: ROC AUC ${r.evaluation.candidateRocAuc.toFixed(4)} vs ${(r.evaluation.championRocAuc as number).toFixed(4)} (+${(r.evaluation.diff as number).toFixed(4)})`,
    );
    const run = await mlflow.getRun(third.runId);
    const kept = JSON.parse(
      (
        await mlflow.downloadArtifact(run.info.artifact_uri, auditArtifactPath(trail[1] as AliasEvent))
      ).toString('utf8'),
    );
    expect(kept).toMatchObject({
      format: 'driftwood.audit/v1',
      ...(trail[1] as AliasEvent),
      reason: r.reason,
    });
    // `driftwood history` reads each event's full reason back from its JSON.
    const history = await runHistory({ modelName, alias: 'champion' }, { mlflow });
    expect(history.events.map((e) => e.reason)).toEqual([
      expect.stringMatching(/^holdout ROC AUC [0-9.]+ ≥ the floor/),
      r.reason,
      `rollback from version ${third.modelVersion}`,
    ]);
    const promotedAt = Date.parse((trail[1] as { at: string }).at);
    expect(versionAt(trail, 'champion', before - 1)).toBe(first.modelVersion);
    expect(versionAt(trail, 'champion', promotedAt)).toBe(third.modelVersion);
    expect(versionAt(trail, 'champion', Date.now())).toBe(first.modelVersion);
  });

  it('judges the candidate on its own when the champion can no longer be loaded', async () => {
    // A champion whose files this code cannot load (say, from before an upgrade) must not block
    // every later candidate: evaluate says why it could not compare, and the gate uses the floor.
    const broken = await registerTestModel(mlflow, {
      modelName,
      experiment: uniqueName('exp-broken'),
      seed: 61,
      broken: 'corrupt',
      alias: 'champion',
    });
    const e = await runEvaluate(
      { modelName, championAlias: 'champion', bootstrap: DEFAULT_BOOTSTRAP },
      { mlflow, log: silentLog },
    );
    expect(e.champion).toBeNull();
    expect(e.comparison).toBeNull();
    expect(e.championUnusable).toMatchObject({
      version: broken.version,
      reason: expect.stringMatching(/model.json/),
    });
    expect(e.candidate.version).toBe(third.modelVersion);
    await mlflow.setAlias(modelName, 'champion', first.modelVersion);
  });

  it('ten concurrent registrations give ten distinct READY versions', async () => {
    const name = uniqueName('churn-concurrent');
    await mlflow.ensureRegisteredModel(name);
    const versions = await Promise.all(
      Array.from({ length: 10 }, () =>
        mlflow.createModelVersion({
          name,
          source: `models:/${first.modelId}`,
          modelId: first.modelId,
          runId: first.runId,
        }),
      ),
    );
    const numbers = versions.map((v) => Number(v.version)).sort((a, b) => a - b);
    expect(numbers).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    for (const v of versions)
      expect((await mlflow.waitForVersionReady(name, v.version)).status).toBe('READY');
  });

  describe('log-batch retried after a lost reply', () => {
    let proxy: Server;
    let forwarded = 0;

    beforeAll(async () => {
      const target = new URL(inject('mlflowUri'));
      let failedOnce = false;
      // Forwards everything to MLflow; the first log-batch reaches the server but its reply is lost (503).
      proxy = createServer(async (req, res) => {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const upstream = await fetch(`${target.origin}${req.url}`, {
          method: req.method,
          headers: { 'content-type': String(req.headers['content-type'] ?? 'application/json') },
          ...(chunks.length ? { body: Buffer.concat(chunks) } : {}),
        });
        const body = Buffer.from(await upstream.arrayBuffer());
        if (req.url?.includes('runs/log-batch')) {
          forwarded++;
          if (!failedOnce) {
            failedOnce = true;
            res
              .writeHead(503, { 'content-type': 'application/json' })
              .end('{"error_code":"TEMPORARILY_UNAVAILABLE"}');
            return;
          }
        }
        res.writeHead(upstream.status, {
          'content-type': upstream.headers.get('content-type') ?? 'application/json',
        });
        res.end(body);
      });
      await new Promise<void>((resolve) => proxy.listen(PROXY_PORT, '127.0.0.1', resolve));
    });

    afterAll(async () => {
      await new Promise((resolve) => proxy?.close(resolve));
    });

    it('stores each point exactly once', async () => {
      const viaProxy = new Client(`http://127.0.0.1:${PROXY_PORT}`, {
        timeoutMs: 10_000,
        retries: 2,
        backoffMs: 10,
      });
      const experimentId = await mlflow.ensureExperiment(experiment);
      const run = await mlflow.createRun({ experimentId, runName: 'retry-check', tags: {} });
      const points = Array.from({ length: 5 }, (_, i) => ({
        key: 'loss',
        value: 1 / (i + 1),
        timestamp: 1_000 + i,
        step: i,
      }));
      await viaProxy.logBatch(run.info.run_id, { metrics: points, params: { a: 1 } });
      // The first request reached the server (its reply was lost), then one retry with what was missing.
      expect(forwarded).toBe(2);
      const stored = await mlflow.getMetricHistory(run.info.run_id, 'loss');
      expect(stored.map((m) => m.step).sort()).toEqual([0, 1, 2, 3, 4]);
    });
  });
});
