import { createHash } from 'node:crypto';
import { DriftwoodError } from '../errors.js';
import type { HttpOptions } from '../http.js';
import type { ObjectStore } from '../lake/object-store.js';
import type { Logger } from '../log.js';
import { partitionOf } from '../time.js';
import {
  type Candle,
  candleCsv,
  type MalformedCandle,
  PayloadError,
  parseCandles,
  type SourceMapping,
} from './candles.js';
import { fetchPayload, type Payload } from './fetch.js';
import { type CandleCheck, type CandleRule, isoHour as iso, validateCandles } from './validate.js';

export {
  type Candle,
  candleCsv,
  epochMs,
  formatOf,
  parseCandles,
  type SourceMapping,
} from './candles.js';
export { candleUrl } from './fetch.js';
export { type CandleCheck, type CandlePolicy, type CandleRule, validateCandles } from './validate.js';

/** The file of one hour's candle inside its partition, as the dataset contract names it. */
export const CANDLE_FILE = 'candles.csv';

export interface ExtractOptions {
  dataset: string;
  /** An http(s) URL of the price source, or the key of a file dropped in the lake (outside raw/). */
  source: string;
  interval: { start: number; end: number };
  zeroVolume: 'keep' | 'drop';
  /** The source's names for the candle columns and its time unit (the contract's `source` section). */
  mapping?: SourceMapping;
  now: () => number;
}

type QuarantineRule = CandleRule | 'malformed' | PayloadError['rule'];

export interface ExtractResult {
  dataset: string;
  source: { kind: 'http' | 'lake'; location: string; format: string; bytes: number; sha256: string };
  interval: { start: string; end: string; hours: number };
  candles: {
    fetched: number;
    landed: number;
    quarantined: number;
    identicalDuplicates: number;
    outsideInterval: number;
  };
  quarantinedByRule: Partial<Record<QuarantineRule, number>>;
  /** Kept but worth a look: hours whose candle has zero volume. */
  anomalies: { zero_volume: string[] };
  /** Hours of the interval without a candle: the source did not have them, or they were quarantined. */
  gaps: string[];
  /** Partition files: new, already there with the same bytes, or rewritten with the source's revised candle. */
  files: { written: number; unchanged: number; replaced: number; keys: string[] };
  quarantineKey: string | null;
  reportKey: string;
  durationMs: number;
}

/** An interval as a key segment: `2026-11-20T04-00-00Z_2026-11-20T05-00-00Z`. */
const intervalTag = (i: { start: number; end: number }): string =>
  `${iso(i.start)}_${iso(i.end)}`.replace(/:/g, '-');

/**
 * The extraction step of a price dataset: fetches the OHLCV candles of an interval (or reads a file
 * dropped in the lake), validates them (validateCandles), quarantines what fails with a reason file,
 * and lands one `raw/<dataset>/dt=…/hr=…/candles.csv` per hour for ingest to load. Idempotent: the
 * same candles give the same bytes, and an object already holding them is not rewritten, so its
 * etag stays and ingest skips it. Gaps are reported, never filled.
 */
export async function runExtract(
  options: ExtractOptions,
  deps: { lake: ObjectStore; log: Logger; http: HttpOptions },
): Promise<ExtractResult> {
  const t0 = performance.now();
  if (!/^[a-z][a-z0-9_]*$/.test(options.dataset))
    throw new DriftwoodError('USAGE', `--dataset: expected a lower-case name, got '${options.dataset}'`);
  if (options.source.trim() === '')
    throw new DriftwoodError(
      'USAGE',
      `--source is empty: give an http(s) URL or a lake key (the dataset's DAG reads it from the Airflow Variable driftwood_${options.dataset}_source)`,
    );
  const payload = await fetchPayload(options.source, options.interval, deps);
  const sha256 = createHash('sha256').update(payload.body).digest('hex');
  const tag = intervalTag(options.interval);
  const hours = Math.ceil((options.interval.end - options.interval.start) / 3_600_000);
  const result: ExtractResult = {
    dataset: options.dataset,
    source: {
      kind: payload.kind,
      location: payload.location,
      format: payload.format,
      bytes: payload.body.length,
      sha256,
    },
    interval: { start: iso(options.interval.start), end: iso(options.interval.end), hours },
    candles: { fetched: 0, landed: 0, quarantined: 0, identicalDuplicates: 0, outsideInterval: 0 },
    quarantinedByRule: {},
    anomalies: { zero_volume: [] },
    gaps: [],
    files: { written: 0, unchanged: 0, replaced: 0, keys: [] },
    quarantineKey: null,
    reportKey: `reports/extract/${options.dataset}/${new Date(options.now()).toISOString().replace(/[:.]/g, '-')}.json`,
    durationMs: 0,
  };

  let parsed: Awaited<ReturnType<typeof parseCandles>>;
  try {
    parsed = await parseCandles(payload.body, payload.format, options.mapping);
  } catch (err) {
    if (!(err instanceof PayloadError)) throw err;
    result.quarantineKey = await quarantinePayload(deps.lake, options.dataset, tag, payload, sha256, err);
    result.quarantinedByRule = { [err.rule]: 1 };
    result.gaps = allHours(options.interval).map(iso);
    await finish(result, t0, deps.lake);
    throw new DriftwoodError(
      'SCHEMA_MISMATCH',
      `price source ${payload.location}: ${err.message} (quarantined as ${result.quarantineKey})`,
      { result },
    );
  }

  const check = validateCandles(parsed.candles, options);
  result.candles = {
    fetched: parsed.candles.length + parsed.malformed.length,
    landed: check.kept.length,
    quarantined: check.rejected.length + parsed.malformed.length,
    identicalDuplicates: check.identicalDuplicates.length,
    outsideInterval: check.outsideInterval.length,
  };
  if (parsed.malformed.length > 0) result.quarantinedByRule.malformed = parsed.malformed.length;
  for (const r of check.rejected)
    result.quarantinedByRule[r.rule] = (result.quarantinedByRule[r.rule] ?? 0) + 1;
  result.anomalies.zero_volume = check.zeroVolumeHours.map(iso);
  result.gaps = check.gaps.map(iso);

  if (result.candles.quarantined > 0)
    result.quarantineKey = await quarantineRows(
      deps.lake,
      options.dataset,
      tag,
      payload,
      sha256,
      check,
      parsed.malformed,
      result.candles.fetched,
    );
  for (const candle of check.kept) {
    const { key, status } = await land(deps.lake, options.dataset, candle);
    result.files[status]++;
    result.files.keys.push(key);
  }

  if (result.quarantineKey)
    deps.log.warn(
      { quarantined: result.quarantinedByRule, key: result.quarantineKey },
      'extract: candles quarantined',
    );
  if (result.gaps.length > 0)
    deps.log.warn({ gaps: result.gaps.length, first: result.gaps[0] }, 'extract: hours without a candle');
  if (result.files.replaced > 0)
    deps.log.warn({ replaced: result.files.replaced }, 'extract: the source revised candles already landed');
  await finish(result, t0, deps.lake);
  return result;
}

