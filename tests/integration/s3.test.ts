import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { buildChurnRows, type ObjectStore, openObjectStore, openWarehouse } from '@driftwood/tasks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIngest } from '../../tasks/src/ingest/index.js';
import { runSimulate } from '../../tasks/src/simulate/index.js';
import { ROOT, runCli, silentLog, tempHome } from '../support/env.js';

// A real S3 API: moto's server (PyPI, installed in .venvs/tools by make install) on loopback.
const PORT = Number(process.env.DRIFTWOOD_TEST_MOTO_PORT ?? 7300);
const ENDPOINT = `http://127.0.0.1:${PORT}`;
const CREDS = { accessKeyId: 'testing', secretAccessKey: 'testing' };
const settings = { endpoint: ENDPOINT, region: 'us-east-1', forcePathStyle: true, credentials: CREDS };

describe('the lake on S3 (moto server)', () => {
  let moto: ChildProcess;
  let lake: ObjectStore;

  beforeAll(async () => {
    moto = spawn(
      path.join(ROOT, '.venvs', 'tools', 'bin', 'moto_server'),
      ['-H', '127.0.0.1', '-p', String(PORT)],
      {
        stdio: 'ignore',
      },
    );
    for (let i = 0; ; i++) {
      try {
        const res = await fetch(`${ENDPOINT}/moto-api/`);
        if (res.ok) break;
      } catch {
        if (i > 100) throw new Error(`moto server did not start on ${ENDPOINT}`);
      }
      await sleep(200);
    }
    const s3 = new S3Client(settings);
    await s3.send(new CreateBucketCommand({ Bucket: 'driftwood-lake' }));
    s3.destroy();
    lake = openObjectStore('s3://driftwood-lake/team-a', settings);
  });
  afterAll(() => {
    moto?.kill('SIGTERM');
  });

  it('puts, gets, streams, reads ranges and lists by prefix, with etags', async () => {
    const a = await lake.put('raw/x/dt=2026-11-01/hr=00/a.csv', 'h\n1\n');
    await lake.put('raw/x/dt=2026-11-01/hr=01/b.csv', 'h\n2\n');
    await lake.put('other/c.csv', 'h\n3\n');
    expect(a.etag).toBe(createHash('md5').update('h\n1\n').digest('hex'));
    expect((await lake.get('raw/x/dt=2026-11-01/hr=00/a.csv')).toString()).toBe('h\n1\n');
    expect((await lake.getRange('raw/x/dt=2026-11-01/hr=00/a.csv', 2, 4)).toString()).toBe('1\n');
    const listed = await lake.list('raw/x/');
    expect(listed.map((o) => [o.key, o.size])).toEqual([
      ['raw/x/dt=2026-11-01/hr=00/a.csv', 4],
      ['raw/x/dt=2026-11-01/hr=01/b.csv', 4],
    ]);
    expect(listed[0]?.etag).toBe(a.etag);
    expect(await lake.head('raw/x/nope.csv')).toBeUndefined();
    expect(await lake.exists('other/c.csv')).toBe(true);
    let streamed = '';
    for await (const c of lake.stream('other/c.csv')) streamed += c;
    expect(streamed).toBe('h\n3\n');
    await expect(lake.get('raw/x/missing.csv')).rejects.toThrow(
      /S3 get s3:\/\/driftwood-lake\/raw\/x\/missing.csv failed: NoSuchKey/,
    );
  });

  it('streams a 20 MiB body up as a multipart upload and back byte for byte', async () => {
    const chunk = Buffer.alloc(1024 * 1024);
    let n = 0;
    const body = Readable.from(
      (function* () {
        for (let i = 0; i < 20; i++) {
          chunk.fill(i);
          n += chunk.length;
          yield Buffer.from(chunk);
        }
      })(),
    );
    const info = await lake.putStream('big/blob.bin', body);
    expect(info.size).toBe(20 * 1024 * 1024);
    expect(n).toBe(info.size);
    // A multipart etag is "<md5 of part md5s>-<parts>": proof it went up in parts (8 MiB each).
    expect(info.etag).toMatch(/^[0-9a-f]{32}-3$/);
    const back = await lake.getRange('big/blob.bin', 9 * 1024 * 1024, 9 * 1024 * 1024 + 4);
    expect([...back]).toEqual([9, 9, 9, 9]);
    expect((await lake.head('big/blob.bin'))?.size).toBe(info.size);
  });

  it('ingests from the S3 lake exactly once, in process and through the CLI', async () => {
    const simLake = openObjectStore('s3://driftwood-lake/sim', settings);
    await runSimulate(
      {
        dataset: 'churn',
        start: Date.parse('2026-11-01T00:00:00Z'),
        hours: 6,
        seed: 3,
        entities: 80,
        labelDelayHours: 1,
      },
      { lake: simLake, log: silentLog },
    );
    const home = tempHome('driftwood-s3-');
    const db = await openWarehouse(`sqlite://${path.join(home, 'w.db')}`);
    try {
      const opts = { dataset: 'churn', piiKey: 'test-key-0123456789abcdef', now: Date.now };
      const first = await runIngest(opts, { lake: simLake, db, log: silentLog });
      expect(first.loaded).toBe(first.objectsSeen);
      expect(first.rowsLoaded).toBe(first.rowsRead);
      const ledger = await db('ingest_ledger').first('etag');
      expect(ledger.etag).toMatch(/^[0-9a-f]{32}$/);
      expect(await runIngest(opts, { lake: simLake, db, log: silentLog })).toMatchObject({
        loaded: 0,
        rowsRead: 0,
      });
      expect(await simLake.exists(first.reportKey)).toBe(true);
    } finally {
      await db.destroy();
    }
    const env = {
      DRIFTWOOD_HOME: path.join(home, 'cli'),
      DRIFTWOOD_LAKE_URI: 's3://driftwood-lake/sim',
      DRIFTWOOD_S3_ENDPOINT: ENDPOINT,
      DRIFTWOOD_S3_REGION: 'us-east-1',
      DRIFTWOOD_S3_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      DRIFTWOOD_WAREHOUSE_URL: `sqlite://${path.join(home, 'cli.db')}`,
      DRIFTWOOD_PII_KEY: 'test-key-0123456789abcdef',
    };
    const cli = await runCli(['ingest', '--dataset', 'churn', '--until', '2026-11-01T03:00Z'], env);
    expect(cli.code, cli.stderr).toBe(0);
    const out = JSON.parse(cli.stdout);
    expect(out.loaded).toBeGreaterThan(0);
    expect(out.objectsSeen).toBeGreaterThan(out.loaded);
    const bad = await runCli(['ingest', '--dataset', 'churn'], { ...env, DRIFTWOOD_S3_PATH_STYLE: 'yes' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/setting DRIFTWOOD_S3_PATH_STYLE: expected true or false, got 'yes'/);
  });

  it("builds the DuckDB engine's rows from Parquet files in the S3 lake, the same as the warehouse's", async () => {
    const lakeOfRun = openObjectStore('s3://driftwood-lake/duck', settings);
    await runSimulate(
      { dataset: 'churn', start: Date.parse('2026-11-01T00:00:00Z'), hours: 30, seed: 5, entities: 120 },
      { lake: lakeOfRun, log: silentLog },
    );
    const home = tempHome('driftwood-s3-duck-');
    const db = await openWarehouse(`sqlite://${path.join(home, 'w.db')}`, {
      featureEngine: 'duckdb',
      lake: lakeOfRun,
    });
    try {
      const opts = { dataset: 'churn', piiKey: 'test-key-0123456789abcdef', now: Date.now };
      await runIngest(opts, { lake: lakeOfRun, db, log: silentLog });
      // Ingest kept a file per loaded events object (one an hour); the build copies every one out of S3.
      const events = await lakeOfRun.list('columnar/churn/events/');
      expect(events.length).toBe(30);
      const cutoff = Date.parse('2026-11-02T06:00:00Z');
      const inWarehouse = await buildChurnRows(db, cutoff, 48, { engine: 'warehouse' });
      expect(inWarehouse.length).toBeGreaterThan(50);
      expect(await buildChurnRows(db, cutoff, 48, { engine: 'duckdb' })).toEqual(inWarehouse);
    } finally {
      await db.destroy();
    }
  });
});
