import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashPassword } from '../../serving/src/auth/credentials.js';
import { mlflowClient, tempHome, uniqueName } from '../support/env.js';
import { eventually, registerTestModel, sampleCustomer, spawnServe } from '../support/serving-model.js';

const PORT = 7233;
const AUTH = `Basic ${Buffer.from('ops:cluster-password').toString('base64')}`;

/** One request on a connection of its own, so the primary spreads them across the workers. */
function call(method: string, url: string, body?: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port: PORT,
        path: url,
        method,
        agent: false,
        headers: {
          authorization: AUTH,
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Sum of a metric's samples whose labels include all of `labels`. */
function sample(metrics: string, name: string, labels: Record<string, string>): number {
  return metrics
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`))
    .filter((l) => Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

const childrenOf = (pid: number): number[] =>
  readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const ready = async () =>
  (await call('GET', '/health/ready').catch(() => undefined))?.status === 200 ? true : undefined;

/**
 * The real `driftwood serve` with DRIFTWOOD_API_WORKERS=2: a node:cluster primary and two API
 * workers on one port, whose metrics add up, who all hear of a registry refresh, and who are
 * replaced when one dies and stopped together on SIGTERM.
 */
describe('driftwood serve with two API workers', () => {
  const mlflow = mlflowClient(inject('mlflowUri'));
  const modelName = uniqueName('churn-cluster');
  let primary: ChildProcess;
  let home: string;
  let output: () => string = () => '';
  let exit: Promise<number | null>;
  let v1: string;
  let workers: number[] = [];

  /** Pids of the workers that logged `serve: listening` (pino JSON lines on stderr). */
  const listening = (): number[] =>
    output()
      .split('\n')
      .filter((l) => l.includes('"msg":"serve: listening"'))
      .map((l) => JSON.parse(l).pid as number);

  beforeAll(async () => {
    ({ version: v1 } = await registerTestModel(mlflow, {
      modelName,
      experiment: uniqueName('exp-cluster'),
      seed: 11,
      alias: 'champion',
    }));
    const hash = await hashPassword('cluster-password', { N: 1024, r: 8, p: 1 });
    home = tempHome('driftwood-cluster-');
    ({
      child: primary,
      output,
      exit,
    } = spawnServe({
      home,
      port: PORT,
      modelName,
      mlflowUri: inject('mlflowUri'),
      extraEnv: {
        DRIFTWOOD_API_WORKERS: '2',
        DRIFTWOOD_API_POLL_MS: '0',
        DRIFTWOOD_API_CREDENTIALS: `ops:predict,admin:${hash}`,
        DRIFTWOOD_PII_KEY: 'cluster-key-0123456789',
      },
    }));
    await eventually(ready, 60_000);
    // The first worker up answers already; the start-up is over once both logged they listen.
    await eventually(async () => (listening().length === 2 ? true : undefined));
  });

  afterAll(() => {
    for (const pid of workers) if (alive(pid)) process.kill(pid, 'SIGKILL');
    if (primary?.pid && alive(primary.pid)) {
      for (const pid of childrenOf(primary.pid)) process.kill(pid, 'SIGKILL');
      primary.kill('SIGKILL');
    }
  });

  it('starts a primary with two listening workers', () => {
    workers = childrenOf(primary.pid as number);
    expect(workers).toHaveLength(2);
    expect(new Set(listening())).toEqual(new Set(workers));
  });

  it('spreads fresh connections over the workers and sums their metrics', async () => {
    for (let i = 0; i < 60; i++) {
      const res = await call('POST', '/v1/predict', { ...sampleCustomer, customer_id: `cluster-c${i}` });
      expect(res.status).toBe(200);
    }
    for (let i = 0; i < 4; i++) {
      const { status, text } = await call('GET', '/metrics');
      expect(status).toBe(200);
      expect(
        sample(text, 'driftwood_http_requests_total', {
          method: 'POST',
          route: '/v1/predict',
          status_code: '200',
        }),
      ).toBe(60);
      expect(sample(text, 'driftwood_predictions_total', { served: 'true' })).toBe(60);
      // A gauge of 1 per worker: the same version served by both still reads 1, not 2.
      expect(sample(text, 'driftwood_model_served', { alias: 'champion', version: v1 })).toBe(1);
    }
    // Both workers append to the same hourly file; the customer ids are tokenised, never logged.
    const dir = path.join(home, 'predictions');
    const logged = await eventually(async () => {
      if (!existsSync(dir)) return undefined;
      const text = readdirSync(dir, { recursive: true, encoding: 'utf8' })
        .filter((f) => /^dt=[^/]+\/hr=[^/]+\/predictions\.jsonl$/.test(f))
        .map((f) => readFileSync(path.join(dir, f), 'utf8'))
        .join('');
      return text.trim().split('\n').length === 60 ? text : undefined;
    }, 10_000);
    for (const line of logged.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
    expect(logged).not.toMatch(/cluster-c\d/);
  });

  it('a reload asked of one worker reaches the other', async () => {
    const { version: v2 } = await registerTestModel(mlflow, {
      modelName,
      experiment: uniqueName('exp-cluster'),
      seed: 12,
    });
    await mlflow.setAlias(modelName, 'champion', v2);
    expect((await call('POST', '/v1/admin/reload', {})).status).toBe(200);
    // Polling is off: a worker the reload did not land on keeps the old version unless the
    // primary relays the refresh, so 20 fresh connections in a row must all see the new one.
    let seen: string[] = [];
    await eventually(async () => {
      seen = [];
      for (let i = 0; i < 20; i++) {
        const res = await call('GET', '/v1/model');
        seen.push(res.status === 200 ? JSON.parse(res.text).version : `status ${res.status}`);
      }
      return seen.every((v) => v === v2) ? true : undefined;
    }, 30_000).catch(() => undefined);
    expect(seen).toEqual(Array(20).fill(v2));
  });

  it('replaces a worker that dies', async () => {
    const [victim, survivor] = workers as [number, number];
    process.kill(victim, 'SIGKILL');
    const replaced = await eventually(async () => {
      const now = childrenOf(primary.pid as number);
      return now.length === 2 && !now.includes(victim) ? now : undefined;
    }, 30_000);
    expect(replaced).toContain(survivor);
    workers = replaced;
    const fresh = replaced.find((pid) => pid !== survivor) as number;
    await eventually(async () => (listening().includes(fresh) ? true : undefined), 30_000);
    await eventually(ready, 30_000);
    expect(output()).toContain('serve: a worker died');
  });

  it('stops the primary and every worker on SIGTERM, exiting 0', async () => {
    primary.kill('SIGTERM');
    const code = await Promise.race([exit, new Promise((r) => setTimeout(() => r('timeout'), 12_000))]);
    expect(code).toBe(0);
    for (const pid of workers) expect(alive(pid)).toBe(false);
  });
});
