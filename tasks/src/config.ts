import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import type { DatasetSettings } from './contracts/settings.js';
import { DriftwoodError } from './errors.js';
import type { S3Settings } from './lake/s3-store.js';
import type { FeatureEngine } from './warehouse/engine.js';

/** Everything Driftwood reads from the environment, typed. Built once at the CLI/server entry and passed down. */
export interface Config {
  home: string;
  lakeUri: string;
  /** S3 settings for an `s3://` lake (endpoint, region, path-style, credentials from AWS_* variables). */
  s3: S3Settings;
  /** Where a run posts an alert (Slack incoming-webhook format) when anomalies pass a contract's threshold. */
  ingestAlertWebhook: string | undefined;
  /** Folder of dataset contracts; unset: contracts/ at the repository root (or next to the image's tasks/). */
  contractsDir: string | undefined;
  /** DRIFTWOOD_DATASET: the dataset a command or `/v1/predict` means when none is named. */
  dataset: string | undefined;
  warehouseUrl: string;
  /**
   * DRIFTWOOD_FEATURE_ENGINE: where the point-in-time feature build aggregates (docs/features.md):
   * `warehouse` (the default; `sqlite` and `postgres` say the same) in the warehouse itself, or
   * `duckdb` in an embedded DuckDB reading the events' Parquet files in the lake (ingest keeps
   * them). Both give the same rows.
   */
  featureEngine: FeatureEngine;
  mlflow: {
    trackingUri: string;
    /**
     * DRIFTWOOD_MODEL_NAME / DRIFTWOOD_EXPERIMENT when given: they replace the contract's names of
     * DRIFTWOOD_DATASET's dataset (of every dataset when DRIFTWOOD_DATASET is unset).
     */
    experiment: string | undefined;
    modelName: string | undefined;
  };
  http: { timeoutMs: number; retries: number; backoffMs: number };
  api: { host: string; port: number };
  /** The prediction API's protection, auth and model-routing settings (see docs/api.md). */
  serving: ServingConfig;
  piiKey: string | undefined;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /**
   * DRIFTWOOD_LOKI_URL (or _FILE when it carries a password): every log line also goes to this Loki's
   * push API, batched every DRIFTWOOD_LOKI_BATCH_SECONDS (docs/monitoring.md, "Searching logs").
   * Unset: logs go to stderr only.
   */
  loki: { url: string; batchSeconds: number; timeoutMs: number } | undefined;
  /** AIRFLOW_CTX_DAG_RUN_ID, set by Airflow for a task it runs: bound to each of the step's log lines. */
  dagRunId: string | undefined;
}

export interface ServingConfig {
  /** `user:role[,role]:scrypt$…` lines; unset (and no JWT) makes every route but health answer 401. */
  credentials: string | undefined;
  /** DRIFTWOOD_API_AUTH=none: no credentials on purpose, every route open (a laptop, never a server). */
  openAccess: boolean;
  metricsAuth: boolean;
  bodyLimitBytes: number;
  maxBatchRows: number;
  rateLimitPerMinute: number;
  /** Requests in flight per API process before a fast 503 (0: no limit; docs/api.md, load shedding). */
  maxInFlight: number;
  /** Failed Basic logins per user name and per address in a minute before 429. */
  maxFailedLogins: number;
  /** API processes sharing the port (node:cluster): 1 runs in this process; `auto` is one per core. */
  workers: number;
  pollMs: number;
  challengerMode: 'off' | 'canary' | 'shadow';
  canaryPercent: number;
  /** Shared secret of the MLflow registry webhook; unset turns `/v1/hooks/mlflow` off. */
  webhookSecret: string | undefined;
  /**
   * DRIFTWOOD_API_FEATURE_CACHE_TTL_MS: how long `POST /v1/predict/by-id` keeps a customer's features
   * computed from the warehouse (DRIFTWOOD_WAREHOUSE_URL) before computing them again; 0: never kept.
   */
  featureCacheTtlMs: number;
  /** OAuth2 bearer tokens beside Basic auth; unset turns them off. */
  jwt: { issuer: string; jwksUrl: string; audience: string | undefined } | undefined;
  /** Airflow's API for `POST /v1/train`; unset turns the route off. */
  airflow: { baseUrl: string; username: string; password: string; dagId: string } | undefined;
  /** The dashboard's other sources and links (docs/dashboard.md); an unset one shows as not configured. */
  dashboard?: DashboardConfig;
  /**
   * DRIFTWOOD_FORECAST_MODEL: unset serves every forecast contract under its own model; `off` serves
   * none; another name renames the only forecast contract's model.
   */
  forecastModel?: string | undefined;
}

