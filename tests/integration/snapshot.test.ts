import path from 'node:path';
import { type ObjectStore, openObjectStore, openWarehouse, type Warehouse } from '@driftwood/tasks';
import { parquetMetadataAsync } from 'hyparquet';
import knexFactory from 'knex';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { defaultCutoff } from '../../tasks/src/datasets/churn/builder.js';
import { runIngest } from '../../tasks/src/ingest/index.js';
import { parquetReadObjects } from '../../tasks/src/parquet.js';
import { asyncBufferOf } from '../../tasks/src/readers/index.js';
import { readReplayRows } from '../../tasks/src/replay/index.js';
import { runSimulate } from '../../tasks/src/simulate/index.js';
import {
  listSnapshots,
  readManifest,
  resolveSnapshot,
  runSnapshot,
  type SnapshotManifest,
  snapshotDatasetInput,
} from '../../tasks/src/snapshot/index.js';
import { snapshotFromFlags } from '../../tasks/src/snapshot/ref.js';
import { mlflowClient, runCli, silentLog, tempHome, uniqueName } from '../support/env.js';

const PII_KEY = 'test-key-0123456789abcdef';
const PG_DB = process.env.DRIFTWOOD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SCHEMA = `dws_${Date.now().toString(36)}_${process.pid}`;
const START = Date.parse('2026-11-01T00:00:00Z');
const AS_OF = Date.parse('2026-11-09T00:00:00Z');
const snap = { dataset: 'churn', asOf: AS_OF, horizonHours: 48, labelDelayHours: 24 };
const HEX64 = /^[0-9a-f]{64}$/;

