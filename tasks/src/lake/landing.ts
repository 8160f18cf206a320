import { AirflowClient } from '../airflow/client.js';
import type { Config } from '../config.js';
import { isDriftwoodError } from '../errors.js';
import type { Logger } from '../log.js';
import { HOUR_MS, hourOfKey, partitionOf } from '../time.js';
import type { ObjectInfo, ObjectStore } from './types.js';

/** The hour partition a landing reaches: the newest `dt=…/hr=…` among the files it wrote. */
export interface LandedPartition {
  /** `dt=YYYY-MM-DD/hr=HH` */
  partition: string;
  /**
   * The end of that hour (`2026-11-15T06:00:00+00:00`, as Airflow writes times): the as-of a run started by the landing loads and trains
   * up to (`ingest --until` loads every hour before it, the partition's hour included).
   */
  asOf: string;
}

/** What a landing told Airflow: the event it recorded, or why there is none (the files are landed either way). */
export type LandingEvent =
  | ({ posted: true; asset: string; eventId: number } & LandedPartition)
  | ({ posted: false; asset: string; reason: string } & Partial<LandedPartition>);

/** The asset a dataset's pipeline DAG is scheduled on (dags/driftwood_dags.py `raw_asset`). */
export function rawAssetUri(dataset: string): string {
  return `driftwood://${dataset}/raw`;
}

/** The newest hour partition among lake keys; undefined when none is under a `dt=…/hr=…` folder. Pure. */
export function newestPartition(keys: Iterable<string>): LandedPartition | undefined {
  let newest: number | undefined;
  for (const key of keys) {
    const hour = hourOfKey(key);
    if (hour !== undefined && (newest === undefined || hour > newest)) newest = hour;
  }
  if (newest === undefined) return undefined;
  return {
    partition: partitionOf(newest),
    asOf: new Date(newest + HOUR_MS).toISOString().replace('.000Z', '+00:00'),
  };
}

/**
 * The asset event's `extra`: the pipeline's templates read `driftwood_as_of` (dags/driftwood_steps.py
 * `RUN_END`), the rest is for people reading the event in Airflow's UI.
 */
export function landingExtra(
  dataset: string,
  landed: LandedPartition,
  files: number,
  source: string,
): Record<string, unknown> {
  return {
    dataset,
    driftwood_partition: landed.partition,
    driftwood_as_of: landed.asOf,
    files,
    source,
  };
}

export interface LanderDeps {
  lake: ObjectStore;
  log: Logger;
  /** Airflow to tell (DRIFTWOOD_AIRFLOW_URL); none: files land, no event is posted. */
  airflow?: AirflowClient | undefined;
}

/**
 * The Airflow a lander tells, from the settings the API's train trigger uses too
 * (DRIFTWOOD_AIRFLOW_URL, DRIFTWOOD_AIRFLOW_USER, DRIFTWOOD_AIRFLOW_PASSWORD[_FILE]); undefined when unset.
 */
export function landingAirflow(config: Pick<Config, 'serving' | 'http'>): AirflowClient | undefined {
  const conn = config.serving.airflow;
  return conn ? new AirflowClient({ ...conn, http: config.http }) : undefined;
}

/**
 * Writes a dataset's raw files into the lake and, once the batch is in, posts one event of the
 * dataset's raw asset carrying the newest partition, so the pipeline DAG starts at once and loads
 * up to that partition. Files with the bytes the lake already holds are left as they are (their
 * etags stay, ingest sees nothing new) and do not count as landed. Airflow being away never fails
 * a landing: the files are in the lake, the hourly schedule still picks them up, and the result
 * says so.
 */
export class RawLander {
  private readonly landedKeys: string[] = [];
  unchanged = 0;

  constructor(
    private readonly dataset: string,
    private readonly source: string,
    private readonly deps: LanderDeps,
  ) {}

  /** Writes one file unless the lake already holds these bytes; true when it was written. */
  async land(key: string, body: Buffer | string): Promise<boolean> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    const existing = await this.deps.lake.get(key).catch(() => undefined);
    if (existing?.equals(bytes)) {
      this.unchanged++;
      return false;
    }
    const info: ObjectInfo = await this.deps.lake.put(key, bytes);
    this.landedKeys.push(info.key);
    return true;
  }

  get landed(): readonly string[] {
    return this.landedKeys;
  }

  /** Posts the landing's event (once per batch); never throws for Airflow's sake. */
  async announce(): Promise<LandingEvent> {
    const asset = rawAssetUri(this.dataset);
    const landed = newestPartition(this.landedKeys);
    const { log, airflow } = this.deps;
    if (landed === undefined) {
      log.info({ dataset: this.dataset }, 'landing: no new files, no asset event');
      return { posted: false, asset, reason: 'no new files landed' };
    }
    if (airflow === undefined) {
      log.info(
        { dataset: this.dataset, ...landed },
        `landing: files landed; no asset event (DRIFTWOOD_AIRFLOW_URL unset): the pipeline picks them up on its schedule`,
      );
      return { posted: false, asset, reason: 'DRIFTWOOD_AIRFLOW_URL unset', ...landed };
    }
    const extra = landingExtra(this.dataset, landed, this.landedKeys.length, this.source);
    try {
      const event = await airflow.postAssetEvent(asset, extra);
      log.info({ dataset: this.dataset, ...landed, eventId: event.id, asset }, 'landing: asset event posted');
      return { posted: true, asset, eventId: event.id, ...landed };
    } catch (err) {
      if (!isDriftwoodError(err)) throw err;
      log.warn(
        { dataset: this.dataset, ...landed, asset, err: err.message },
        `landing: files landed, but Airflow did not record the asset event: the pipeline picks them up on its schedule`,
      );
      return { posted: false, asset, reason: err.message, ...landed };
    }
  }
}
