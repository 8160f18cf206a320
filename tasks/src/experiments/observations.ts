import { createReadStream, existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Knex } from 'knex';
import type { Contract } from '../contracts/types.js';
import { DriftwoodError } from '../errors.js';
import { tokenise } from '../pii.js';
import type { Observation } from './outcomes.js';

/** A customer's first served prediction in the experiment (later ones are the same unit again). */
export interface Exposure {
  token: string;
  variant: string;
  ts: number;
  probability: number;
  predicted: 0 | 1;
}

const HOUR = 3_600_000;

/** `[dataset=<name>/]dt=YYYY-MM-DD/hr=HH` of every hour in [from, to]. */
function partitions(from: number, to: number, prefix: string): string[] {
  const out: string[] = [];
  for (let t = Math.floor(from / HOUR) * HOUR; t <= to; t += HOUR) {
    const iso = new Date(t).toISOString();
    out.push(`${prefix}dt=${iso.slice(0, 10)}/hr=${iso.slice(11, 13)}`);
  }
  return out;
}

/**
 * Reads the prediction log from the experiment's start to `to` and keeps each customer's first
 * served prediction in it. The log is streamed line by line; a line is parsed only when it names
 * the experiment. `prefix` is `dataset=<name>/` for a dataset other than the API's default.
 */
export async function readExposures(opts: {
  dir: string;
  prefix: string;
  experiment: string;
  from: number;
  to: number;
}): Promise<Exposure[]> {
  const needle = `"experiment":${JSON.stringify(opts.experiment)}`;
  const first = new Map<string, Exposure>();
  for (const part of partitions(opts.from, opts.to, opts.prefix)) {
    const file = path.join(opts.dir, part, 'predictions.jsonl');
    if (!existsSync(file)) continue;
    const lines = createInterface({
      input: createReadStream(file, 'utf8'),
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    for await (const line of lines) {
      if (!line.includes(needle)) continue;
      let r: {
        ts?: string;
        served?: boolean;
        customer_token?: string | null;
        variant?: string;
        probability?: number;
        label?: number;
      };
      try {
        r = JSON.parse(line);
      } catch {
        continue; // a torn last line of a crashed writer
      }
      if (
        !r.served ||
        !r.customer_token ||
        typeof r.variant !== 'string' ||
        typeof r.probability !== 'number'
      )
        continue;
      const ts = Date.parse(r.ts ?? '');
      const seen = first.get(r.customer_token);
      if (seen && seen.ts <= ts) continue;
      first.set(r.customer_token, {
        token: r.customer_token,
        variant: r.variant,
        ts,
        probability: r.probability,
        predicted: r.label === 1 ? 1 : 0,
      });
    }
  }
  return [...first.values()];
}

/** The contract's label table: an event per id, when it happened and when it was reported. */
export interface LabelSource {
  table: string;
  idColumn: string;
  eventColumn: string;
  reportedColumn: string;
  horizonHours: number;
  labelDelayHours: number;
}

/** monitoring/evidently/contract.py `label_source`, for the TypeScript side. */
export function labelSource(contract: Contract): LabelSource {
  for (const table of contract.tables) {
    const target = table.columns.find((c) => c.role === 'target');
    if (!target) continue;
    const reported = table.columns.find((c) => c.role === 'timestamp' && c !== target);
    const horizon = contract.training?.horizon_hours;
    if (target.type !== 'timestamp' || !reported || horizon === undefined)
      throw new DriftwoodError(
        'CONFIG_INVALID',
        `dataset ${contract.dataset}: an experiment's outcomes need a label table whose target is an event time, with a reported-at timestamp and training.horizon_hours (table ${table.name})`,
      );
    return {
      table: table.name,
      idColumn: table.key,
      eventColumn: target.name,
      reportedColumn: reported.name,
      horizonHours: horizon,
      labelDelayHours: contract.training?.label_delay_hours ?? 0,
    };
  }
  throw new DriftwoodError(
    'CONFIG_INVALID',
    `dataset ${contract.dataset}: the contract has no target column`,
  );
}

export interface Labels {
  /** token → event time (ms). */
  eventAt: Map<string, number>;
  /** The newest report time: how far the label feed has come (undefined: no label yet). */
  watermark: number | undefined;
}

export async function readLabels(db: Knex, source: LabelSource, piiKey: string): Promise<Labels> {
  const rows: Record<string, unknown>[] = await db(source.table).select(
    source.idColumn,
    source.eventColumn,
    source.reportedColumn,
  );
  const eventAt = new Map<string, number>();
  let watermark: number | undefined;
  for (const r of rows) {
    eventAt.set(tokenise(String(r[source.idColumn]), piiKey), Number(r[source.eventColumn]));
    const reported = Number(r[source.reportedColumn]);
    if (watermark === undefined || reported > watermark) watermark = reported;
  }
  return { eventAt, watermark };
}

/**
 * The exposures whose outcome is known, with it: a prediction at `ts` is a positive when the
 * customer's event falls in [ts, ts + horizon), as in monitoring/evidently/quality.py. Only
 * predictions older than the watermark minus horizon and label delay count (their labels are all
 * in); a customer whose event came before the prediction is left out.
 */
export function joinOutcomes(
  exposures: readonly Exposure[],
  labels: Labels,
  source: LabelSource,
): Observation[] {
  if (labels.watermark === undefined) return [];
  const horizon = source.horizonHours * HOUR;
  const completeUntil = labels.watermark - horizon - source.labelDelayHours * HOUR;
  const out: Observation[] = [];
  for (const e of exposures) {
    if (e.ts > completeUntil) continue;
    const at = labels.eventAt.get(e.token);
    if (at !== undefined && at < e.ts) continue;
    const outcome = at !== undefined && at < e.ts + horizon ? 1 : 0;
    out.push({ variant: e.variant, probability: e.probability, predicted: e.predicted, outcome });
  }
  return out;
}