describe('data snapshots', () => {
  let home: string;
  let lakeDir: string;
  let lake: ObjectStore;
  let sqlite: Warehouse;
  let pg: Warehouse;
  let pgUrl: string;
  const admin = knexFactory({ client: 'pg', connection: PG_DB, pool: { min: 0, max: 1 } });
  const deps = (db: Warehouse) => ({
    db,
    lake,
    log: silentLog,
    commit: 'abc123',
    now: () => Date.parse('2026-11-20T00:00:00Z'),
  });

  beforeAll(async () => {
    home = tempHome('driftwood-snapshot-');
    lakeDir = path.join(home, 'lake');
    lake = openObjectStore(`file://${lakeDir}`);
    await runSimulate(
      { dataset: 'churn', start: START, hours: 8 * 24, seed: 11, entities: 300, labelDelayHours: 24 },
      { lake, log: silentLog },
    );
    sqlite = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
    await admin.raw(`CREATE SCHEMA ${SCHEMA}`);
    pgUrl = `${PG_DB}?options=${encodeURIComponent(`-c search_path=${SCHEMA}`)}`;
    pg = await openWarehouse(pgUrl);
    const ingest = { dataset: 'churn', piiKey: PII_KEY, now: () => AS_OF };
    await runIngest(ingest, { lake, db: sqlite, log: silentLog });
    await runIngest(ingest, { lake, db: pg, log: silentLog });
  });
  afterAll(async () => {
    await sqlite?.destroy();
    await pg?.destroy();
    await admin.raw(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
    await admin.destroy();
  });

  it('materialises a content-addressed snapshot with a manifest, and the same inputs give the same id', async () => {
    const first = await runSnapshot(snap, deps(sqlite));
    expect(first.id).toMatch(HEX64);
    expect(first.created).toBe(true);
    const m = first.manifest;
    expect(m).toMatchObject({
      dataset: 'churn',
      asOf: '2026-11-09T00:00:00.000Z',
      cutoff: '2026-11-06T00:00:00.000Z',
      dataKey: `snapshots/churn/${first.id}/data.parquet`,
      contract: { dataset: 'churn', version: 1 },
      code: { commit: 'abc123' },
    });
    expect(m.rows).toBeGreaterThan(200);
    expect(m.positives).toBeGreaterThan(0);
    expect(m.schemaHash).toMatch(HEX64);
    // Sources are the loaded files of the hours before the as-of time, with their content hashes.
    expect(m.sources.length).toBeGreaterThan(0);
    for (const s of m.sources) {
      expect(s.key < 'raw/churn/dt=2026-11-09').toBe(true);
      expect(s.sha256).toMatch(HEX64);
    }
    // The Parquet file holds what the manifest says.
    const info = await lake.head(m.dataKey);
    const file = asyncBufferOf({ size: info?.size ?? 0, range: (a, b) => lake.getRange(m.dataKey, a, b) });
    const rows = await parquetReadObjects({ file, metadata: await parquetMetadataAsync(file) });
    expect(rows).toHaveLength(m.rows);
    expect(Object.keys(rows[0] ?? {})).toEqual(m.schema.map((c) => c.name));
    const { createHash } = await import('node:crypto');
    expect(
      createHash('sha256')
        .update(await lake.get(m.dataKey))
        .digest('hex'),
    ).toBe(m.dataSha256);

    // Again: same id, nothing rewritten (immutable).
    const before = await lake.head(`snapshots/churn/${first.id}/manifest.json`);
    const again = await runSnapshot(snap, { ...deps(sqlite), now: () => Date.parse('2030-01-01T00:00:00Z') });
    expect(again).toMatchObject({ id: first.id, created: false });
    expect(await lake.head(`snapshots/churn/${first.id}/manifest.json`)).toEqual(before);
    expect(again.manifest.createdAt).toBe(m.createdAt);
  });

  it('gives the same id on PostgreSQL as on SQLite for the same data, and another as-of time another id', async () => {
    const fromSqlite = await runSnapshot(snap, deps(sqlite));
    const pgLake = openObjectStore(`file://${path.join(home, 'lake-pg')}`);
    const fromPg = await runSnapshot(snap, { ...deps(pg), lake: pgLake });
    // The data holds a ratio on a rounding tie (251.5 / 16 for one customer) that the two backends'
    // float sums used to put on either side.
    expect(fromPg.id).toBe(fromSqlite.id);
    expect((await runSnapshot(snap, { ...deps(pg), lake: pgLake })).id).toBe(fromPg.id);
    expect(fromPg.manifest).toMatchObject({
      rows: fromSqlite.manifest.rows,
      positives: fromSqlite.manifest.positives,
      schemaHash: fromSqlite.manifest.schemaHash,
      sources: fromSqlite.manifest.sources,
    });
    const later = await runSnapshot({ ...snap, asOf: AS_OF + 24 * 3_600_000 }, deps(sqlite));
    expect(later.id).not.toBe(fromSqlite.id);
    expect((await listSnapshots(lake, 'churn')).map((s) => s.id)).toEqual([fromSqlite.id, later.id]);
    expect((await readManifest(lake, 'churn', later.id)).cutoff).toBe('2026-11-07T00:00:00.000Z');
    await expect(readManifest(lake, 'churn', 'f'.repeat(64))).rejects.toThrow(/no snapshot f{64} of churn/);
    await expect(readManifest(lake, 'churn', 'nope')).rejects.toThrow(/expected 64 hex digits, got 'nope'/);
  });

  it('the CLI materialises, lists and shows the same snapshot', async () => {
    const env = {
      DRIFTWOOD_HOME: path.join(home, 'cli'),
      DRIFTWOOD_LAKE_URI: `file://${lakeDir}`,
      DRIFTWOOD_WAREHOUSE_URL: `sqlite://${path.join(home, 'warehouse.db')}`,
      DRIFTWOOD_PII_KEY: PII_KEY,
    };
    const made = await runCli(['snapshot', '--dataset', 'churn', '--as-of', '2026-11-09T00:00Z'], env);
    expect(made.code, made.stderr).toBe(0);
    const expected = (await runSnapshot(snap, deps(sqlite))).id;
    expect(JSON.parse(made.stdout)).toMatchObject({ id: expected, created: false });
    const listed = await runCli(['snapshot', '--list'], env);
    expect(JSON.parse(listed.stdout).snapshots.map((s: { id: string }) => s.id)).toContain(expected);
    const shown = await runCli(['snapshot', '--show', expected], env);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id: expected, format: 'driftwood.snapshot/v1' });
    const bad = await runCli(['snapshot', '--show', 'xyz'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/snapshot id: expected 64 hex digits, got 'xyz'/);
  });

  it('an MLflow training run records the snapshot as its dataset input', async () => {
    const m = (await runSnapshot(snap, deps(sqlite))).manifest;
    const mlflow = mlflowClient(inject('mlflowUri'));
    const experimentId = await mlflow.ensureExperiment(uniqueName('driftwood-snapshot'));
    const run = await mlflow.createRun({ experimentId, runName: 'snapshot-input', tags: {} });
    await mlflow.logInputs(run.info.run_id, [snapshotDatasetInput(m, `file://${lakeDir}`)]);
    await mlflow.setTag(run.info.run_id, 'driftwood.snapshot', m.id);
    await mlflow.finishRun(run.info.run_id, 'FINISHED');
    const seen = await mlflow.getRun(run.info.run_id);
    const input = seen.inputs?.dataset_inputs?.[0]?.dataset;
    expect(input).toMatchObject({ name: 'churn-snapshot', digest: m.id.slice(0, 36) });
    expect(JSON.parse(input?.source ?? '{}')).toEqual({
      uri: `file://${lakeDir}/${m.dataKey}`,
      snapshot_id: m.id,
    });
    expect(seen.data.tags?.find((t) => t.key === 'driftwood.snapshot')?.value).toBe(m.id);
  });

  it('as of `latest`: the newest cutoff the loaded data allows, the one training takes by default', async () => {
    const latestLake = openObjectStore(`file://${path.join(home, 'lake-latest')}`);
    const r = await runSnapshot({ ...snap, asOf: 'latest' }, { ...deps(sqlite), lake: latestLake });
    const cutoff = (await defaultCutoff(sqlite, 48, 24)) as number;
    expect(r.manifest.cutoff).toBe(new Date(cutoff).toISOString());
    expect(r.manifest.asOf).toBe(new Date(cutoff + 72 * 3_600_000).toISOString());
    // The same as naming that time: one id.
    const named = await runSnapshot(
      { ...snap, asOf: cutoff + 72 * 3_600_000 },
      { ...deps(sqlite), lake: latestLake },
    );
    expect(named.id).toBe(r.id);
    const empty = await openWarehouse(`sqlite://${path.join(home, 'empty.db')}`);
    await expect(
      runSnapshot({ ...snap, asOf: 'latest' }, { ...deps(empty), lake: latestLake }),
    ).rejects.toThrow(/no churn data in the warehouse: ingest first/);
    await empty.destroy();
  });

  it('--snapshot-as-of names the snapshot of that time, made once and reused, whatever came later', async () => {
    const refLake = openObjectStore(`file://${path.join(home, 'lake-ref')}`);
    const ctx = {
      dataset: 'churn',
      lake: refLake,
      db: sqlite,
      log: silentLog,
      commit: null,
      horizonHours: 48,
      labelDelayHours: 24,
    };
    const first = (await snapshotFromFlags({ snapshotAsOf: '2026-11-09T00:00Z' }, ctx)) as SnapshotManifest;
    expect(first.asOf).toBe('2026-11-09T00:00:00.000Z');
    const again = (await snapshotFromFlags({ snapshotAsOf: '2026-11-09T00:00Z' }, ctx)) as SnapshotManifest;
    expect(again).toEqual(first);
    // Somebody takes a later snapshot: "latest" moves to it, the as-of still names the first.
    await runSnapshot({ ...snap, asOf: AS_OF + 24 * 3_600_000 }, { ...deps(sqlite), lake: refLake });
    expect((await snapshotFromFlags({ snapshot: 'latest' }, ctx))?.id).not.toBe(first.id);
    expect((await snapshotFromFlags({ snapshotAsOf: '2026-11-09T00:00Z' }, ctx))?.id).toBe(first.id);
    expect(await snapshotFromFlags({}, ctx)).toBeUndefined();
    await expect(snapshotFromFlags({ snapshot: 'latest', cutoff: '2026-11-09T00:00Z' }, ctx)).rejects.toThrow(
      /--snapshot and --cutoff: give one/,
    );
  });

  it('a run whose labels cannot train leaves no snapshot that `latest` (or replay) would pick', async () => {
    // The data ends on 11-09: as of 11-30 nobody is seen churning in the label window, 0 positives.
    const staleLake = openObjectStore(`file://${path.join(home, 'lake-stale')}`);
    const good = await runSnapshot(snap, { ...deps(sqlite), lake: staleLake });
    const late = Date.parse('2026-11-30T00:00:00Z');
    const refused = await runSnapshot({ ...snap, asOf: late }, { ...deps(sqlite), lake: staleLake }).then(
      () => undefined,
      (e: unknown) => e as { code: string; exitCode: number; message: string },
    );
    expect(refused?.code).toBe('DATA_MISSING');
    expect(refused?.message).toMatch(
      /^no churn snapshot as of 2026-11-30T00:00:00.000Z: \d+ rows, 0 positive labels \(cutoff 2026-11-27T00:00:00.000Z\)/,
    );
    expect((await listSnapshots(staleLake, 'churn')).map((s) => s.id)).toEqual([good.id]);
    expect((await resolveSnapshot(staleLake, 'churn', 'latest')).id).toBe(good.id);

    // A one-class snapshot an older version left behind, newer than the good one: `latest` and
    // replay pass over it, --list says why.
    const staleId = 'f'.repeat(64);
    const stale = { ...good.manifest, id: staleId, asOf: new Date(late).toISOString(), positives: 0 };
    await staleLake.put(`snapshots/churn/${staleId}/manifest.json`, JSON.stringify(stale));
    const listed = await listSnapshots(staleLake, 'churn');
    expect(listed.map((s) => [s.id, s.untrainable])).toEqual([
      [good.id, undefined],
      [staleId, `${good.manifest.rows} rows, 0 positive labels`],
    ]);
    expect((await resolveSnapshot(staleLake, 'churn', 'latest')).id).toBe(good.id);
    const replayed = await readReplayRows(staleLake, 'churn', 'latest');
    expect(replayed).toHaveLength(good.manifest.rows);
    // Named by id it is still readable: only `latest` passes over it.
    expect((await resolveSnapshot(staleLake, 'churn', staleId)).positives).toBe(0);
    const ctx = {
      dataset: 'churn',
      lake: staleLake,
      db: sqlite,
      log: silentLog,
      commit: null,
      horizonHours: 48,
      labelDelayHours: 24,
    };
    expect((await snapshotFromFlags({ snapshot: 'latest' }, ctx))?.id).toBe(good.id);

    const only = openObjectStore(`file://${path.join(home, 'lake-only-stale')}`);
    await only.put(`snapshots/churn/${staleId}/manifest.json`, JSON.stringify(stale));
    await expect(resolveSnapshot(only, 'churn', 'latest')).rejects.toThrow(
      `no snapshot of churn that can train: the newest, ${staleId} as of 2026-11-30T00:00:00.000Z, has ${good.manifest.rows} rows, 0 positive labels`,
    );
  });
});
