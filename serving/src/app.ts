import type { Candle, MlflowClient } from '@driftwood/tasks';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import underPressure from '@fastify/under-pressure';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { AirflowOptions } from './airflow/trigger.js';
import type { CredentialStore } from './auth/credentials.js';
import type { JwtOptions } from './auth/jwt.js';
import type { PeerLink } from './cluster.js';
import type { ServedDataset } from './datasets/catalog.js';
import { errorHandler } from './errors.js';
import { experimentsPlugin } from './experiments/routes.js';
import { type FeatureStoreOptions, featureLookups } from './features/by-id.js';
import { ForecastHolder } from './forecast/holder.js';
import { lazyChildLogger } from './lazy-logger.js';
import { authPlugin } from './plugins/auth.js';
import { dashboardPlugin } from './plugins/dashboard.js';
import { gracefulClosePlugin } from './plugins/graceful-close.js';
import { metricsPlugin } from './plugins/metrics.js';
import { type ModelLoader, modelRegistryPlugin } from './plugins/model-registry.js';
import { predictionLogPlugin } from './plugins/prediction-log.js';
import { rateLimitPlugin } from './plugins/rate-limit.js';
import { securityHeadersPlugin } from './plugins/security-headers.js';
import { shedLoadPlugin } from './plugins/shed-load.js';
import { type DashboardDataOptions, dashboardDataRoutes } from './routes/dashboard.js';
import { datasetRoutes } from './routes/datasets.js';
import { featureRoutes } from './routes/features.js';
import { forecastRoutes } from './routes/forecast.js';
import { healthRoutes } from './routes/health.js';
import { hookRoutes } from './routes/hooks.js';
import { modelRoutes } from './routes/model.js';
import { modelsInfoRoutes } from './routes/models-info.js';
import { predictRoutes } from './routes/predict.js';
import { predictionSummaryRoutes } from './routes/prediction-summary.js';
import { registryAdminRoutes } from './routes/registry-admin.js';
import { reloadRoutes } from './routes/reload.js';
import { trainRoutes } from './routes/train.js';
import type { ChallengerMode } from './routing/canary.js';
import { CanaryGuard, DEFAULT_ROLLBACK, type RollbackPolicy } from './routing/guard.js';

