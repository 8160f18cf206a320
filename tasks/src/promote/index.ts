import { DriftwoodError } from '../errors.js';
import { type EvaluateOptions, type Evaluation, runEvaluate } from '../evaluate/index.js';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import { loadModelByAlias } from '../models/serving-model.js';
import { decidePromotion, type GateCheck, type GateEvidence, type PromotionPolicy } from './decide.js';
import { type AliasEvent, auditTagKey, parseAuditTags } from './history.js';

export interface PromoteOptions {
  modelName: string;
  /** The version to promote; by default the one behind the `challenger` alias. */
  version?: string;
  alias: string;
  policy: PromotionPolicy;
  bootstrap?: EvaluateOptions['bootstrap'];
  contractsDir?: string;
}

export interface PromoteDeps {
  mlflow: MlflowClient;
  log: Logger;
  now: () => number;
  /** Who moves the alias, for the audit trail. */
  user?: string;
}

export interface PromoteResult {
  modelName: string;
  alias: string;
  version: string;
  previous: string | null;
  promoted: boolean;
  reason: string;
  checks: GateCheck[];
  evaluation: {
    holdoutRows: number;
    candidateRocAuc: number;
    championRocAuc: number | null;
    diff: number | null;
    interval: [number, number] | null;
  };
}

export const DEFAULT_BOOTSTRAP = { samples: 1000, seed: 17, level: 0.95 };

export function toEvidence(e: Evaluation): GateEvidence {
  return {
    candidate: {
      version: e.candidate.version,
      rocAuc: e.candidate.metrics.roc_auc,
      segments: e.candidate.segments,
    },
    champion: e.champion && {
      version: e.champion.version,
      rocAuc: e.champion.metrics.roc_auc,
      segments: e.champion.segments,
    },
    comparison: e.comparison,
    behaviour: e.behaviour,
  };
}

/**
 * Evaluates the candidate against the alias's current holder on the candidate's holdout, decides
 * with the gate, and only when it passes moves the alias — through `staging` and a smoke check when
 * the target is `champion`. The decision and its numbers go onto the candidate as version tags
 * either way; every move is appended to the registered model's audit trail.
 */
export async function runPromote(options: PromoteOptions, deps: PromoteDeps): Promise<PromoteResult> {
  const { mlflow } = deps;
  const evaluation = await runEvaluate(
    {
      modelName: options.modelName,
      ...(options.version ? { version: options.version } : {}),
      championAlias: options.alias,
      bootstrap: options.bootstrap ?? DEFAULT_BOOTSTRAP,
      ...(options.contractsDir ? { contractsDir: options.contractsDir } : {}),
    },
    deps,
  );
  const decision = decidePromotion(toEvidence(evaluation), options.policy);
  const version = evaluation.candidate.version;
  // The version that held the alias, even when it could not be loaded for comparison.
  const previous = evaluation.champion?.version ?? evaluation.championUnusable?.version ?? null;
  const result: PromoteResult = {
    modelName: options.modelName,
    alias: options.alias,
    version,
    previous,
    promoted: decision.promote,
    reason: decision.reason,
    checks: decision.checks,
    evaluation: {
      holdoutRows: evaluation.holdout.rows,
      candidateRocAuc: evaluation.candidate.metrics.roc_auc,
      championRocAuc: evaluation.champion?.metrics.roc_auc ?? null,
      diff: evaluation.comparison?.diff ?? null,
      interval: evaluation.comparison ? [evaluation.comparison.low, evaluation.comparison.high] : null,
    },
  };
  const at = new Date(deps.now()).toISOString();
  await mlflow.setModelVersionTag(
    options.modelName,
    version,
    `driftwood.gate.${options.alias}`,
    clip(`${decision.promote ? 'passed' : 'failed'} at ${at}: ${decision.reason}`),
  );
  await mlflow.setModelVersionTag(
    options.modelName,
    version,
    `driftwood.evaluation.${options.alias}`,
    clip(
      JSON.stringify({ at, ...result.evaluation, checks: decision.checks.map((c) => [c.name, c.passed]) }),
    ),
  );
  if (!decision.promote) {
    deps.log.warn(result, 'promote: gate not passed, alias left where it was');
    throw new DriftwoodError(
      'GATE_NOT_PASSED',
      `version ${version} not promoted to ${options.alias}: ${decision.reason}`,
      {
        result,
      },
    );
  }
  if (previous !== version) {
    if (options.alias === 'champion') await stageAndSmokeTest(mlflow, options.modelName, version, deps.log);
    await moveAlias(
      mlflow,
      {
        at,
        alias: options.alias,
        version,
        previous,
        action: 'promote',
        by: deps.user ?? 'driftwood',
        reason: decision.reason,
      },
      options.modelName,
    );
  }
  deps.log.info(result, `promote: ${options.alias} is version ${version}`);
  return result;
}

/** `staging` first: the version must load and answer there, the way serving will load it. */
async function stageAndSmokeTest(
  mlflow: MlflowClient,
  name: string,
  version: string,
  log: Logger,
): Promise<void> {
  await mlflow.setAlias(name, 'staging', version);
  const staged = await loadModelByAlias(mlflow, name, 'staging');
  try {
    if (staged.version !== version)
      throw new DriftwoodError(
        'MODEL_INVALID',
        `staging resolved to version ${staged.version}, expected ${version}`,
      );
    // The first known value of every categorical input; numeric inputs left out are imputed.
    const p = staged.score(
      Object.fromEntries(staged.transform.categorical.map((c) => [c.name, c.categories[0] ?? ''])),
    );
    if (!(p >= 0 && p <= 1))
      throw new DriftwoodError(
        'MODEL_INVALID',
        `version ${version} on staging answered ${p}, not a probability`,
      );
    log.info({ version, probability: p }, 'promote: staging smoke check passed');
  } finally {
    staged.dispose();
  }
}

/** Applies one alias move and records it: version tags (who, when, why, previous) and the audit trail. */
export async function moveAlias(mlflow: MlflowClient, e: AliasEvent, name: string): Promise<void> {
  await mlflow.setAlias(name, e.alias, e.version);
  await mlflow.setRegisteredModelTag(name, auditTagKey(e), clip(JSON.stringify(e)));
  await mlflow.setModelVersionTag(name, e.version, `driftwood.${e.alias}_since`, e.at);
  await mlflow.setModelVersionTag(name, e.version, `driftwood.${e.alias}_by`, e.by);
  await mlflow.setModelVersionTag(
    name,
    e.version,
    `driftwood.${e.alias}_reason`,
    clip(`${e.action}: ${e.reason}`),
  );
  await mlflow.setModelVersionTag(name, e.version, `driftwood.previous_${e.alias}`, e.previous ?? 'none');
  if (e.previous) await mlflow.setModelVersionTag(name, e.previous, `driftwood.${e.alias}_until`, e.at);
}

export async function readAuditTrail(mlflow: MlflowClient, name: string): Promise<AliasEvent[]> {
  return parseAuditTags((await mlflow.getRegisteredModel(name)).tags ?? []);
}

/** MLflow caps tag values at 8000 characters (mlflow/utils/validation.py). */
const clip = (s: string): string => (s.length > 8000 ? `${s.slice(0, 7997)}...` : s);
