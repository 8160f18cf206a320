import { createHash } from 'node:crypto';
import { loadContract } from '../contracts/index.js';
import { DriftwoodError, isDriftwoodError } from '../errors.js';
import { tabularProfile } from '../features/profile.js';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { ModelVersion } from '../mlflow/types.js';
import { binaryMetrics } from '../models/metrics.js';
import { loadModelVersion, type ServingModel } from '../models/serving-model.js';
import { type HoldoutFile, parseHoldoutFile } from '../train/data.js';
import { pairedBootstrapAuc } from './bootstrap.js';
import { CURVES_FORMAT, type CurvesFile, curveSeries, curvesPath } from './curves.js';
import { EVIDENCE_FORMAT, type Evidence, evidencePath, evidenceRef, evidenceTagKey } from './evidence.js';
import { segmentMetrics } from './segments.js';
import type { Evaluation, ModelScore } from './types.js';

export interface EvaluateOptions {
  modelName: string;
  /** The version to evaluate; by default the one behind `challenger`. */
  version?: string;
  /** The alias of the model to beat. */
  championAlias: string;
  bootstrap: { samples: number; seed: number; level: number };
  /** Where the dataset's contract is (its builder decides segments and behavioural checks). */
  contractsDir?: string;
}

export type { Evaluation, ModelScore } from './types.js';

export const tagOf = (mv: ModelVersion, key: string): string | undefined =>
  mv.tags?.find((t) => t.key === key)?.value;

const aucsOf = (s: ModelScore) => ({ rocAuc: s.metrics.roc_auc, prAuc: s.metrics.pr_auc });

function thresholdOf(mv: ModelVersion): number {
  const t = Number(tagOf(mv, 'driftwood.threshold'));
  return Number.isFinite(t) && t > 0 && t < 1 ? t : 0.5;
}

/**
 * Scores the candidate and the current champion on the candidate's holdout (the rows its training
 * run set aside, stored as `evaluation/holdout.json`), each model loaded exactly as serving loads
 * it, runs the behavioural checks and a smoke check on the candidate, and writes all of it, with the
 * ids of its inputs, as `evidence/<alias>.json` on the candidate's run; the version tag
 * `driftwood.evidence.<alias>` points at it. Promote decides from that file alone.
 */