export interface DashboardConfig {
  /** The Evidently sidecar's HTTP root (DRIFTWOOD_EVIDENTLY_URL): latest drift report and decisions. */
  evidentlyUrl: string | undefined;
  /** Browser links: MLflow's UI (default the tracking URI), Airflow's UI (default its API URL), Grafana. */
  links: { mlflow: string | undefined; airflow: string | undefined; grafana: string | undefined };
}

type Env = Record<string, string | undefined>;

function fail(name: string, expected: string, got: string | undefined): never {
  const shown = got === undefined || got === '' ? 'nothing' : `'${got}'`;
  throw new DriftwoodError('CONFIG_INVALID', `setting ${name}: expected ${expected}, got ${shown}`, {
    setting: name,
  });
}

function readString(env: Env, name: string, fallback: string): string {
  const value = env[name];
  if (value === undefined) return fallback;
  if (value.trim() === '') fail(name, 'a non-empty value (or leave it unset for the default)', value);
  return value.trim();
}

function readDataset(value: string): string {
  if (!/^[a-z][a-z0-9_]*$/.test(value)) fail('DRIFTWOOD_DATASET', 'a lower-case dataset name', value);
  return value;
}

function readInt(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || n < min || n > max) fail(name, `an integer from ${min} to ${max}`, raw);
  return n;
}

function readUrl(env: Env, name: string, fallback: string, protocols: string[]): string {
  const value = readString(env, name, fallback);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail(name, `a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`, value);
  }
  if (!protocols.includes(url.protocol))
    fail(name, `a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`, value);
  return value.replace(/\/+$/, '');
}

