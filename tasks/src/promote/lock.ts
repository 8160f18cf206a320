import { randomUUID } from 'node:crypto';
import { DriftwoodError } from '../errors.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { RegisteredModel } from '../mlflow/types.js';

/**
 * MLflow has no compare-and-set on aliases, but creating a registered model whose name exists fails
 * atomically (RESOURCE_ALREADY_EXISTS, a unique key in its store). A lock is therefore a registered
 * model `<model>.alias-lock` that lives only while one promotion or rollback moves an alias; its
 * description holds the owner's token, so a create retried after a lost reply still knows it won.
 * A holder that died leaves the lock behind: after `leaseMs` it counts as abandoned and is removed.
 */
export interface AliasLockOptions {
  /** How long a lock may be held before others treat it as abandoned. */
  leaseMs?: number;
  /** How long to wait for another holder before giving up (a retryable fault). */
  waitMs?: number;
  now?: () => number;
}

export const lockNameOf = (modelName: string): string => `${modelName}.alias-lock`;

export async function withAliasLock<T>(
  mlflow: MlflowClient,
  modelName: string,
  fn: () => Promise<T>,
  opts: AliasLockOptions = {},
): Promise<T> {
  const name = lockNameOf(modelName);
  const token = `driftwood alias lock ${randomUUID()}`;
  const now = opts.now ?? Date.now;
  const leaseMs = opts.leaseMs ?? 120_000;
  const deadline = now() + (opts.waitMs ?? 300_000);
  for (let attempt = 0; ; attempt++) {
    if (await tryAcquire(mlflow, name, token, leaseMs, now)) break;
    if (now() > deadline)
      throw new DriftwoodError(
        'MLFLOW_ERROR',
        `another promotion or rollback of ${modelName} holds ${name}; try again, or delete that registered model if no promotion is running`,
      );
    await new Promise((r) =>
      setTimeout(r, Math.min(1000, 50 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random())),
    );
  }
  try {
    return await fn();
  } finally {
    await mlflow.deleteRegisteredModel(name).catch(() => undefined);
  }
}

async function tryAcquire(
  mlflow: MlflowClient,
  name: string,
  token: string,
  leaseMs: number,
  now: () => number,
): Promise<boolean> {
  try {
    await mlflow.createRegisteredModel(name, token);
    return true;
  } catch (err) {
    const code = err instanceof DriftwoodError ? err.details.mlflowCode : undefined;
    // A create racing the holder's delete can fail as "not found": contention, try again.
    if (code === 'RESOURCE_DOES_NOT_EXIST') return false;
    if (code !== 'RESOURCE_ALREADY_EXISTS') throw err;
  }
  const held = (await mlflow.getRegisteredModel(name).catch(() => undefined)) as
    | (RegisteredModel & { description?: string; creation_timestamp?: string | number })
    | undefined;
  if (!held) return false; // released in between: try again
  if (held.description === token) return true; // our own create, answered late and retried
  const since = Number(held.creation_timestamp);
  if (Number.isFinite(since) && now() - since > leaseMs)
    await mlflow.deleteRegisteredModel(name).catch(() => undefined);
  return false;
}
