import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '@driftwood/tasks';
import { describe, expect, it } from 'vitest';
import { splitCredentials } from '../../tasks/src/log-loki.js';

const load = (env: Record<string, string>) => loadConfig(env, '/srv/app');

describe('the Loki settings', () => {
  it('are off unless DRIFTWOOD_LOKI_URL is set; then batch every second with a 5 s timeout', () => {
    expect(load({}).loki).toBeUndefined();
    expect(load({ DRIFTWOOD_LOKI_URL: 'http://loki:3100/' }).loki).toEqual({
      url: 'http://loki:3100',
      batchSeconds: 1,
      timeoutMs: 5_000,
    });
    expect(
      load({
        DRIFTWOOD_LOKI_URL: 'https://logs.example',
        DRIFTWOOD_LOKI_BATCH_SECONDS: '10',
        DRIFTWOOD_LOKI_TIMEOUT_MS: '2000',
      }).loki,
    ).toEqual({ url: 'https://logs.example', batchSeconds: 10, timeoutMs: 2_000 });
  });

  it.each([
    [
      'DRIFTWOOD_LOKI_URL',
      'loki:3100',
      /DRIFTWOOD_LOKI_URL: expected a URL starting with http:\/\/ or https:\/\//,
    ],
    ['DRIFTWOOD_LOKI_BATCH_SECONDS', '0', /DRIFTWOOD_LOKI_BATCH_SECONDS: expected an integer from 1 to 60/],
    ['DRIFTWOOD_LOKI_TIMEOUT_MS', 'soon', /DRIFTWOOD_LOKI_TIMEOUT_MS/],
  ])('%s=%s is refused, naming the setting', (name, value, message) => {
    expect(() => load({ DRIFTWOOD_LOKI_URL: 'http://loki:3100', [name]: value })).toThrow(message);
  });

  it('reads a URL that carries a password from DRIFTWOOD_LOKI_URL_FILE', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'loki-url-')), 'url');
    writeFileSync(file, 'https://tenant:s3cret@logs.example\n');
    expect(load({ DRIFTWOOD_LOKI_URL_FILE: file }).loki?.url).toBe('https://tenant:s3cret@logs.example');
  });

  it('names the DAG run Airflow gives a step, and nothing outside Airflow', () => {
    expect(load({ AIRFLOW_CTX_DAG_RUN_ID: 'manual__2026-12-07T10:00:00+00:00' }).dagRunId).toBe(
      'manual__2026-12-07T10:00:00+00:00',
    );
    expect(load({}).dagRunId).toBeUndefined();
  });
});

describe('splitCredentials', () => {
  it.each([
    ['http://loki:3100', { url: 'http://loki:3100/' }],
    ['http://loki:3100/prefix/', { url: 'http://loki:3100/prefix/' }],
    [
      'https://tenant%40org:p%3Ass@logs.example/loki',
      { url: 'https://logs.example/loki/', basicAuth: { username: 'tenant@org', password: 'p:ss' } },
    ],
  ])('%s: a URL fetch takes, and Basic auth from its user info', (raw, expected) => {
    expect(splitCredentials(raw)).toEqual(expected);
  });
});