export async function runEvaluate(
  options: EvaluateOptions,
  deps: { mlflow: MlflowClient; log: Logger; now?: () => number },
): Promise<Evaluation> {
  const { mlflow } = deps;
  const candidateMv = options.version
    ? await mlflow.getModelVersion(options.modelName, options.version)
    : await mlflow.getVersionByAlias(options.modelName, 'challenger');
  if (!candidateMv) {
    throw new DriftwoodError(
      'DATA_MISSING',
      `model '${options.modelName}' has no 'challenger' version: run 'driftwood train' first or pass --version`,
    );
  }
  if (!candidateMv.run_id)
    throw new DriftwoodError(
      'DATA_MISSING',
      `version ${candidateMv.version} has no source run to take a holdout from`,
    );
  const run = await mlflow.getRun(candidateMv.run_id);
  let holdout: HoldoutFile;
  let holdoutSha256: string;
  try {
    const bytes = await mlflow.downloadArtifact(run.info.artifact_uri, 'evaluation/holdout.json');
    holdoutSha256 = createHash('sha256').update(bytes).digest('hex');
    holdout = parseHoldoutFile(JSON.parse(bytes.toString('utf8')));
  } catch (err) {
    throw new DriftwoodError(
      'DATA_MISSING',
      `version ${candidateMv.version}: its run ${candidateMv.run_id} has no usable evaluation/holdout.json (${(err as Error).message}); retrain it with this version of driftwood`,
      {},
      { cause: err },
    );
  }
  // The run names its dataset; the dataset's builder names the segments and the behavioural checks.
  const runTag = (key: string) => run.data?.tags?.find((t) => t.key === key)?.value;
  const dataset = runTag('driftwood.dataset') ?? options.modelName;
  const contract = await loadContract(dataset, options.contractsDir);
  const profile = tabularProfile(contract);
  const championMv = await mlflow.getVersionByAlias(options.modelName, options.championAlias);
  const rows = holdout.rows.map((r) => ({ ...r.features, customer_id: r.customer_id }));
  const labels = holdout.rows.map((r) => r.label);
  const segmentRows = holdout.rows.map((r) => r.features);

  const score = async (
    mv: ModelVersion,
  ): Promise<{ model: ServingModel; scores: Float64Array; s: ModelScore }> => {
    const model = await loadModelVersion(mlflow, mv, 'evaluation');
    const scores = Float64Array.from(rows, (r) => model.score(r));
    const threshold = thresholdOf(mv);
    return {
      model,
      scores,
      s: {
        version: mv.version,
        threshold,
        metrics: binaryMetrics(scores, labels, threshold),
        segments: segmentMetrics(segmentRows, scores, labels, threshold, profile.segmentColumns),
      },
    };
  };
  const candidate = await score(candidateMv);
  try {
    const behaviour = profile.behaviour(rows, candidate.model.score, candidate.s.threshold);
    const smoke = smokeCheck(candidate.model);
    let champion: Awaited<ReturnType<typeof score>> | undefined;
    let championUnusable: Evaluation['championUnusable'] = null;
    if (championMv && championMv.version !== candidateMv.version) {
      try {
        champion = await score(championMv);
      } catch (err) {
        if (!isDriftwoodError(err, 'MODEL_INVALID')) throw err;
        championUnusable = { version: championMv.version, reason: err.message };
        deps.log.warn(
          championUnusable,
          'evaluate: the champion cannot be loaded; the candidate is judged on its own',
        );
      }
    }
    const comparison = champion
      ? pairedBootstrapAuc(candidate.scores, champion.scores, labels, options.bootstrap)
      : null;
    champion?.model.dispose();
    const candidateRunId = candidateMv.run_id;
    const evaluation = {
      modelName: options.modelName,
      holdout: {
        runId: candidateMv.run_id,
        cutoff: holdout.cutoff,
        rows: rows.length,
        positives: labels.reduce<number>((a, b) => a + b, 0),
      },
      candidate: candidate.s,
      champion: champion?.s ?? (championMv?.version === candidateMv.version ? candidate.s : null),
      comparison,
      championUnusable,
      behaviour,
    };
    const evidence: Evidence = {
      format: EVIDENCE_FORMAT,
      createdAt: new Date(deps.now?.() ?? Date.now()).toISOString(),
      modelName: options.modelName,
      inputs: {
        dataset,
        candidate: { version: candidateMv.version, runId: candidateRunId },
        champion: {
          alias: options.championAlias,
          version: championMv?.version ?? null,
          runId: championMv?.run_id ?? null,
        },
        snapshotId: runTag('driftwood.snapshot_id') ?? null,
        featuresId: runTag('driftwood.features_id') ?? null,
        holdoutSha256,
        contract: { version: contract.version, digest: contract.digest },
      },
      holdout: evaluation.holdout,
      candidate: evaluation.candidate,
      champion: evaluation.champion,
      comparison: evaluation.comparison,
      championUnusable: evaluation.championUnusable,
      bootstrap: options.bootstrap,
      behaviour,
      smoke,
    };
    await mlflow.uploadArtifact(
      run.info.artifact_uri,
      evidencePath(options.championAlias),
      `${JSON.stringify(evidence, null, 2)}\n`,
    );
    // The points behind the ROC and PR curves of both models on this holdout, as data: the
    // dashboard overlays them (a PNG per training run cannot be drawn over another).
    const curves: CurvesFile = {
      format: CURVES_FORMAT,
      alias: options.championAlias,
      holdout: { runId: candidateRunId, rows: rows.length, positives: evaluation.holdout.positives },
      series: [
        curveSeries('candidate', candidateMv.version, candidate.scores, labels, aucsOf(candidate.s)),
        ...(champion
          ? [curveSeries('champion', champion.s.version, champion.scores, labels, aucsOf(champion.s))]
          : []),
      ],
    };
    await mlflow.uploadArtifact(
      run.info.artifact_uri,
      curvesPath(options.championAlias),
      `${JSON.stringify(curves)}\n`,
    );
    const ref = evidenceRef(candidateRunId, options.championAlias);
    await mlflow.setModelVersionTag(
      options.modelName,
      candidateMv.version,
      evidenceTagKey(options.championAlias),
      ref,
    );
    const result: Evaluation = { ...evaluation, evidence: ref };
    deps.log.info(
      {
        candidate: candidateMv.version,
        champion: championMv?.version,
        // The run the evidence went to: the task log links it in MLflow's UI.
        runId: candidateRunId,
        experimentId: run.info.experiment_id,
        candidateAuc: candidate.s.metrics.roc_auc,
        championAuc: champion?.s.metrics.roc_auc,
        comparison,
        behaviour: behaviour.map((b) => `${b.name}:${b.passed ? 'ok' : 'FAILED'}`),
      },
      'evaluate: candidate and champion scored on the same holdout; evidence written',
    );
    return result;
  } finally {
    candidate.model.dispose();
  }
}

/**
 * The candidate, loaded the way serving loads it, must answer a probability for a probe row (the
 * first known value of every categorical input; numeric inputs left out are imputed).
 */
function smokeCheck(model: ServingModel): Evidence['smoke'] {
  try {
    const p = model.score(
      Object.fromEntries(model.transform.categorical.map((c) => [c.name, c.categories[0] ?? ''])),
    );
    const passed = p >= 0 && p <= 1;
    return {
      passed,
      probability: Number.isFinite(p) ? p : null,
      detail: passed ? `answered ${p} for a probe row` : `answered ${p}, not a probability`,
    };
  } catch (err) {
    return { passed: false, probability: null, detail: `failed on a probe row: ${(err as Error).message}` };
  }
}
