import cluster from 'node:cluster';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Config, Logger } from '@driftwood/tasks';
import {
  type Candle,
  DriftwoodError,
  loadContract,
  loadLatestCandles,
  MlflowClient,
  openWarehouse,
  type Warehouse,
} from '@driftwood/tasks';
import { buildApp } from './app.js';
import { parseCredentials } from './auth/credentials.js';
import { runPrimary, workerLink } from './cluster.js';
import { readCatalog } from './datasets/read-catalog.js';

/**
 * Starts the API and closes it with grace on SIGTERM/SIGINT (stop accepting, finish in-flight).
 * With `DRIFTWOOD_API_WORKERS` above 1 this process becomes the primary of that many API processes
 * sharing the port (`cluster.ts`), each of which runs this function again as a worker.
 */
export async function startServer(
  config: Config,
  log: Logger,
): Promise<{ url: string; close: () => Promise<void> }> {
  const s = config.serving;
  const credentials = s.credentials === undefined ? undefined : parseCredentials(s.credentials);
  // Said once: by the single process, or by the primary of several.
  if (!credentials && !s.jwt && !cluster.isWorker)
    log.warn(
      s.openAccess
        ? 'serve: DRIFTWOOD_API_AUTH=none and no credentials: every route is open to anyone (fine only on a laptop)'
        : 'serve: neither DRIFTWOOD_API_CREDENTIALS nor DRIFTWOOD_API_JWT_ISSUER is set, so every route but health answers 401 (DRIFTWOOD_API_AUTH=none opens them)',
    );
  if (s.workers > 1 && cluster.isPrimary) return runPrimary({ workers: s.workers, log });
  const peers = cluster.isWorker ? workerLink() : undefined;
  // The warehouse is opened on the first forecast that needs its candles, not at start.
  const warehouses: { db: Promise<Warehouse> | undefined } = { db: undefined };
  const catalog = await readCatalog(config);
  if (!cluster.isWorker)
    log.info(
      {
        datasets: catalog.datasets.map((d) => `${d.dataset} (${d.kind}: ${d.modelName})`),
        default: catalog.defaultDataset,
      },
      'serve: datasets',
    );
  if (catalog.noDefault && !cluster.isWorker)
    log.warn({ reason: catalog.noDefault }, 'serve: /v1/predict has no dataset');
  const defaultModel = catalog.datasets.find((d) => d.dataset === catalog.defaultDataset)?.modelName;
  const forecasts = catalog.datasets.some((d) => d.kind === 'forecast');
  const app = await buildApp({
    mlflow: new MlflowClient(config.mlflow.trackingUri, config.http),
    modelName: defaultModel ?? config.mlflow.modelName ?? '',
    datasets: catalog.datasets,
    defaultDataset: catalog.defaultDataset,
    noDefault: catalog.noDefault,
    alias: 'champion',
    logger: log,
    bodyLimit: s.bodyLimitBytes,
    maxBatchRows: s.maxBatchRows,
    credentials,
    openAccess: s.openAccess,
    // A client starved by a loaded machine can be silent for seconds between two requests: the
    // longer a connection must be silent before it is ended, the less likely its next request
    // crosses the FIN. 5 s, then 1 s for the client's close, stays inside the 10 s exit deadline.
    shutdownIdleMs: 5_000,
    jwt: s.jwt ? { issuer: s.jwt.issuer, jwksUrl: s.jwt.jwksUrl, audience: s.jwt.audience } : undefined,
    metricsAuth: s.metricsAuth,
    rateLimitPerMinute: s.rateLimitPerMinute,
    maxInFlight: s.maxInFlight,
    maxFailedLogins: s.maxFailedLogins,
    peers,
    pressure: { maxEventLoopDelayMs: 1000, retryAfterSeconds: 10 },
    pollMs: s.pollMs,
    challenger: { alias: 'challenger', mode: s.challengerMode, canaryPercent: s.canaryPercent },
    predictionLog: { dir: path.join(config.home, 'predictions'), piiKey: config.piiKey },
    webhookSecret: s.webhookSecret,
    airflow: s.airflow ? { ...s.airflow, http: config.http } : undefined,
    dashboard: s.dashboard && { ...s.dashboard, http: config.http },
    defaultMetrics: true,
    featureStore: {
      warehouse: () => {
        warehouses.db ??= openExistingWarehouse(config.warehouseUrl).catch((err: unknown) => {
          warehouses.db = undefined;
          throw err;
        });
        return warehouses.db;
      },
      contract: (dataset) => loadContract(dataset, config.contractsDir),
      ttlMs: s.featureCacheTtlMs,
    },
    ...(forecasts
      ? {
          forecast: {
            alias: 'champion',
            refreshMs: s.pollMs || 60_000,
            latestCandles: latestCandlesFrom(config.warehouseUrl, () => warehouses),
          },
        }
      : {}),
  });
  peers?.shareMetrics(app.metrics.registry);
  const url = await app
    .listen({ host: config.api.host, port: config.api.port })
    .catch(async (err: unknown) => {
      await app.close().catch(() => undefined);
      throw listenError(err, config.api.host, config.api.port);
    });
  log.info({ url, docs: `${url}/docs` }, 'serve: listening');
  const close = async () => {
    await app.close();
    await warehouses.db?.then((db) => db.destroy()).catch(() => undefined);
  };
  let stopping = false;
  const onSignal = (signal: string) => {
    // A worker may get the terminal's SIGINT and the primary's SIGTERM: stop once.
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'serve: shutting down, finishing in-flight requests');
    const timer = setTimeout(() => {
      log.error('serve: in-flight requests did not finish within 10 s; exiting');
      process.exit(1);
    }, 10_000);
    timer.unref();
    close().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'serve: close failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  return { url, close };
}

/**
 * The warehouse for scoring by id: a SQLite file that is not there is a setting to fix, not an
 * empty warehouse to make. A failed open is tried again on the next request.
 */
function openExistingWarehouse(url: string): Promise<Warehouse> {
  const file = url.startsWith('sqlite://') ? url.slice('sqlite://'.length) : undefined;
  if (file !== undefined && !existsSync(file))
    return Promise.reject(
      new DriftwoodError(
        'CONFIG_INVALID',
        `setting DRIFTWOOD_WAREHOUSE_URL: no SQLite warehouse at ${file}: ingest first, or point the setting at the warehouse training reads`,
      ),
    );
  return openWarehouse(url);
}

/** The newest `n` candles of the warehouse's `candles` table, oldest first (opened on first use). */
function latestCandlesFrom(url: string, holder: () => { db: Promise<Warehouse> | undefined }) {
  return async (n: number): Promise<Candle[]> => {
    const h = holder();
    h.db ??= openWarehouse(url);
    const db = await h.db;
    return (await db.schema.hasTable('candles')) ? loadLatestCandles(db, n) : [];
  };
}

/**
 * A port in use or not ours to take is a configuration error (exit 2, one line naming the setting),
 * not a fault to retry.
 */
function listenError(err: unknown, host: string, port: number): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'EADDRINUSE')
    return new DriftwoodError(
      'CONFIG_INVALID',
      `${host}:${port} is already in use (DRIFTWOOD_API_PORT, DRIFTWOOD_API_HOST): stop what listens there or choose another port`,
    );
  if (code === 'EACCES' || code === 'EADDRNOTAVAIL')
    return new DriftwoodError(
      'CONFIG_INVALID',
      `cannot listen on ${host}:${port} (${code}; DRIFTWOOD_API_PORT, DRIFTWOOD_API_HOST)`,
    );
  return err;
}
