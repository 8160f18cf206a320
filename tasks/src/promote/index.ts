import { DriftwoodError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { ModelVersion } from '../mlflow/types.js';
import { type Candidate, decidePromotion, type PromotionPolicy } from './decide.js';

export interface PromoteOptions {
  modelName: string;
  /** The version to promote; by default the one behind the `challenger` alias. */
  version?: string;
  alias: string;
  policy: PromotionPolicy;
}

export interface PromoteResult {
  modelName: string;
  alias: string;
  version: string;
  previous: string | null;
  promoted: boolean;
  reason: string;
}

const tag = (mv: ModelVersion, key: string): string | undefined => mv.tags?.find((t) => t.key === key)?.value;
const asCandidate = (mv: ModelVersion): Candidate => {
  const auc = tag(mv, 'driftwood.holdout_roc_auc');
  return { version: mv.version, rocAuc: auc === undefined ? undefined : Number(auc) };
};

/** Moves the alias (default `champion`) to a candidate version when the gate allows it. */
export async function runPromote(
  options: PromoteOptions,
  deps: { mlflow: MlflowClient; log: Logger; now: () => number },
): Promise<PromoteResult> {
  const { mlflow } = deps;
  const candidate = options.version
    ? await mlflow.getModelVersion(options.modelName, options.version)
    : await mlflow.getVersionByAlias(options.modelName, 'challenger');
  if (!candidate) {
    throw new DriftwoodError(
      'DATA_MISSING',
      `model '${options.modelName}' has no 'challenger' version: run 'driftwood train' first or pass --version`,
    );
  }
  const current = await mlflow.getVersionByAlias(options.modelName, options.alias);
  const decision = decidePromotion(asCandidate(candidate), current && asCandidate(current), options.policy);
  const result: PromoteResult = {
    modelName: options.modelName,
    alias: options.alias,
    version: candidate.version,
    previous: current?.version ?? null,
    promoted: decision.promote,
    reason: decision.reason,
  };
  await mlflow.setModelVersionTag(
    options.modelName,
    candidate.version,
    `driftwood.gate.${options.alias}`,
    `${decision.promote ? 'passed' : 'failed'}: ${decision.reason}`,
  );
  if (!decision.promote) {
    deps.log.warn(result, 'promote: gate not passed, alias left where it was');
    throw new DriftwoodError(
      'GATE_NOT_PASSED',
      `version ${candidate.version} not promoted to ${options.alias}: ${decision.reason}`,
      { result },
    );
  }
  if (current?.version !== candidate.version) {
    await mlflow.setAlias(options.modelName, options.alias, candidate.version);
    await mlflow.setModelVersionTag(
      options.modelName,
      candidate.version,
      `driftwood.${options.alias}_since`,
      new Date(deps.now()).toISOString(),
    );
    if (current)
      await mlflow.setModelVersionTag(
        options.modelName,
        candidate.version,
        `driftwood.previous_${options.alias}`,
        current.version,
      );
  }
  deps.log.info(result, `promote: ${options.alias} is version ${candidate.version}`);
  return result;
}
