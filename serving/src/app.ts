import type { Candle, MlflowClient } from '@driftwood/tasks';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import underPressure from '@fastify/under-pressure';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { AirflowOptions } from './airflow/trigger.js';
import type { CredentialStore } from './auth/credentials.js';
import type { JwtOptions } from './auth/jwt.js';
import type { PeerLink } from './cluster.js';
import { errorHandler } from './errors.js';
import { ForecastHolder } from './forecast/holder.js';
import { lazyChildLogger } from './lazy-logger.js';
import { authPlugin } from './plugins/auth.js';
import { dashboardPlugin } from './plugins/dashboard.js';
import { metricsPlugin } from './plugins/metrics.js';
import { type ModelLoader, modelRegistryPlugin } from './plugins/model-registry.js';
import { predictionLogPlugin } from './plugins/prediction-log.js';
import { rateLimitPlugin } from './plugins/rate-limit.js';
import { securityHeadersPlugin } from './plugins/security-headers.js';
import { adminRoutes } from './routes/admin.js';
import { type DashboardDataOptions, dashboardDataRoutes } from './routes/dashboard.js';
import { featureRoutes } from './routes/features.js';
import { forecastRoutes } from './routes/forecast.js';
import { healthRoutes } from './routes/health.js';
import { hookRoutes } from './routes/hooks.js';
import { modelRoutes } from './routes/model.js';
import { predictRoutes } from './routes/predict.js';
import { trainRoutes } from './routes/train.js';
import type { ChallengerMode } from './routing/canary.js';
import { CanaryGuard, DEFAULT_ROLLBACK, type RollbackPolicy } from './routing/guard.js';

export interface AppOptions {
  mlflow: MlflowClient;
  modelName: string;
  /** The alias that answers (champion). */
  alias: string;
  /** A pino logger (the CLI's); without it the app logs nothing, as tests want. */
  logger?: FastifyBaseLogger;
  /** Body limit in bytes (64 KB by default). */
  bodyLimit?: number;
  /** Rows per `POST /v1/predict/batch` at most (100 by default). */
  maxBatchRows?: number;
  /** Basic-auth credentials; without them every route is open. */
  credentials?: CredentialStore;
  /** OAuth2 bearer tokens (JWT) beside Basic: issuer, JWKS URL, audience, roles claim. */
  jwt?: JwtOptions;
  /** Whether `/metrics` needs the admin role (only with credentials). */
  metricsAuth?: boolean;
  /** Requests per minute per credential (or per IP without auth); 6000 by default. */
  rateLimitPerMinute?: number;
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
  predictionLog?: { dir: string; piiKey?: string; flushMs?: number; maxBuffered?: number };
  /** Airflow's API and the retraining DAG; without it `POST /v1/train` is not served. */
  airflow?: AirflowOptions;
  /** Shared secret of the MLflow registry webhook; without it `/v1/hooks/mlflow` is not served. */
  webhookSecret?: string;
  /** Replaces the MLflow model loader (the benchmark uses it to force the TF.js path). */
  loader?: ModelLoader;
  defaultMetrics?: boolean;
  /** The dashboard's build served under `/ui` (dashboard/dist by default). */
  dashboardRoot?: string;
  /** A forecast model served at `POST /v1/forecast` (the btc use case); absent: the route is not served. */
  forecast?: {
    modelName: string;
    alias: string;
    /** How often the alias is re-read (ms); 60 s by default. */
    refreshMs?: number;
    latestCandles?: (n: number) => Promise<Candle[]>;
  };
  /** The dashboard's drift sidecar and UI links; pipelines come from `airflow`. */
  dashboard?: Omit<DashboardDataOptions, 'airflow'>;
  /** The other API processes, when this one is a cluster worker (`cluster.ts`). */
  peers?: PeerLink;
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
  const challengerMode = options.challenger?.mode ?? 'off';

  // First: metrics, auth and the rate limit act through onRoute hooks, so they are registered
  // before any route (Swagger UI's included).
  await app.register(metricsPlugin, { defaultMetrics: options.defaultMetrics ?? false });
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Driftwood prediction API',
        version: '1',
        description: 'Churn predictions from the MLflow registry champion. See docs/api.md.',
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
  await app.register(securityHeadersPlugin);
  await app.register(authPlugin, { credentials: options.credentials, jwt: options.jwt });
  // After auth's hook, so the limit is counted per credential rather than per IP.
  await app.register(rateLimitPlugin, { max: options.rateLimitPerMinute ?? 6000, windowMs: 60_000 });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  await app.register(modelRegistryPlugin, {
    mlflow: options.mlflow,
    modelName: options.modelName,
    alias: options.alias,
    challengerAlias: challengerMode === 'off' ? undefined : options.challenger?.alias,
    pollMs: options.pollMs ?? 0,
    loader: options.loader,
  });
  await app.register(predictionLogPlugin, { ...options.predictionLog });
  await app.register(healthRoutes, {
    metricsRole: (options.credentials || options.jwt) && options.metricsAuth ? 'admin' : undefined,
  });
  const routing = {
    challengerMode,
    canaryPercent: options.challenger?.canaryPercent ?? 0,
    guard: new CanaryGuard({ ...DEFAULT_ROLLBACK, ...options.challenger?.rollback }),
  };
  await app.register(predictRoutes, { prefix: '/v1', maxBatchRows: options.maxBatchRows ?? 100, ...routing });
  await app.register(modelRoutes, { prefix: '/v1', ...routing });
  await app.register(featureRoutes, { prefix: '/v1' });
  await app.register(adminRoutes, {
    prefix: '/v1',
    mlflow: options.mlflow,
    modelName: options.modelName,
    alias: options.alias,
    predictionLogDir: options.predictionLog?.dir,
  });
  await app.register(dashboardPlugin, { root: options.dashboardRoot });
  await app.register(dashboardDataRoutes, { prefix: '/v1', airflow: options.airflow, ...options.dashboard });
  if (options.airflow) await app.register(trainRoutes, { prefix: '/v1', airflow: options.airflow });
  if (options.forecast) {
    const f = options.forecast;
    const holder = new ForecastHolder(options.mlflow, f.modelName, f.alias, f.refreshMs ?? 60_000);
    app.addHook('onClose', async () => holder.close());
    await app.register(forecastRoutes, {
      prefix: '/v1',
      holder,
      mlflow: options.mlflow,
      ...(f.latestCandles ? { latestCandles: f.latestCandles } : {}),
    });
  }
  if (options.webhookSecret)
    await app.register(hookRoutes, {
      prefix: '/v1',
      secret: options.webhookSecret,
      modelName: options.modelName,
      aliases: [
        options.alias,
        ...(challengerMode === 'off' || !options.challenger ? [] : [options.challenger.alias]),
      ],
    });
  return app;
}
