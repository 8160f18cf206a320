import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { DriftwoodError } from './errors.js';

/** Everything Driftwood reads from the environment, typed. Built once at the CLI/server entry and passed down. */
export interface Config {
  home: string;
  lakeUri: string;
  warehouseUrl: string;
  mlflow: { trackingUri: string; experiment: string; modelName: string };
  http: { timeoutMs: number; retries: number; backoffMs: number };
  api: { host: string; port: number };
  piiKey: string | undefined;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
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
  const modelName = readString(env, 'DRIFTWOOD_MODEL_NAME', 'churn');
  if (!/^[\w\-.]+$/.test(modelName)) fail('DRIFTWOOD_MODEL_NAME', 'letters, digits, _ - or .', modelName);
  return {
    home,
    lakeUri: readUrl(env, 'DRIFTWOOD_LAKE_URI', `file://${path.join(home, 'lake')}`, ['file:']),
    warehouseUrl: readUrl(env, 'DRIFTWOOD_WAREHOUSE_URL', `sqlite://${path.join(home, 'warehouse.db')}`, [
      'sqlite:',
      'postgres:',
      'postgresql:',
    ]),
    mlflow: {
      trackingUri: readUrl(env, 'MLFLOW_TRACKING_URI', 'http://127.0.0.1:5000', ['http:', 'https:']),
      experiment: readString(env, 'DRIFTWOOD_EXPERIMENT', 'driftwood-churn'),
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
    piiKey: readSecret(env, 'DRIFTWOOD_PII_KEY', cwd),
    logLevel: logLevel as Config['logLevel'],
  };
}

/** Merges a `.env` file (if present) under the real environment: real variables win. */
export function environmentWithDotenv(cwd: string = process.cwd(), env: Env = process.env): Env {
  const file = path.join(cwd, '.env');
  if (!existsSync(file)) return env;
  return { ...parseDotenv(readFileSync(file)), ...env };
}
