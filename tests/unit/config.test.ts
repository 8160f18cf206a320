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

describe('DRIFTWOOD_WAREHOUSE_URL_FILE', () => {
  const withFile = async (content: string) => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const dir = await mkdtemp(path.join(tmpdir(), 'dw-warehouse-'));
    const file = path.join(dir, 'warehouse_url');
    await writeFile(file, content);
    return file;
  };

  it('reads the URL from the file, trimmed', async () => {
    const file = await withFile('postgres://warehouse:s3cret@postgres:5432/driftwood\n');
    expect(load({ DRIFTWOOD_WAREHOUSE_URL_FILE: file }).warehouseUrl).toBe(
      'postgres://warehouse:s3cret@postgres:5432/driftwood',
    );
  });

  it('names the setting, never the secret, when the file holds no valid URL', async () => {
    const file = await withFile('mysql://warehouse:s3cret@db/x');
    let message = '';
    try {
      load({ DRIFTWOOD_WAREHOUSE_URL_FILE: file });
    } catch (err) {
      expect(err).toBeInstanceOf(DriftwoodError);
      message = (err as Error).message;
    }
    expect(message).toMatch(/DRIFTWOOD_WAREHOUSE_URL_FILE/);
    expect(message).not.toMatch(/s3cret/);
  });
});

describe('DRIFTWOOD_INGEST_ALERT_WEBHOOK_FILE', () => {
  it('reads the webhook URL from the file', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'dw-hook-')), 'slack');
    await writeFile(file, 'https://hooks.example.org/services/T/B/X\n');
    expect(load({ DRIFTWOOD_INGEST_ALERT_WEBHOOK_FILE: file }).ingestAlertWebhook).toBe(
      'https://hooks.example.org/services/T/B/X',
    );
    await writeFile(file, 'not a url');
    expect(() => load({ DRIFTWOOD_INGEST_ALERT_WEBHOOK_FILE: file })).toThrow(
      /DRIFTWOOD_INGEST_ALERT_WEBHOOK_FILE: expected a file holding a URL starting with http:\/\/ or https:\/\/, got '<file content>'/,
    );
  });
});
