import { DriftwoodError } from '../errors.js';
import type { ObjectStore } from '../lake/object-store.js';
import type { Logger } from '../log.js';
import { parseTime } from '../time.js';
import type { Warehouse } from '../warehouse/db.js';
import { resolveSnapshot, runSnapshot, type SnapshotManifest } from './index.js';

/**
 * The snapshot a step reads, from its flags: `--snapshot <id|latest>` names one that exists;
 * `--snapshot-as-of <ISO time|latest>` the one of the warehouse's data as of that time, materialised
 * first if it is not there yet (content addressed, so an existing one is reused as it is). The
 * second is what a DAG passes: "latest" by as-of could be a later snapshot someone else took.
 */
export async function snapshotFromFlags(
  flags: { snapshot?: string; snapshotAsOf?: string; cutoff?: string },
  ctx: {
    dataset: string;
    lake: ObjectStore;
    db: Warehouse;
    log: Logger;
    commit: string | null;
    contractsDir?: string;
    horizonHours: number;
  },
): Promise<SnapshotManifest | undefined> {
  const given = (['snapshot', 'snapshotAsOf', 'cutoff'] as const).filter((k) => flags[k] !== undefined);
  if (given.length > 1)
    throw new DriftwoodError(
      'USAGE',
      `${given.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(' and ')}: give one`,
    );
  if (flags.snapshot !== undefined) return resolveSnapshot(ctx.lake, ctx.dataset, flags.snapshot);
  if (flags.snapshotAsOf === undefined) return undefined;
  const asOf = flags.snapshotAsOf === 'latest' ? 'latest' : parseTime(flags.snapshotAsOf, '--snapshot-as-of');
  const made = await runSnapshot(
    {
      dataset: ctx.dataset,
      asOf,
      horizonHours: ctx.horizonHours,
      labelDelayHours: 24,
      ...(ctx.contractsDir ? { contractsDir: ctx.contractsDir } : {}),
    },
    { db: ctx.db, lake: ctx.lake, log: ctx.log, commit: ctx.commit, now: Date.now },
  );
  return made.manifest;
}
