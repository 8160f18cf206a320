import { DriftwoodError, isDriftwoodError } from '../errors.js';
import { loadTabularProfile } from '../features/profile.js';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { ModelVersion } from '../mlflow/types.js';
import { type BinaryMetrics, binaryMetrics } from '../models/metrics.js';
import { loadModelVersion, type ServingModel } from '../models/serving-model.js';
import { type HoldoutFile, parseHoldoutFile } from '../train/data.js';
import type { BehaviourCheck } from './behaviour.js';
import { type PairedDifference, pairedBootstrapAuc } from './bootstrap.js';
import { type SegmentMetrics, segmentMetrics } from './segments.js';

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

export interface ModelScore {
  version: string;
  threshold: number;
  metrics: BinaryMetrics;
  segments: SegmentMetrics[];
}

/** Everything the promotion gate decides from, scored on one holdout: the candidate's. */
export interface Evaluation {
  modelName: string;
  holdout: { runId: string; cutoff: string; rows: number; positives: number };
  candidate: ModelScore;
  champion: ModelScore | null;
  /** candidate − champion ROC AUC with its bootstrap interval; null without a champion. */
  comparison: PairedDifference | null;
  /**
   * A champion this code can no longer load (for example a transform format from before an
   * upgrade): it cannot be compared, so the gate judges the candidate on its own, and says so.
   */
  championUnusable: { version: string; reason: string } | null;
  behaviour: BehaviourCheck[];
}

export const tagOf = (mv: ModelVersion, key: string): string | undefined =>
  mv.tags?.find((t) => t.key === key)?.value;

function thresholdOf(mv: ModelVersion): number {
  const t = Number(tagOf(mv, 'driftwood.threshold'));
  return Number.isFinite(t) && t > 0 && t < 1 ? t : 0.5;
}

/**
 * Scores the candidate and the current champion on the candidate's holdout (the rows its training
 * run set aside, stored as `evaluation/holdout.json`), each model loaded exactly as serving loads
 * it, and runs the behavioural checks on the candidate.
 */
export async function runEvaluate(
  options: EvaluateOptions,
  deps: { mlflow: MlflowClient; log: Logger },
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
  try {
    holdout = parseHoldoutFile(
      JSON.parse(
        (await mlflow.downloadArtifact(run.info.artifact_uri, 'evaluation/holdout.json')).toString('utf8'),
      ),
    );
  } catch (err) {
    throw new DriftwoodError(
      'DATA_MISSING',
      `version ${candidateMv.version}: its run ${candidateMv.run_id} has no usable evaluation/holdout.json (${(err as Error).message}); retrain it with this version of driftwood`,
      {},
      { cause: err },
    );
  }
  // The run names its dataset; the dataset's builder names the segments and the behavioural checks.
  const dataset = run.data?.tags?.find((t) => t.key === 'driftwood.dataset')?.value ?? options.modelName;
  const profile = await loadTabularProfile({
    dataset,
    ...(options.contractsDir ? { contractsDir: options.contractsDir } : {}),
  });
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
    const result: Evaluation = {
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
    deps.log.info(
      {
        candidate: candidateMv.version,
        champion: championMv?.version,
        candidateAuc: candidate.s.metrics.roc_auc,
        championAuc: champion?.s.metrics.roc_auc,
        comparison,
        behaviour: behaviour.map((b) => `${b.name}:${b.passed ? 'ok' : 'FAILED'}`),
      },
      'evaluate: candidate and champion scored on the same holdout',
    );
    return result;
  } finally {
    candidate.model.dispose();
  }
}