function readSecret(env: Env, name: string, cwd: string): string | undefined {
  const file = env[`${name}_FILE`];
  if (file !== undefined) {
    const full = path.resolve(cwd, file);
    if (!existsSync(full)) fail(`${name}_FILE`, 'the path of a readable file', file);
    return readFileSync(full, 'utf8').trim();
  }
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Reads the configuration. Defaults are the embedded ones: a lake folder and a SQLite warehouse
 * under DRIFTWOOD_HOME (./.driftwood) and an MLflow server on 127.0.0.1:5000 started by the project.
 */
export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): Config {
  const home = path.resolve(cwd, readString(env, 'DRIFTWOOD_HOME', '.driftwood'));
  const logLevel = readString(env, 'LOG_LEVEL', 'info');
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel))
    fail('LOG_LEVEL', `one of ${LOG_LEVELS.join(', ')}`, logLevel);
  const modelName =
    env.DRIFTWOOD_MODEL_NAME === undefined ? undefined : readString(env, 'DRIFTWOOD_MODEL_NAME', '');
  if (modelName !== undefined && !/^[\w\-.]+$/.test(modelName))
    fail('DRIFTWOOD_MODEL_NAME', 'letters, digits, _ - or .', modelName);
  return {
    home,
    lakeUri: readUrl(env, 'DRIFTWOOD_LAKE_URI', `file://${path.join(home, 'lake')}`, ['file:', 's3:']),
    s3: readS3(env, cwd),
    contractsDir:
      env.DRIFTWOOD_CONTRACTS_DIR === undefined
        ? undefined
        : path.resolve(cwd, readString(env, 'DRIFTWOOD_CONTRACTS_DIR', '')),
    dataset: env.DRIFTWOOD_DATASET === undefined ? undefined : readDataset(env.DRIFTWOOD_DATASET),
    ingestAlertWebhook:
      env.DRIFTWOOD_INGEST_ALERT_WEBHOOK === undefined &&
      env.DRIFTWOOD_INGEST_ALERT_WEBHOOK_FILE === undefined
        ? undefined
        : readSecretUrl(env, cwd, 'DRIFTWOOD_INGEST_ALERT_WEBHOOK', '', ['http:', 'https:']),
    warehouseUrl: readSecretUrl(
      env,
      cwd,
      'DRIFTWOOD_WAREHOUSE_URL',
      `sqlite://${path.join(home, 'warehouse.db')}`,
      ['sqlite:', 'postgres:', 'postgresql:'],
    ),
    featureEngine: readFeatureEngine(env),
    mlflow: {
      trackingUri: readUrl(env, 'MLFLOW_TRACKING_URI', 'http://127.0.0.1:5000', ['http:', 'https:']),
      experiment:
        env.DRIFTWOOD_EXPERIMENT === undefined ? undefined : readString(env, 'DRIFTWOOD_EXPERIMENT', ''),
      modelName,
    },
    http: {
      timeoutMs: readInt(env, 'DRIFTWOOD_HTTP_TIMEOUT_MS', 10_000, 100, 600_000),
      retries: readInt(env, 'DRIFTWOOD_HTTP_RETRIES', 3, 0, 20),
      backoffMs: readInt(env, 'DRIFTWOOD_HTTP_BACKOFF_MS', 250, 1, 60_000),
    },
    api: {
      host: readString(env, 'DRIFTWOOD_API_HOST', '127.0.0.1'),
      port: readInt(env, 'DRIFTWOOD_API_PORT', 8080, 0, 65_535),
    },
    serving: readServing(env, cwd),
    piiKey: readSecret(env, 'DRIFTWOOD_PII_KEY', cwd),
    logLevel: logLevel as Config['logLevel'],
    loki:
      env.DRIFTWOOD_LOKI_URL === undefined && env.DRIFTWOOD_LOKI_URL_FILE === undefined
        ? undefined
        : {
            url: readSecretUrl(env, cwd, 'DRIFTWOOD_LOKI_URL', '', ['http:', 'https:']),
            batchSeconds: readInt(env, 'DRIFTWOOD_LOKI_BATCH_SECONDS', 1, 1, 60),
            timeoutMs: readInt(env, 'DRIFTWOOD_LOKI_TIMEOUT_MS', 5_000, 100, 60_000),
          },
    dagRunId: env.AIRFLOW_CTX_DAG_RUN_ID || undefined,
  };
}

const FEATURE_ENGINES: Record<string, FeatureEngine> = {
  warehouse: 'warehouse',
  sqlite: 'warehouse',
  postgres: 'warehouse',
  duckdb: 'duckdb',
};

/** DRIFTWOOD_FEATURE_ENGINE, case-insensitive; unset or empty is the warehouse. */
export function readFeatureEngine(env: Env): FeatureEngine {
  const raw = env.DRIFTWOOD_FEATURE_ENGINE;
  const value = raw?.trim().toLowerCase();
  if (value === undefined || value === '') return 'warehouse';
  const engine = FEATURE_ENGINES[value];
  if (engine === undefined)
    fail('DRIFTWOOD_FEATURE_ENGINE', `one of ${Object.keys(FEATURE_ENGINES).join(', ')}`, raw);
  return engine;
}

/**
 * A URL that may carry a credential (the warehouse's password, a Slack webhook's token): the setting,
 * or a file named by its *_FILE (a container secret), checked alike. A bad file names the setting,
 * never the file's content.
 */
function readSecretUrl(env: Env, cwd: string, name: string, fallback: string, protocols: string[]): string {
  if (env[`${name}_FILE`] === undefined) return readUrl(env, name, fallback, protocols);
  const value = readSecret(env, name, cwd) ?? '';
  try {
    return readUrl({ [`${name}_FILE`]: value }, `${name}_FILE`, fallback, protocols);
  } catch {
    const starts = protocols.map((p) => `${p}//`).join(' or ');
    return fail(`${name}_FILE`, `a file holding a URL starting with ${starts}`, '<file content>');
  }
}

