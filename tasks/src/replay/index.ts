import { setTimeout as sleepFor } from 'node:timers/promises';
import { DriftwoodError } from '../errors.js';
import { type HttpOptions, httpRequest } from '../http.js';
import type { ObjectStore } from '../lake/object-store.js';
import type { Logger } from '../log.js';
import { parquetReadObjects } from '../parquet.js';
import { readSnapshotRows, resolveSnapshot } from '../snapshot/index.js';

export interface ReplayOptions {
  dataset: string;
  /** A snapshot id, `latest`, or the lake key of a `.parquet` / `.jsonl` file of feature rows. */
  from: string;
  /** The API's base URL, e.g. http://127.0.0.1:8080. */
  api: string;
  /** Rows per second at most; 0 sends as fast as the API answers. */
  rate: number;
  /** Rows per request: 1 uses `POST /v1/predict`, more `POST /v1/predict/batch`. */
  batchSize: number;
  /** Send at most this many rows (in file order). */
  limit?: number;
  /** Basic-auth user and password of a `predict` user. */
  auth?: { user: string; password: string };
}

export interface ReplayResult {
  dataset: string;
  from: string;
  rows: number;
  predicted: number;
  requests: number;
  /** Scored rows by the model version that answered. */
  versions: Record<string, number>;
  seconds: number;
}

export interface ReplayDeps {
  lake: ObjectStore;
  log: Logger;
  http: HttpOptions;
  now?: () => number;
  sleep?: (ms: number) => Promise<unknown>;
}

type Row = Record<string, unknown>;

/** Columns that travel with stored rows but are not request fields. */
const NOT_SENT = new Set(['label', 'churned', 'probability']);

const SNAPSHOT_REF = /^([0-9a-f]{64}|latest)$/;

/** The rows to send, as API requests: the customer id plus the raw feature fields. */
export async function readReplayRows(lake: ObjectStore, dataset: string, from: string): Promise<Row[]> {
  if (SNAPSHOT_REF.test(from)) {
    const manifest = await resolveSnapshot(lake, dataset, from);
    return (await readSnapshotRows(lake, manifest)).map((r) => ({
      customer_id: r.customerId,
      ...r.features,
    }));
  }
  const body = await lake.get(from).catch((err: unknown) => {
    throw new DriftwoodError(
      'DATA_MISSING',
      `--from: no object '${from}' in the lake (give a snapshot id, 'latest' or a lake key)`,
      {},
      { cause: err },
    );
  });
  let records: Row[];
  if (from.endsWith('.parquet')) {
    records = (await parquetReadObjects({
      file: body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer,
    })) as Row[];
  } else if (from.endsWith('.jsonl')) {
    records = body
      .toString('utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line, i) => {
        try {
          const value: unknown = JSON.parse(line);
          if (value === null || typeof value !== 'object' || Array.isArray(value))
            throw new Error('not an object');
          return value as Row;
        } catch (err) {
          throw new DriftwoodError(
            'SCHEMA_MISMATCH',
            `--from ${from}: line ${i + 1} is not a JSON object (${(err as Error).message})`,
          );
        }
      });
  } else {
    throw new DriftwoodError(
      'USAGE',
      `--from: expected a snapshot id, 'latest', or a .parquet/.jsonl key, got '${from}'`,
    );
  }
  return records.map((r) =>
    Object.fromEntries(
      Object.entries(r)
        .filter(([k]) => !NOT_SENT.has(k))
        .map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v]),
    ),
  );
}

/**
 * Sends stored feature rows through the running API as production traffic, paced to `rate` rows a
 * second, so that what the monitor reads is the API's own prediction log. A rejected row (4xx)
 * stops the replay with the API's message: silently skipping it would hide a contract mismatch.
 */
export async function runReplay(options: ReplayOptions, deps: ReplayDeps): Promise<ReplayResult> {
  if (!(options.batchSize >= 1))
    throw new DriftwoodError('USAGE', `--batch: expected 1 or more, got ${options.batchSize}`);
  if (!(options.rate >= 0))
    throw new DriftwoodError('USAGE', `--rate: expected rows per second >= 0, got ${options.rate}`);
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? sleepFor;
  const all = await readReplayRows(deps.lake, options.dataset, options.from);
  const rows = options.limit === undefined ? all : all.slice(0, options.limit);
  const base = options.api.replace(/\/+$/, '');
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.auth)
    headers.authorization = `Basic ${Buffer.from(`${options.auth.user}:${options.auth.password}`).toString('base64')}`;
  const started = now();
  const versions: Record<string, number> = {};
  let predicted = 0;
  let requests = 0;
  for (let i = 0; i < rows.length; i += options.batchSize) {
    const batch = rows.slice(i, i + options.batchSize);
    const single = options.batchSize === 1;
    const res = await httpRequest(
      {
        method: 'POST',
        url: `${base}/v1/predict${single ? '' : '/batch'}`,
        headers,
        body: JSON.stringify(single ? batch[0] : { rows: batch }),
        unreachableCode: 'HTTP_ERROR',
        unreachableHint: 'is the API running (driftwood serve)? check --api',
      },
      deps.http,
    );
    requests++;
    if (res.status === 401 || res.status === 403)
      throw new DriftwoodError(
        'CONFIG_INVALID',
        `replay: the API answered ${res.status}: set DRIFTWOOD_REPLAY_AUTH to user:password of a user with the predict role`,
      );
    if (res.status < 200 || res.status >= 300) {
      const reply = res.body.toString('utf8').slice(0, 300);
      throw new DriftwoodError(
        res.status >= 500 || res.status === 429 ? 'HTTP_ERROR' : 'SCHEMA_MISMATCH',
        `replay: the API answered ${res.status} for rows ${i + 1}-${i + batch.length} of ${options.from}: ${reply}`,
      );
    }
    const reply = JSON.parse(res.body.toString('utf8')) as
      | { model: { version: string } }
      | { predictions: { model: { version: string } }[] };
    for (const p of 'predictions' in reply ? reply.predictions : [reply]) {
      versions[p.model.version] = (versions[p.model.version] ?? 0) + 1;
      predicted++;
    }
    if (options.rate > 0) {
      // Paced against the start, not per batch, so slow answers do not lower the overall rate.
      const due = started + ((i + batch.length) / options.rate) * 1000;
      const wait = due - now();
      if (wait > 0) await sleep(wait);
    }
    if (requests % 50 === 0) deps.log.info({ sent: i + batch.length, total: rows.length }, 'replay: sending');
  }
  return {
    dataset: options.dataset,
    from: options.from,
    rows: rows.length,
    predicted,
    requests,
    versions,
    seconds: Math.round(now() - started) / 1000,
  };
}