function allHours(interval: { start: number; end: number }): number[] {
  return validateCandles([], { interval, zeroVolume: 'keep' }).gaps;
}

async function finish(result: ExtractResult, t0: number, lake: ObjectStore): Promise<void> {
  result.durationMs = Math.round(performance.now() - t0);
  await lake.put(result.reportKey, `${JSON.stringify(result, null, 2)}\n`);
}

/** Writes an hour's partition file unless it already holds exactly these bytes. */
async function land(
  lake: ObjectStore,
  dataset: string,
  candle: Candle,
): Promise<{ key: string; status: 'written' | 'unchanged' | 'replaced' }> {
  const key = `raw/${dataset}/${partitionOf(candle.openTime)}/${CANDLE_FILE}`;
  const body = Buffer.from(candleCsv(candle));
  const existing = await lake.head(key);
  if (existing && existing.size === body.length && (await lake.get(key)).equals(body))
    return { key, status: 'unchanged' };
  await lake.put(key, body);
  return { key, status: existing ? 'replaced' : 'written' };
}

const quarantinePrefix = (dataset: string, tag: string) => `quarantine/${dataset}/extract/${tag}`;

/** The rejected records as JSON Lines, with a reason file in ingest's format (one problem per record). */
async function quarantineRows(
  lake: ObjectStore,
  dataset: string,
  tag: string,
  payload: Payload,
  sha256: string,
  check: CandleCheck,
  malformed: readonly MalformedCandle[],
  fetched: number,
): Promise<string> {
  const key = `${quarantinePrefix(dataset, tag)}/candles.jsonl`;
  const records = [
    ...malformed.map((m) => ({
      row: m.row,
      problem: {
        row: m.row,
        column: m.column,
        value: m.value,
        rule: 'malformed',
        action: 'dropped_row',
        detail: m.detail,
      },
      record: m.raw,
    })),
    ...check.rejected.map((r) => ({
      row: r.candle.row,
      problem: {
        row: r.candle.row,
        column: r.column,
        value: r.column === 'open_time' ? iso(r.candle.openTime) : r.candle[r.column],
        rule: r.rule,
        action: 'dropped_row',
        detail: r.detail,
      },
      record: {
        open_time: iso(r.candle.openTime),
        open: r.candle.open,
        high: r.candle.high,
        low: r.candle.low,
        close: r.candle.close,
        volume: r.candle.volume,
      },
    })),
  ].sort((a, b) => a.row - b.row);
  await lake.put(
    key,
    records.map((r) => `${JSON.stringify({ row: r.row, ...asObject(r.record) })}\n`).join(''),
  );
  await lake.put(
    `${key}.reason.json`,
    `${JSON.stringify(
      {
        source: payload.location,
        sha256,
        file_status: 'landed',
        rows: {
          read: fetched,
          landed: check.kept.length,
          quarantined: records.length,
          identical_duplicates: check.identicalDuplicates.length,
          outside_interval: check.outsideInterval.length,
        },
        problems: records.map((r) => r.problem),
      },
      null,
      2,
    )}\n`,
  );
  return key;
}

/** A payload that does not read as candles at all: kept whole, with the reason. */
async function quarantinePayload(
  lake: ObjectStore,
  dataset: string,
  tag: string,
  payload: Payload,
  sha256: string,
  err: PayloadError,
): Promise<string> {
  const key = `${quarantinePrefix(dataset, tag)}/payload.${payload.format}`;
  await lake.put(key, payload.body);
  await lake.put(
    `${key}.reason.json`,
    `${JSON.stringify(
      {
        source: payload.location,
        sha256,
        file_status: 'quarantined',
        rule: err.rule,
        reason: err.message,
        problems: [
          {
            row: null,
            column: null,
            value: null,
            rule: err.rule,
            action: 'quarantined_file',
            detail: err.message,
          },
        ],
      },
      null,
      2,
    )}\n`,
  );
  return key;
}

const asObject = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : { value: v };
