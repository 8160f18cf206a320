import type { Config } from '../config.js';
import { loadContract } from '../contracts/index.js';
import { DriftwoodError } from '../errors.js';
import { type ObjectStore, openObjectStore } from '../lake/object-store.js';
import type { Logger } from '../log.js';
import { gitCommit } from '../source.js';
import { parseTime } from '../time.js';
import type { Warehouse } from '../warehouse/db.js';
import {
  latestAsOf,
  listSnapshots,
  readManifest,
  resolveSnapshot,
  runSnapshot,
  type SnapshotManifest,
} from './index.js';

/**
 * The snapshot a step reads, from its flags: `--snapshot <id|latest>` names one that exists;
 * `--snapshot-as-of <ISO time|latest>` the one taken as of that time (`latest`: the newest time the
 * loaded data allows), materialised first when there is none. The second is what a DAG passes: "the
 * newest snapshot" could be a later one somebody else took, while the snapshot step of the same run
 * made the one of its as-of time, which is found without building the rows again.
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
    labelDelayHours: number;
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
  const options = {
    dataset: ctx.dataset,
    horizonHours: ctx.horizonHours,
    labelDelayHours: ctx.labelDelayHours,
    ...(ctx.contractsDir ? { contractsDir: ctx.contractsDir } : {}),
  };
  const asOf =
    flags.snapshotAsOf === 'latest'
      ? await latestAsOf(await loadContract(ctx.dataset, ctx.contractsDir), options, ctx.db)
      : parseTime(flags.snapshotAsOf, '--snapshot-as-of');
  // The newest snapshot taken as of that time (a re-run of the snapshot step after late data makes a
  // newer one with the same as-of time); one whose labels cannot train is taken again.
  const iso = new Date(asOf).toISOString();
  const taken = (await listSnapshots(ctx.lake, ctx.dataset))
    .filter((s) => s.asOf === iso && s.untrainable === undefined)
    .sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1))
    .at(-1);
  if (taken) return readManifest(ctx.lake, ctx.dataset, taken.id);
  const made = await runSnapshot(
    { ...options, asOf },
    { db: ctx.db, lake: ctx.lake, log: ctx.log, commit: ctx.commit, now: Date.now },
  );
  return made.manifest;
}

/**
 * The snapshot a command's `--snapshot` / `--snapshot-as-of` flags name (against `--cutoff`), with
 * the lake it lives in; undefined when neither is given. Shared by the tabular and forecast steps.
 */
export async function snapshotFromArgs(
  config: Config,
  log: Logger,
  db: Warehouse,
  values: Record<string, unknown>,
  dataset: string,
  window: { horizonHours: number; labelDelayHours: number },
): Promise<{ manifest: SnapshotManifest; lake: ObjectStore } | undefined> {
  const lake = openObjectStore(config.lakeUri, config.s3);
  const opt = (name: string) => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  const manifest = await snapshotFromFlags(
    { snapshot: opt('snapshot'), snapshotAsOf: opt('snapshot-as-of'), cutoff: opt('cutoff') },
    {
      dataset,
      lake,
      db,
      log,
      commit: gitCommit() ?? null,
      ...window,
      ...(config.contractsDir ? { contractsDir: config.contractsDir } : {}),
    },
  );
  return manifest && { manifest, lake };
}
