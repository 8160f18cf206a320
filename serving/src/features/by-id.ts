import {
  type Contract,
  DriftwoodError,
  type RawFeatures,
  type TabularProfile,
  tabularProfile,
  type Warehouse,
} from '@driftwood/tasks';
import type { FastifyBaseLogger } from 'fastify';
import { Histogram, type Registry } from 'prom-client';

/**
 * Scoring by id: a customer's features computed as of now from the warehouse by the dataset's own
 * builder (`TabularProfile.rowOf`: the point-in-time statement training runs, filtered to the id),
 * kept a short while per id so a client that asks again does not query again.
 */
export interface FeatureStoreOptions {
  /** The warehouse (DRIFTWOOD_WAREHOUSE_URL), opened on first use; a failure answers 503 naming it. */
  warehouse: () => Promise<Warehouse>;
  /** A served dataset's contract: its builder computes the features. */
  contract: (dataset: string) => Promise<Contract>;
  /** How long an id's features are kept (ms); 0 never keeps them. 60 s by default. */
  ttlMs?: number;
  /** Ids kept at most per dataset and process; the oldest go first. 100,000 by default. */
  maxEntries?: number;
  /** What "now" is (epoch ms): the features' as-of time. */
  now?: () => number;
}

/** The warehouse or the dataset's contract is missing or does not answer: 503, naming the setting. */
export class FeatureStoreUnavailable extends Error {}

/** An id's features and the time they are as of. */
export interface FoundFeatures {
  features: RawFeatures;
  asOf: number;
}

/**
 * A map whose entries expire `ttlMs` after they were set and which keeps at most `maxEntries`
 * (dropping the oldest set first: a Map iterates in insertion order, and a re-set moves to the end).
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {}

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (this.now() < e.expires) return e.value;
    this.entries.delete(key);
    return undefined;
  }

  set(key: string, value: V): void {
    if (this.ttlMs <= 0) return;
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expires: this.now() + this.ttlMs });
  }

  get size(): number {
    return this.entries.size;
  }
}

type Outcome = 'hit' | 'miss' | 'not_found' | 'error';

/** `driftwood_feature_lookup_seconds`: one per app, on its registry. */
export function featureLookupHistogram(registry: Registry): Histogram<'dataset' | 'result'> {
  return new Histogram({
    name: 'driftwood_feature_lookup_seconds',
    help: "Time to find one id's features for POST /v1/predict/by-id, by dataset and result (hit: from the cache; miss: computed in the warehouse; not_found; error)",
    labelNames: ['dataset', 'result'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
}

/** One dataset's lookups: cached per id, and concurrent requests for one id share one query. */
export class FeatureLookup {
  /** The clock the features' as-of time is read from. */
  readonly now: () => number;
  private readonly cache: TtlCache<FoundFeatures>;
  private readonly pending = new Map<string, Promise<FoundFeatures | undefined>>();
  private ready: Promise<{ db: Warehouse; profile: TabularProfile }> | undefined;

  constructor(
    readonly dataset: string,
    private readonly store: FeatureStoreOptions,
    private readonly histogram: Histogram<'dataset' | 'result'>,
    private readonly log: FastifyBaseLogger,
  ) {
    this.now = store.now ?? Date.now;
    this.cache = new TtlCache(store.ttlMs ?? 60_000, store.maxEntries ?? 100_000, this.now);
  }

  /** The id's features as of now (or as of when they were kept), undefined when it has no row. */
  async features(id: string): Promise<FoundFeatures | undefined> {
    const t0 = performance.now();
    let outcome: Outcome = 'error';
    try {
      const kept = this.cache.get(id);
      if (kept) {
        outcome = 'hit';
        return kept;
      }
      let query = this.pending.get(id);
      if (!query) {
        query = this.compute(id).finally(() => this.pending.delete(id));
        this.pending.set(id, query);
      }
      const found = await query;
      outcome = found ? 'miss' : 'not_found';
      return found;
    } finally {
      this.histogram.observe({ dataset: this.dataset, result: outcome }, (performance.now() - t0) / 1000);
    }
  }

  private async compute(id: string): Promise<FoundFeatures | undefined> {
    const { db, profile } = await this.open();
    const asOf = this.now();
    let features: RawFeatures | undefined;
    try {
      features = await profile.rowOf(db, asOf, id);
    } catch (err) {
      // Logged with the dataset only: the id is a customer's and stays out of the log.
      this.log.error({ err, dataset: this.dataset }, 'scoring by id: the warehouse query failed');
      throw new FeatureStoreUnavailable(
        `the warehouse (DRIFTWOOD_WAREHOUSE_URL) did not answer for dataset ${this.dataset}; the error is logged`,
      );
    }
    if (!features) return undefined;
    const found = { features, asOf };
    this.cache.set(id, found);
    return found;
  }

  /** The warehouse and the dataset's profile, once they are there; a failure is tried again next time. */
  private open(): Promise<{ db: Warehouse; profile: TabularProfile }> {
    this.ready ??= this.connect().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  private async connect(): Promise<{ db: Warehouse; profile: TabularProfile }> {
    let contract: Contract;
    try {
      contract = await this.store.contract(this.dataset);
    } catch (err) {
      throw new FeatureStoreUnavailable(
        `dataset ${this.dataset} has no readable contract (DRIFTWOOD_CONTRACTS_DIR): its builder computes the features of an id (${messageOf(err)})`,
      );
    }
    let profile: TabularProfile;
    try {
      profile = tabularProfile(contract);
    } catch (err) {
      throw new FeatureStoreUnavailable(`dataset ${this.dataset} cannot be scored by id: ${messageOf(err)}`);
    }
    let db: Warehouse;
    try {
      db = await this.store.warehouse();
    } catch (err) {
      if (!(err instanceof DriftwoodError))
        this.log.error({ err }, 'scoring by id: the warehouse did not open');
      throw new FeatureStoreUnavailable(
        err instanceof DriftwoodError
          ? err.message
          : 'setting DRIFTWOOD_WAREHOUSE_URL: the warehouse did not open; the error is logged',
      );
    }
    // Read, never made: an API that made empty tables would answer "unknown id" for a warehouse
    // it was wrongly pointed at.
    for (const table of contract.tables)
      if (!(await db.schema.hasTable(table.name)))
        throw new FeatureStoreUnavailable(
          `the warehouse (DRIFTWOOD_WAREHOUSE_URL) has no table ${table.name} of dataset ${this.dataset}: ingest into it, or point the setting at the warehouse training reads`,
        );
    return { db, profile };
  }
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** One lookup per served dataset, sharing one histogram; undefined without a feature store. */
export function featureLookups(
  store: FeatureStoreOptions | undefined,
  datasets: readonly string[],
  registry: Registry,
  log: FastifyBaseLogger,
): Map<string, FeatureLookup> {
  const lookups = new Map<string, FeatureLookup>();
  if (!store) return lookups;
  const histogram = featureLookupHistogram(registry);
  for (const d of datasets) lookups.set(d, new FeatureLookup(d, store, histogram, log));
  return lookups;
}