export interface AppOptions {
  mlflow: MlflowClient;
  /**
   * The default dataset's registered model (admin routes act on it). Without `datasets`, the only
   * dataset served: tabular, named `dataset` (the model's name when absent).
   */
  modelName: string;
  dataset?: string;
  /**
   * Every dataset served by this process (`datasets/catalog.ts`, from the contracts folder), each
   * under `/v1/datasets/<name>/…` with its own models, schema, canary state and log partition.
   */
  datasets?: ServedDataset[];
  /** The dataset `/v1/predict` and `/v1/model` answer for (with `datasets`). */
  defaultDataset?: string;
  /** Why there is no default dataset (with `datasets`): the unprefixed routes answer 503 with it. */
  noDefault?: string;
  /** The alias that answers (champion). */
  alias: string;
  /** A pino logger (the CLI's); without it the app logs nothing, as tests want. */
  logger?: FastifyBaseLogger;
  /** Body limit in bytes (64 KB by default). */
  bodyLimit?: number;
  /** Rows per `POST /v1/predict/batch` at most (100 by default). */
  maxBatchRows?: number;
  /**
   * Basic-auth credentials. Without them (and without `jwt`) routes that need a role answer 401
   * `auth_not_configured`, unless `openAccess` is true.
   */
  credentials?: CredentialStore;
  /** An API open to anyone, chosen on purpose (DRIFTWOOD_API_AUTH=none); only without credentials. */
  openAccess?: boolean;
  /** While closing, how long a keep-alive connection must be silent before it is ended (2 s by default). */
  shutdownIdleMs?: number;
  /** OAuth2 bearer tokens (JWT) beside Basic: issuer, JWKS URL, audience, roles claim. */
  jwt?: JwtOptions;
  /** Whether `/metrics` needs the admin role (only with credentials). */
  metricsAuth?: boolean;
  /** Requests per minute per credential (or per IP without auth); 6000 by default. */
  rateLimitPerMinute?: number;
  /** Requests in flight at most before a fast 503 (`plugins/shed-load.ts`); 0 or absent: no limit. */
  maxInFlight?: number;
  /** Failed logins per user name and per address in a minute before 429; 10 by default. */
  maxFailedLogins?: number;
  /** Load shedding thresholds (@fastify/under-pressure); 0 or absent turns a check off. */
  pressure?: {
    maxEventLoopDelayMs?: number;
    maxHeapUsedBytes?: number;
    maxEventLoopUtilization?: number;
    retryAfterSeconds?: number;
    sampleIntervalMs?: number;
  };
  /** How often the registry aliases are read for a hot swap; 0 turns polling off. */
  pollMs?: number;
  /** Canary or shadow; in canary mode the split is rolled back when the challenger breaks `rollback`. */
  challenger?: {
    alias: string;
    mode: ChallengerMode;
    canaryPercent: number;
    rollback?: Partial<RollbackPolicy>;
  };
  /** Where predictions are logged (`<DRIFTWOOD_HOME>/predictions`) and the PII key for customer ids. */
  predictionLog?: {
    dir: string;
    piiKey?: string;
    flushMs?: number;
    flushBytes?: number;
    maxBufferedBytes?: number;
    spillDir?: string;
  };
  /** Airflow's API and the retraining DAG; without it `POST /v1/train` is not served. */
  airflow?: AirflowOptions;
  /** Shared secret of the MLflow registry webhook; without it `/v1/hooks/mlflow` is not served. */
  webhookSecret?: string;
  /** Replaces the MLflow model loader (the benchmark uses it to force the TF.js path). */
  loader?: ModelLoader;
  defaultMetrics?: boolean;
  /** The dashboard's build served under `/ui` (dashboard/dist by default). */
  dashboardRoot?: string;
  /**
   * Forecast models: without `datasets`, one served at `POST /v1/forecast` as dataset `dataset`
   * (default: the model's name); with `datasets`, the settings of their forecast datasets, the first
   * of which also answers `POST /v1/forecast`. Absent: no forecast is served.
   */
  forecast?: {
    modelName?: string;
    dataset?: string;
    alias: string;
    /** How often the alias is re-read (ms); 60 s by default. */
    refreshMs?: number;
    latestCandles?: (n: number) => Promise<Candle[]>;
  };
  /** The dashboard's drift sidecar and UI links; pipelines come from `airflow`. */
  dashboard?: Omit<DashboardDataOptions, 'airflow'>;
  /** The other API processes, when this one is a cluster worker (`cluster.ts`). */
  peers?: PeerLink;
  /**
   * Scoring by id (`POST /v1/predict/by-id`): the warehouse and contracts each tabular dataset's
   * features are computed from, and how long they are kept; absent, that route is not served
   * (`driftwood serve` always gives one: DRIFTWOOD_WAREHOUSE_URL has a default).
   */
  featureStore?: FeatureStoreOptions;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The other API processes of a cluster; undefined for a single process. */
    peers: PeerLink | undefined;
  }
}

