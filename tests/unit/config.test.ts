import { DriftwoodError, loadConfig } from '@driftwood/tasks';
import { describe, expect, it } from 'vitest';

const load = (env: Record<string, string>) => loadConfig(env, '/srv/app');

describe('loadConfig', () => {
  it('uses the embedded defaults when nothing is set', () => {
    const c = load({});
    expect(c.home).toBe('/srv/app/.driftwood');
    expect(c.lakeUri).toBe('file:///srv/app/.driftwood/lake');
    expect(c.warehouseUrl).toBe('sqlite:///srv/app/.driftwood/warehouse.db');
    expect(c.mlflow.trackingUri).toBe('http://127.0.0.1:5000');
    expect(c.api.port).toBe(8080);
  });

  it.each([
    [
      'MLFLOW_TRACKING_URI',
      'localhost:5000',
      /MLFLOW_TRACKING_URI: expected a URL starting with http:\/\/ or https:\/\//,
    ],
    ['MLFLOW_TRACKING_URI', 'ftp://x', /MLFLOW_TRACKING_URI/],
    [
      'DRIFTWOOD_WAREHOUSE_URL',
      'mysql://x',
      /DRIFTWOOD_WAREHOUSE_URL: expected a URL starting with sqlite:\/\/ or postgres:\/\//,
    ],
    ['DRIFTWOOD_API_PORT', 'eighty', /DRIFTWOOD_API_PORT: expected an integer from 0 to 65535, got 'eighty'/],
    ['DRIFTWOOD_API_PORT', '70000', /DRIFTWOOD_API_PORT/],
    ['DRIFTWOOD_HTTP_RETRIES', '-1', /DRIFTWOOD_HTTP_RETRIES/],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL: expected one of fatal, error/],
    ['DRIFTWOOD_MODEL_NAME', 'has space', /DRIFTWOOD_MODEL_NAME/],
    ['DRIFTWOOD_HOME', '  ', /DRIFTWOOD_HOME: expected a non-empty value/],
    [
      'DRIFTWOOD_PII_KEY_FILE',
      '/nonexistent/key',
      /DRIFTWOOD_PII_KEY_FILE: expected the path of a readable file/,
    ],
  ])('rejects %s=%j with a message naming it', (name, value, message) => {
    let caught: unknown;
    try {
      load({ [name]: value });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DriftwoodError);
    expect((caught as DriftwoodError).code).toBe('CONFIG_INVALID');
    expect((caught as DriftwoodError).message).toMatch(message);
    expect((caught as DriftwoodError).exitCode).toBe(2);
  });

  it('strips a trailing slash from URLs', () => {
    expect(load({ MLFLOW_TRACKING_URI: 'http://mlflow:5000/' }).mlflow.trackingUri).toBe(
      'http://mlflow:5000',
    );
  });
});
