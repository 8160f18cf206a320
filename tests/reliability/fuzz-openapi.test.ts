import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { hashPassword, parseCredentials } from '../../serving/src/auth/credentials.js';
import { mlflowClient, tempHome, uniqueName } from '../support/env.js';
import { atScale, recordRow } from '../support/reliability.js';
import { CHURN_FIELDS, registerTestModel, sampleCustomer } from '../support/serving-model.js';

const ADMIN = `Basic ${Buffer.from('fuzz-admin:fuzz-password-123').toString('base64')}`;
const PREDICT = `Basic ${Buffer.from('fuzz-predict:fuzz-password-456').toString('base64')}`;

interface Operation {
  method: string;
  path: string;
}

/**
 * Reliability: every operation the API documents in its OpenAPI document (read from the running
 * app, so a new route is fuzzed without editing this file) gets random path parameters, query
 * strings, bodies, content types and credentials. Goal: no answer is a 5xx and none leaks a stack
 * trace or a file path.
 */
describe('reliability: fuzzing every OpenAPI operation', () => {
  let app: FastifyInstance;
  let operations: Operation[];
  let modelName: string;

  beforeAll(async () => {
    const mlflow = mlflowClient(inject('mlflowUri'));
    modelName = uniqueName('churn-fuzz-openapi');
    await registerTestModel(mlflow, {
      modelName,
      experiment: uniqueName('exp-fuzz-openapi'),
      seed: 43,
      alias: 'champion',
    });
    const cost = { N: 1024, r: 8, p: 1 };
    const credentials = parseCredentials(
      [
        `fuzz-admin:predict,admin:${await hashPassword('fuzz-password-123', cost)}`,
        `fuzz-predict:predict:${await hashPassword('fuzz-password-456', cost)}`,
      ].join('\n'),
    );
    app = await buildApp({
      mlflow,
      modelName,
      alias: 'champion',
      credentials,
      maxBatchRows: 20,
      rateLimitPerMinute: 10_000_000,
      webhookSecret: 'fuzz-webhook-secret',
      predictionLog: { dir: `${tempHome('driftwood-fuzz-')}/predictions` },
    });
    await app.ready();
    const doc = app.swagger() as { paths: Record<string, Record<string, unknown>> };
    operations = Object.entries(doc.paths).flatMap(([p, methods]) =>
      Object.keys(methods)
        .filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))
        .map((m) => ({ method: m.toUpperCase(), path: p })),
    );
  });
  afterAll(async () => app?.close());

  const runs = atScale({ ci: 3000, full: 20_000 });

  it(`answers below 500 to ${runs} random requests over every operation`, async () => {
    expect(operations.length).toBeGreaterThan(10);
    const field = fc.constantFrom(
      ...CHURN_FIELDS.numeric,
      ...CHURN_FIELDS.categorical,
      'customer_id',
      'version',
      'alias',
      'rows',
      'reason',
      '__proto__',
      '',
    );
    const value = fc.oneof(
      fc.jsonValue(),
      fc.double(),
      fc.constantFrom(1e308, -1e308, 0, -0, Number.MAX_SAFE_INTEGER, '1', '999999', 'champion'),
      fc.string({ maxLength: 80 }),
    );
    const nearCustomer = fc
      .dictionary(field, value, { maxKeys: 6 })
      .map((over) => ({ ...sampleCustomer, ...over }));
    const body = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      nearCustomer.map((c) => JSON.stringify(c)),
      fc.array(nearCustomer, { maxLength: 25 }).map((rows) => JSON.stringify({ rows })),
      fc.dictionary(field, value, { maxKeys: 4 }).map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 200 }),
    );
    // Path parameters: the real names the API knows and anything else.
    const param = fc.oneof(
      fc.constantFrom('churn', 'btc', modelName, 'champion', 'challenger', '1', '999999', '..', '%00'),
      fc.string({ maxLength: 30 }).map(encodeURIComponent),
    );
    const query = fc.oneof(
      fc.constant(''),
      fc
        .dictionary(
          fc.constantFrom('hours', 'limit', 'dataset', 'version', 'since', 'x'),
          fc.oneof(fc.string({ maxLength: 20 }), fc.integer().map(String)),
          { maxKeys: 3 },
        )
        .map((q) => `?${new URLSearchParams(q).toString()}`),
    );
    const headers = fc.record({
      authorization: fc.oneof(
        fc.constant(ADMIN),
        fc.constant(PREDICT),
        fc.string({ maxLength: 60 }),
        fc.constant('Basic Og=='),
        fc.constant(''),
      ),
      'content-type': fc.constantFrom(
        'application/json',
        'application/json; charset=utf-8',
        'text/plain',
        'application/xml',
        '',
      ),
    });
    const operation = fc.constantFrom(...operations);

    const statuses = new Map<number, number>();
    const reached = new Set<string>();
    const failures: string[] = [];
    await fc.assert(
      fc.asyncProperty(
        operation,
        fc.array(param, { minLength: 3, maxLength: 3 }),
        query,
        body,
        headers,
        async (op, params, q, payload, h) => {
          let i = 0;
          const url = op.path.replace(/\{[^}]+\}/g, () => params[i++] as string) + q;
          const res = await app.inject({
            method: op.method as 'GET',
            url,
            ...(op.method === 'GET' ? {} : { payload }),
            headers: Object.fromEntries(Object.entries(h).filter(([, v]) => v !== '')),
          });
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          if (res.statusCode < 400) reached.add(`${op.method} ${op.path}`);
          const leak = /\bat [\w.<>]+ \(|node_modules|\/work\/|\.ts:\d+/.exec(res.body);
          if (res.statusCode >= 500 || leak)
            failures.push(`${op.method} ${url} → ${res.statusCode} ${res.body.slice(0, 200)}`);
        },
      ),
      { numRuns: runs, seed: 20261207 },
    );
    const fiveHundreds = [...statuses].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
    recordRow({
      check: 'fuzzing every OpenAPI route',
      goal: `0 5xx over >= 3000 requests`,
      measured: `${fiveHundreds} 5xx, ${failures.length - fiveHundreds} leaks over ${runs} requests to ${operations.length} operations (${reached.size} answered 2xx/3xx)`,
      ok: failures.length === 0,
    });
    expect([...new Set(failures.map((f) => f.replace(/[?].*? →/, ' →').slice(0, 140)))]).toEqual([]);
    // The inputs get past auth and validation: successes and refusals of each kind occur.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(50);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(50);
    expect(statuses.get(401) ?? 0).toBeGreaterThan(50);
  });
});
