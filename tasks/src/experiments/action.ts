import { DriftwoodError, isDriftwoodError } from '../errors.js';
import { runEvaluate } from '../evaluate/index.js';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import { DEFAULT_POLICY, type PromotionPolicy } from '../promote/decide.js';
import { DEFAULT_BOOTSTRAP, runPromote } from '../promote/index.js';
import type { ExperimentAnalysis } from './analyse.js';
import type { ExperimentRecord } from './declaration.js';
import { type StoredExperiment, TAG } from './record.js';

/** The alias a `promote` decision moves: the one the API serves and the pipeline promotes to. */
export const CHAMPION = 'champion';

/**
 * What became of a `promote` decision: `recorded` (the declaration says `on_decision: record`),
 * `pending` (to be promoted; written with the decision, so a retry finds it), then `promoted` or
 * `refused` (the promotion gate said no).
 */
export type ActionState = 'recorded' | 'pending' | 'promoted' | 'refused';

export interface ActionPlan {
  state: 'recorded' | 'pending';
  winner: string;
  version: string;
  detail: string;
}

/** What a look's decision asks of the registry: nothing unless it is `promote`. Pure. */
export function planAction(
  record: Pick<ExperimentRecord, 'declaration' | 'variants'>,
  analysis: Pick<ExperimentAnalysis, 'decision' | 'winner'>,
): ActionPlan | undefined {
  if (analysis.decision !== 'promote' || analysis.winner === null) return undefined;
  const winner = analysis.winner;
  const version = record.variants.find((v) => v.name === winner)?.version;
  if (version === undefined)
    throw new DriftwoodError(
      'DATA_MISSING',
      `experiment ${record.declaration.name}: the winner '${winner}' is not one of its variants`,
    );
  const d = record.declaration;
  if ((d.on_decision ?? 'record') === 'record')
    return {
      state: 'recorded',
      winner,
      version,
      detail: `promote ${winner} (version ${version}) recorded; on_decision is 'record', so ${CHAMPION} was not moved (driftwood promote --dataset ${d.dataset} --version ${version} runs the promotion gate)`,
    };
  return {
    state: 'pending',
    winner,
    version,
    detail: `promote ${winner} (version ${version}) to ${CHAMPION}: pending`,
  };
}

export interface ActionOptions {
  policy?: PromotionPolicy;
  bootstrap?: typeof DEFAULT_BOOTSTRAP;
  contractsDir?: string;
}

export interface ActionDeps {
  mlflow: MlflowClient;
  log: Logger;
  now: () => number;
}

export interface ActionResult {
  state: ActionState;
  winner: string;
  version: string;
  /** The champion's version before (null when there was none). */
  previous: string | null;
  detail: string;
}

/**
 * Makes the winner's version the champion the way the pipeline does: evaluate (against the
 * champion as it is now) then promote, whose gate and compare-and-set under the alias lock stay in
 * charge — a decision on live traffic never bypasses the holdout checks. A gate that says no is an
 * outcome (`refused`), recorded; any other failure leaves the action `pending` for the next try.
 */
export async function applyPromotion(
  stored: StoredExperiment,
  options: ActionOptions,
  deps: ActionDeps,
): Promise<ActionResult> {
  const plan = stored.analysis && planAction(stored, stored.analysis);
  if (plan?.state !== 'pending')
    throw new DriftwoodError(
      'USAGE',
      `experiment ${stored.declaration.name}: no promotion to apply (decision ${stored.analysis?.decision ?? 'none'}, on_decision ${stored.declaration.on_decision})`,
    );
  const { winner, version } = plan;
  const modelName = stored.model_name;
  const contractsDir = options.contractsDir ? { contractsDir: options.contractsDir } : {};
  const bootstrap = options.bootstrap ?? DEFAULT_BOOTSTRAP;
  const previous = (await deps.mlflow.getVersionByAlias(modelName, CHAMPION))?.version ?? null;
  // Who moved the alias, in the audit trail: the experiment whose decision it was.
  const user = `experiment ${stored.declaration.name}`;
  let result: ActionResult;
  try {
    await runEvaluate(
      { modelName, version, championAlias: CHAMPION, bootstrap, ...contractsDir },
      { mlflow: deps.mlflow, log: deps.log, now: deps.now },
    );
    const promoted = await runPromote(
      {
        modelName,
        version,
        alias: CHAMPION,
        policy: options.policy ?? DEFAULT_POLICY,
        bootstrap,
        ...contractsDir,
      },
      { ...deps, user },
    );
    result = {
      state: 'promoted',
      winner,
      version,
      previous: promoted.previous,
      detail: `${winner} (version ${version}) promoted to ${CHAMPION}${promoted.previous && promoted.previous !== version ? ` in place of version ${promoted.previous}` : ''} through the promotion gate (${promoted.reason}); the experiment has ended`,
    };
  } catch (err) {
    if (!isDriftwoodError(err, 'GATE_NOT_PASSED')) throw err;
    result = {
      state: 'refused',
      winner,
      version,
      previous,
      detail: `${winner} (version ${version}) not promoted: ${err.message}; ${CHAMPION} stays ${previous ? `version ${previous}` : 'unset'} and the experiment has ended`,
    };
  }
  await recordAction(deps.mlflow, stored, result.state, result.detail);
  deps.log.info({ experiment: stored.declaration.name, ...result }, `experiment: ${result.detail}`);
  return result;
}

/** The action's state and sentence as tags, and the sentence on the run's note (its page shows it). */
export async function recordAction(
  mlflow: MlflowClient,
  stored: Pick<StoredExperiment, 'run_id'>,
  state: ActionState,
  detail: string,
): Promise<void> {
  const run = await mlflow.getRun(stored.run_id);
  const note = run.data.tags?.find((t) => t.key === 'mlflow.note.content')?.value ?? '';
  const first = note.split('\n\nDecision: ')[0] ?? '';
  await mlflow.logBatch(stored.run_id, {
    tags: {
      [TAG.action]: state,
      [TAG.actionDetail]: detail,
      'mlflow.note.content': `${first}\n\nDecision: ${detail}.`,
    },
  });
}
