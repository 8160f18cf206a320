import { DriftwoodError } from '../errors.js';
import type { MlflowClient } from '../mlflow/client.js';
import { loadModelVersion } from '../models/serving-model.js';
import { planRollback, versionAt } from './history.js';
import { compareAndMoveAlias, type PromoteDeps, readAuditTrail } from './index.js';
import { withAliasLock } from './lock.js';

export interface RollbackOptions {
  modelName: string;
  alias: string;
  /** Roll back to this version instead of the one before the last move. */
  version?: string;
  reason?: string;
}

export interface RollbackResult {
  modelName: string;
  alias: string;
  version: string;
  previous: string | null;
  reason: string;
}

/**
 * Moves the alias back to the version that held it before the last move (or to --version). The
 * target must still load; the move is a compare-and-set under the alias lock like a promotion's and
 * is recorded the same way, so the trail stays complete.
 */
export async function runRollback(options: RollbackOptions, deps: PromoteDeps): Promise<RollbackResult> {
  const { mlflow } = deps;
  const current = (await mlflow.getVersionByAlias(options.modelName, options.alias))?.version ?? null;
  const events = await readAuditTrail(mlflow, options.modelName);
  let to: string;
  if (options.version) to = options.version;
  else {
    const plan = planRollback(events, options.alias, current);
    if (plan.to === null)
      throw new DriftwoodError(
        'DATA_MISSING',
        `cannot roll back '${options.alias}' of ${options.modelName}: ${plan.reason}`,
      );
    to = plan.to;
  }
  const target = await mlflow.getModelVersion(options.modelName, to);
  const loaded = await loadModelVersion(mlflow, target, options.alias);
  loaded.dispose();
  const reason = options.reason ?? `rollback from version ${current ?? 'none'}`;
  if (current !== to) {
    // The same compare-and-set as a promotion: the alias must still hold the version planned from.
    await withAliasLock(mlflow, options.modelName, () =>
      compareAndMoveAlias(
        mlflow,
        options.modelName,
        { alias: options.alias, version: to, action: 'rollback', by: deps.user ?? 'driftwood', reason },
        current,
        deps.now,
      ),
    );
  }
  deps.log.info(
    { alias: options.alias, version: to, previous: current },
    `rollback: ${options.alias} is version ${to}`,
  );
  return { modelName: options.modelName, alias: options.alias, version: to, previous: current, reason };
}

export interface HistoryResult {
  modelName: string;
  alias: string;
  at: string | null;
  version: string | null;
  events: Awaited<ReturnType<typeof readAuditTrail>>;
}

/**
 * The alias's audit trail with each event's full reason (from its JSON on the run; the tags hold a
 * short line), and which version held the alias at `at` when given.
 */
export async function runHistory(
  options: { modelName: string; alias: string; at?: number },
  deps: { mlflow: MlflowClient },
): Promise<HistoryResult> {
  const events = (await readAuditTrail(deps.mlflow, options.modelName, { full: true })).filter(
    (e) => e.alias === options.alias,
  );
  return {
    modelName: options.modelName,
    alias: options.alias,
    at: options.at === undefined ? null : new Date(options.at).toISOString(),
    version: options.at === undefined ? null : versionAt(events, options.alias, options.at),
    events,
  };
}