/**
 * Builds the prediction API. `server.ts` only listens; tests call this and `app.inject()`.
 * The model is loaded from the MLflow registry alias while the app is built, so the request schemas
 * come from its transform; a failed load does not stop the app: `/health/ready` stays 503 and
 * predictions answer 503 until the poller loads a model.
 */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    ...(options.logger
      ? { loggerInstance: options.logger, childLoggerFactory: lazyChildLogger }
      : { logger: false }),
    bodyLimit: options.bodyLimit ?? 64 * 1024,
    // One log line per request costs throughput; metrics and the prediction log cover traffic.
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { allErrors: false, coerceTypes: false, removeAdditional: false } },
  });
  app.setErrorHandler(errorHandler);
  app.decorate('peers', options.peers);
  // First of all, so that on close no keep-alive connection is cut under a request.
  await app.register(gracefulClosePlugin, options.shutdownIdleMs ? { idleMs: options.shutdownIdleMs } : {});
  const challengerMode = options.challenger?.mode ?? 'off';

  // First: metrics, auth and the rate limit act through onRoute hooks, so they are registered
  // before any route (Swagger UI's included).
  await app.register(metricsPlugin, { defaultMetrics: options.defaultMetrics ?? false });
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Driftwood prediction API',
        version: '1',
        description:
          "Predictions of every contract's dataset from its MLflow registry champion (`/v1/datasets/<dataset>/…`; the unprefixed routes answer for the default dataset). See docs/api.md.",
      },
      components: { securitySchemes: { basicAuth: { type: 'http', scheme: 'basic' } } },
    },
  });
  // Shed load before doing any work, auth's scrypt included.
  const p = options.pressure ?? {};
  await app.register(underPressure, {
    maxEventLoopDelay: p.maxEventLoopDelayMs ?? 0,
    maxHeapUsedBytes: p.maxHeapUsedBytes ?? 0,
    maxEventLoopUtilization: p.maxEventLoopUtilization ?? 0,
    retryAfter: p.retryAfterSeconds ?? 10,
    sampleInterval: p.sampleIntervalMs ?? 1000,
  });
  await app.register(shedLoadPlugin, { maxInFlight: options.maxInFlight ?? 0 });
  await app.register(securityHeadersPlugin);
  await app.register(authPlugin, {
    credentials: options.credentials,
    jwt: options.jwt,
    openAccess: options.openAccess,
    maxFailedLogins: options.maxFailedLogins,
  });
  // After auth's hook, so the limit is counted per credential rather than per IP.
  await app.register(rateLimitPlugin, { max: options.rateLimitPerMinute ?? 6000, windowMs: 60_000 });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  const tabular = options.datasets
    ? options.datasets.filter((d) => d.kind === 'tabular')
    : [
        {
          dataset: options.dataset ?? options.modelName,
          kind: 'tabular' as const,
          modelName: options.modelName,
        },
      ];
  const defaultDataset = options.datasets ? options.defaultDataset : tabular[0]?.dataset;
  const f = options.forecast;
  const forecasts = options.datasets
    ? f
      ? options.datasets.filter((d) => d.kind === 'forecast')
      : []
    : f?.modelName
      ? [{ dataset: f.dataset ?? f.modelName, kind: 'forecast' as const, modelName: f.modelName }]
      : [];
  await app.register(modelRegistryPlugin, {
    mlflow: options.mlflow,
    datasets: tabular,
    defaultDataset,
    noDefault: options.noDefault,
    alias: options.alias,
    challengerAlias: challengerMode === 'off' ? undefined : options.challenger?.alias,
    pollMs: options.pollMs ?? 0,
    loader: options.loader,
  });
  const idColumns = Object.fromEntries(tabular.flatMap((d) => (d.idColumn ? [[d.dataset, d.idColumn]] : [])));
  await app.register(predictionLogPlugin, { ...options.predictionLog, defaultDataset, idColumns });
  // Before the predict routes, which ask it for a customer's variant.
  await app.register(experimentsPlugin, {
    mlflow: options.mlflow,
    defaultDataset,
    pollMs: options.pollMs ?? 0,
    ...(options.loader ? { loader: options.loader } : {}),
  });
  await app.register(healthRoutes, {
    metricsRole: (options.credentials || options.jwt) && options.metricsAuth ? 'admin' : undefined,
  });
  // One canary guard per dataset: a challenger that breaks rolls back its own dataset's split only.
  const routingFor = () => ({
    challengerMode,
    canaryPercent: options.challenger?.canaryPercent ?? 0,
    guard: new CanaryGuard({ ...DEFAULT_ROLLBACK, ...options.challenger?.rollback }),
  });
  const maxBatchRows = options.maxBatchRows ?? 100;
  // One lookup (and cache) per dataset, shared by its prefixed and unprefixed routes.
  const lookups = featureLookups(
    options.featureStore,
    tabular.map((d) => d.dataset),
    app.metrics.registry,
    app.log,
  );
  for (const holder of app.datasetModels.all()) {
    const routing = routingFor();
    const byId = lookups.get(holder.dataset);
    const prefixes = [
      `/v1/datasets/${holder.dataset}`,
      ...(holder.dataset === defaultDataset ? ['/v1'] : []),
    ];
    for (const prefix of prefixes) {
      await app.register(predictRoutes, {
        prefix,
        models: holder,
        maxBatchRows,
        ...routing,
        ...(byId ? { byId } : {}),
      });
      await app.register(modelRoutes, { prefix, models: holder, ...routing });
    }
  }
  if (defaultDataset === undefined) {
    // The unprefixed routes still exist, and say which dataset to choose.
    const routing = routingFor();
    await app.register(predictRoutes, { prefix: '/v1', models: app.models, maxBatchRows, ...routing });
    await app.register(modelRoutes, { prefix: '/v1', models: app.models, ...routing });
  }
  await app.register(featureRoutes, { prefix: '/v1' });
  // The default dataset's model: what a predict user may read, and what an admin may move.
  const defaultModel = { mlflow: options.mlflow, modelName: options.modelName, alias: options.alias };
  await app.register(modelsInfoRoutes, { prefix: '/v1', ...defaultModel });
  await app.register(predictionSummaryRoutes, {
    prefix: '/v1',
    predictionLogDir: options.predictionLog?.dir,
  });
  await app.register(registryAdminRoutes, {
    prefix: '/v1',
    ...defaultModel,
    // The promote step reads the dataset's contract; without a catalog it uses its own default.
    ...(options.datasets && defaultDataset ? { dataset: defaultDataset } : {}),
  });
  await app.register(dashboardPlugin, { root: options.dashboardRoot });
  await app.register(dashboardDataRoutes, { prefix: '/v1', airflow: options.airflow, ...options.dashboard });
  if (options.airflow) await app.register(trainRoutes, { prefix: '/v1', airflow: options.airflow });
  const forecastHolders: ForecastHolder[] = [];
  for (const [i, d] of forecasts.entries()) {
    const holder = new ForecastHolder(
      d.dataset,
      options.mlflow,
      d.modelName,
      f?.alias ?? options.alias,
      f?.refreshMs ?? 60_000,
    );
    forecastHolders.push(holder);
    app.addHook('onClose', async () => holder.close());
    const routeOptions = {
      holder,
      mlflow: options.mlflow,
      ...(f?.latestCandles ? { latestCandles: f.latestCandles } : {}),
    };
    await app.register(forecastRoutes, {
      prefix: `/v1/datasets/${d.dataset}`,
      ...routeOptions,
      modelRoute: true,
    });
    // The first forecast dataset also answers the route the API had before datasets were named.
    if (i === 0) await app.register(forecastRoutes, { prefix: '/v1', ...routeOptions });
  }
  await app.register(datasetRoutes, { prefix: '/v1', forecasts: forecastHolders, defaultDataset });
  await app.register(reloadRoutes, { prefix: '/v1', forecasts: forecastHolders });
  if (options.webhookSecret)
    await app.register(hookRoutes, {
      prefix: '/v1',
      secret: options.webhookSecret,
      forecasts: forecastHolders,
      aliases: [
        options.alias,
        ...(challengerMode === 'off' || !options.challenger ? [] : [options.challenger.alias]),
      ],
    });
  return app;
}
