import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MlflowClient } from '@driftwood/tasks';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { type CredentialStore, hashPassword, parseCredentials } from '../../serving/src/auth/credentials.js';
import { InFlightGate } from '../../serving/src/plugins/shed-load.js';
import { mlflowClient, uniqueName } from '../support/env.js';
import { registerTestModel, sampleCustomer } from '../support/serving-model.js';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const ANA = basic('ana', 'ana-password-1');
const BEN = basic('ben', 'ben-password-1');
const CAROL = basic('carol', 'carol-password-1');

/** A counter's value from the app's own registry. */
async function counter(app: FastifyInstance, name: string, labels: Record<string, string> = {}) {
  const metric = await app.metrics.registry.getSingleMetric(name)?.get();
  return (metric?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    .reduce((sum, v) => sum + v.value, 0);
}

/**
 * Issue 20, problem 3: the API sheds load and auth work before they pile up. Failed logins are
 * limited per user and per address (they were answered 401 without end: 197 in 10 s); a cold
 * credential cache runs scrypt once per credential however many requests arrive at once (it ran
 * once per request: 256 of them timed out); and requests past `maxInFlight` get a fast 503 with
 * Retry-After (nothing was shed short of a 1 s event-loop lag).
 */
describe('the API under overload and password guessing', () => {
  let mlflow: MlflowClient;
  let modelName: string;
  let credentials: CredentialStore;
  const apps: FastifyInstance[] = [];

  const app = async (extra: Parameters<typeof buildApp>[0] extends infer O ? Partial<O> : never) => {
    const a = await buildApp({ mlflow, modelName, alias: 'champion', credentials, ...extra });
    apps.push(a);
    await a.ready();
    return a;
  };

  beforeAll(async () => {
    mlflow = mlflowClient(inject('mlflowUri'));
    modelName = uniqueName('churn-overload');
    await registerTestModel(mlflow, {
      modelName,
      experiment: uniqueName('exp-overload'),
      seed: 13,
      alias: 'champion',
    });
    // The default scrypt cost: a check takes long enough for concurrent requests to overlap it.
    credentials = parseCredentials(
      [
        `ana:predict:${await hashPassword('ana-password-1')}`,
        `ben:predict:${await hashPassword('ben-password-1')}`,
        `carol:predict:${await hashPassword('carol-password-1')}`,
      ].join('\n'),
    );
  });

  afterAll(async () => {
    for (const a of apps) await a.close();
  });

  const predict = (a: FastifyInstance, authorization: string, remoteAddress = '10.0.0.1') =>
    a.inject({
      method: 'POST',
      url: '/v1/predict',
      payload: sampleCustomer,
      headers: { authorization },
      remoteAddress,
    });

  it('answers 429 with Retry-After past 10 failed logins from one address, without running scrypt', async () => {
    const a = await app({ maxFailedLogins: 10 });
    const attacker = '10.0.0.66';
    // Ana logs in from the attacker's address before the guessing starts; her client stays in.
    expect((await predict(a, ANA, attacker)).statusCode).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++)
      statuses.push((await predict(a, basic(`user${i % 3}`, `guess-${i}`), attacker)).statusCode);
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses.slice(10)).toEqual(Array(20).fill(429));
    const refused = await predict(a, basic('ben', 'guess-31'), attacker);
    expect(refused.json().error).toBe('too_many_failed_logins');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    // Only the ten allowed guesses paid scrypt (plus Ana's one success).
    expect(await counter(a, 'driftwood_auth_password_checks_total', { outcome: 'failed' })).toBe(10);
    // A right password still works for another user from another address, and Ana's verified
    // credential still works from the attacker's address.
    expect((await predict(a, BEN, '10.0.0.2')).statusCode).toBe(200);
    expect((await predict(a, ANA, attacker)).statusCode).toBe(200);
  });

  it('limits failed logins per user across addresses, and a success does not count', async () => {
    const a = await app({ maxFailedLogins: 10 });
    // A success first: it does not use up any of the ten.
    expect((await predict(a, CAROL, '10.1.0.1')).statusCode).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++)
      statuses.push((await predict(a, basic('carol', `guess-${i}`), `10.1.1.${i}`)).statusCode);
    expect(statuses).toEqual([...Array(10).fill(401), 429, 429]);
    // Carol's client, already verified, keeps working; Ben is not affected.
    expect((await predict(a, CAROL, '10.1.0.1')).statusCode).toBe(200);
    expect((await predict(a, BEN, '10.1.0.9')).statusCode).toBe(200);
  });

  it('lets no more than the limit of concurrent guesses run scrypt', async () => {
    const a = await app({ maxFailedLogins: 10 });
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => predict(a, basic('ana', `burst-${i}`), '10.2.0.1')),
    );
    const statuses = answers.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 401)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(40);
    expect(await counter(a, 'driftwood_auth_password_checks_total')).toBe(10);
  });

  it('runs scrypt once for 64 simultaneous first requests with the same credential', async () => {
    const a = await app({});
    const answers = await Promise.all(Array.from({ length: 64 }, () => predict(a, BEN)));
    expect(answers.map((r) => r.statusCode)).toEqual(Array(64).fill(200));
    expect(await counter(a, 'driftwood_auth_password_checks_total', { outcome: 'ok' })).toBe(1);
    expect(await counter(a, 'driftwood_auth_password_checks_total', { outcome: 'failed' })).toBe(0);
  });

  it('sheds a burst past maxInFlight with a fast 503 and Retry-After, and answers the rest', async () => {
    const a = await app({ maxInFlight: 4 });
    await a.listen({ host: '127.0.0.1', port: 0 });
    const { port } = a.server.address() as AddressInfo;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const call = (path: string, method: string, body?: string) =>
      new Promise<{ status: number; retryAfter?: string; body: string }>((resolve, reject) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            path,
            method,
            agent,
            headers: { authorization: ANA, 'content-type': 'application/json' },
          },
          (res) => {
            let text = '';
            res.on('data', (d) => {
              text += d;
            });
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body: text }),
            );
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    try {
      // 64 open connections (health checks are never shed), then a burst on all of them at once
      // with a credential not yet verified: the first few wait for scrypt, in flight.
      await Promise.all(Array.from({ length: 64 }, () => call('/health/live', 'GET')));
      const body = JSON.stringify(sampleCustomer);
      const burst = await Promise.all(Array.from({ length: 64 }, () => call('/v1/predict', 'POST', body)));
      const shed = burst.filter((r) => r.status === 503);
      expect(burst.filter((r) => r.status !== 503 && r.status !== 200)).toEqual([]);
      expect(shed.length).toBeGreaterThan(0);
      expect(burst.some((r) => r.status === 200)).toBe(true);
      for (const r of shed) {
        expect(r.retryAfter).toBe('1');
        expect(JSON.parse(r.body).error).toBe('overloaded');
      }
      expect(await counter(a, 'driftwood_http_shed_total')).toBe(shed.length);
      // Once the burst is over, requests are admitted again.
      expect((await call('/v1/predict', 'POST', body)).status).toBe(200);
    } finally {
      agent.destroy();
    }
  });
});

describe('InFlightGate', () => {
  it('counts requests pending and answered in this turn of the event loop, and forgets the turn', async () => {
    const gate = new InFlightGate(3);
    expect([gate.tryStart(), gate.tryStart(), gate.tryStart(), gate.tryStart()]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    gate.finish();
    // Answered in this turn: it still counts, as the requests queued behind it do.
    expect(gate.tryStart()).toBe(false);
    await new Promise((r) => setImmediate(r));
    expect(gate.inFlight).toBe(2);
    expect(gate.tryStart()).toBe(true);
    expect(gate.tryStart()).toBe(false);
  });
});