/** S3 settings; credentials only when both AWS keys are set, else the SDK's chain (profiles, roles). */
function readS3(env: Env, cwd: string): S3Settings {
  const out: S3Settings = {};
  if (env.DRIFTWOOD_S3_ENDPOINT !== undefined)
    out.endpoint = readUrl(env, 'DRIFTWOOD_S3_ENDPOINT', '', ['http:', 'https:']);
  const region = env.DRIFTWOOD_S3_REGION ?? env.AWS_REGION;
  if (region !== undefined)
    out.region = readString({ DRIFTWOOD_S3_REGION: region }, 'DRIFTWOOD_S3_REGION', '');
  const pathStyle = readString(env, 'DRIFTWOOD_S3_PATH_STYLE', 'false');
  if (pathStyle !== 'true' && pathStyle !== 'false')
    fail('DRIFTWOOD_S3_PATH_STYLE', 'true or false', pathStyle);
  out.forcePathStyle = pathStyle === 'true';
  const id = env.AWS_ACCESS_KEY_ID;
  const secret = readSecret(env, 'AWS_SECRET_ACCESS_KEY', cwd);
  if (id && secret)
    out.credentials = {
      accessKeyId: id,
      secretAccessKey: secret,
      ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
    };
  return out;
}

function readServing(env: Env, cwd: string): ServingConfig {
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const value = readString(env, name, fallback);
    if (!(allowed as readonly string[]).includes(value)) fail(name, `one of ${allowed.join(', ')}`, value);
    return value as T;
  };
  return {
    credentials: readSecret(env, 'DRIFTWOOD_API_CREDENTIALS', cwd),
    openAccess: oneOf('DRIFTWOOD_API_AUTH', ['required', 'none'], 'required') === 'none',
    metricsAuth: oneOf('DRIFTWOOD_API_METRICS_AUTH', ['true', 'false'], 'false') === 'true',
    bodyLimitBytes: readInt(env, 'DRIFTWOOD_API_BODY_LIMIT', 64 * 1024, 1024, 16 * 1024 * 1024),
    maxBatchRows: readInt(env, 'DRIFTWOOD_API_MAX_BATCH', 100, 1, 10_000),
    rateLimitPerMinute: readInt(env, 'DRIFTWOOD_API_RATE_LIMIT', 6000, 1, 10_000_000),
    maxInFlight: readInt(env, 'DRIFTWOOD_API_MAX_IN_FLIGHT', 64, 0, 1_000_000),
    maxFailedLogins: readInt(env, 'DRIFTWOOD_API_MAX_FAILED_LOGINS', 10, 1, 1_000_000),
    workers: readWorkers(env),
    pollMs: readInt(env, 'DRIFTWOOD_API_POLL_MS', 30_000, 0, 3_600_000),
    challengerMode: oneOf('DRIFTWOOD_API_CHALLENGER_MODE', ['off', 'canary', 'shadow'], 'off'),
    canaryPercent: readInt(env, 'DRIFTWOOD_API_CANARY_PERCENT', 10, 0, 100),
    webhookSecret: readSecret(env, 'DRIFTWOOD_API_WEBHOOK_SECRET', cwd),
    featureCacheTtlMs: readInt(env, 'DRIFTWOOD_API_FEATURE_CACHE_TTL_MS', 60_000, 0, 3_600_000),
    jwt: readJwt(env),
    airflow: readAirflow(env, cwd),
    dashboard: readDashboard(env),
    forecastModel: readForecastModel(env),
  };
}

function readWorkers(env: Env): number {
  const raw = env.DRIFTWOOD_API_WORKERS?.trim();
  if (raw === 'auto') return availableParallelism();
  if (raw !== undefined && !/^\d+$/.test(raw))
    fail('DRIFTWOOD_API_WORKERS', "an integer from 1 to 64 or 'auto'", raw);
  return readInt(env, 'DRIFTWOOD_API_WORKERS', 1, 1, 64);
}

/** DRIFTWOOD_FORECAST_MODEL: `off` serves no forecast; a name renames the forecast contract's model. */
function readForecastModel(env: Env): string | undefined {
  if (env.DRIFTWOOD_FORECAST_MODEL === undefined) return undefined;
  const name = readString(env, 'DRIFTWOOD_FORECAST_MODEL', '');
  if (name === 'off') return 'off';
  if (!/^[\w\-.]+$/.test(name)) fail('DRIFTWOOD_FORECAST_MODEL', "letters, digits, _ - . or 'off'", name);
  return name;
}

function readDashboard(env: Env): DashboardConfig {
  const url = (name: string, fallback?: string) =>
    env[name] === undefined ? fallback : readUrl(env, name, '', ['http:', 'https:']);
  return {
    evidentlyUrl: url('DRIFTWOOD_EVIDENTLY_URL'),
    links: {
      mlflow: url('DRIFTWOOD_MLFLOW_UI_URL', url('MLFLOW_TRACKING_URI', 'http://127.0.0.1:5000')),
      airflow: url('DRIFTWOOD_AIRFLOW_UI_URL', url('DRIFTWOOD_AIRFLOW_URL')),
      grafana: url('DRIFTWOOD_GRAFANA_URL'),
    },
  };
}

function readAirflow(env: Env, cwd: string): ServingConfig['airflow'] {
  if (env.DRIFTWOOD_AIRFLOW_URL === undefined) return undefined;
  const password = readSecret(env, 'DRIFTWOOD_AIRFLOW_PASSWORD', cwd);
  if (!password)
    fail('DRIFTWOOD_AIRFLOW_PASSWORD', 'the Airflow password (or DRIFTWOOD_AIRFLOW_PASSWORD_FILE)', password);
  return {
    baseUrl: readUrl(env, 'DRIFTWOOD_AIRFLOW_URL', '', ['http:', 'https:']),
    username: readString(env, 'DRIFTWOOD_AIRFLOW_USER', 'driftwood'),
    password,
    dagId: readString(env, 'DRIFTWOOD_RETRAIN_DAG', 'churn_retrain'),
  };
}

function readJwt(env: Env): ServingConfig['jwt'] {
  const issuer = env.DRIFTWOOD_API_JWT_ISSUER;
  if (issuer === undefined) return undefined;
  return {
    issuer: readString(env, 'DRIFTWOOD_API_JWT_ISSUER', ''),
    jwksUrl: readUrl(env, 'DRIFTWOOD_API_JWT_JWKS_URL', '', ['https:', 'http:']),
    audience:
      env.DRIFTWOOD_API_JWT_AUDIENCE === undefined
        ? undefined
        : readString(env, 'DRIFTWOOD_API_JWT_AUDIENCE', ''),
  };
}

/** Merges a `.env` file (if present) under the real environment: real variables win. */
export function environmentWithDotenv(cwd: string = process.cwd(), env: Env = process.env): Env {
  const file = path.join(cwd, '.env');
  if (!existsSync(file)) return env;
  return { ...parseDotenv(readFileSync(file)), ...env };
}

/**
 * Whether DRIFTWOOD_MODEL_NAME / DRIFTWOOD_EXPERIMENT speak of this dataset: they are set, and
 * DRIFTWOOD_DATASET is unset or names it. A `.env` made for one dataset never renames another's model.
 */
function overrideHolds(config: Pick<Config, 'dataset'>, dataset: string): boolean {
  return config.dataset === undefined || config.dataset === dataset;
}

/** The registered model of a dataset: the contract's (`model.name`), unless overridden for it. */
export function modelNameFor(config: Pick<Config, 'mlflow' | 'dataset'>, settings: DatasetSettings): string {
  const named = config.mlflow.modelName;
  return named !== undefined && overrideHolds(config, settings.dataset) ? named : settings.modelName;
}

/** The MLflow experiment of a dataset: the contract's (`model.experiment`), unless overridden for it. */
export function experimentFor(config: Pick<Config, 'mlflow' | 'dataset'>, settings: DatasetSettings): string {
  const named = config.mlflow.experiment;
  return named !== undefined && overrideHolds(config, settings.dataset) ? named : settings.experiment;
}

/** The settings that were given for another dataset than this one, so a step can say it ignored them. */
export function overridesIgnored(config: Pick<Config, 'mlflow' | 'dataset'>, dataset: string): string[] {
  if (overrideHolds(config, dataset)) return [];
  return [
    ...(config.mlflow.modelName !== undefined ? ['DRIFTWOOD_MODEL_NAME'] : []),
    ...(config.mlflow.experiment !== undefined ? ['DRIFTWOOD_EXPERIMENT'] : []),
  ];
}
