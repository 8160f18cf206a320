import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { hashPassword, parseCredentials } from '../../serving/src/auth/credentials.js';
import { mlflowClient, uniqueName } from '../support/env.js';
import { CHURN_FIELDS, registerTestModel, sampleCustomer } from '../support/serving-model.js';

const GOOD = `Basic ${Buffer.from('fuzz:fuzz-password-123').toString('base64')}`;

/**
 * Property: whatever arrives — random JSON, near-valid customers with random values, random headers
 * and content types — the API answers below 500. A 5xx here would be a crash path a caller can hit.
 */
describe('the prediction API never answers 5xx to random input', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    const mlflow = mlflowClient(inject('mlflowUri'));
    const modelName = uniqueName('churn-fuzz');
    await registerTestModel(mlflow, {
      modelName,
      experiment: uniqueName('exp-fuzz'),
      seed: 41,
      alias: 'champion',
    });
    const credentials = parseCredentials(
      `fuzz:predict,admin:${await hashPassword('fuzz-password-123', { N: 1024, r: 8, p: 1 })}`,
    );
    app = await buildApp({
      mlflow,
      modelName,
      alias: 'champion',
      credentials,
      maxBatchRows: 20,
      rateLimitPerMinute: 1_000_000,
    });
    await app.ready();
  });
  afterAll(async () => app?.close());

  const field = fc.constantFrom(
    ...CHURN_FIELDS.numeric,
    ...CHURN_FIELDS.categorical,
    'customer_id',
    '__proto__',
    'constructor',
    '',
  );
  const value = fc.oneof(
    fc.jsonValue(),
    fc.double(),
    fc.constantFrom(1e308, -1e308, 0, -0, 1e-320, Number.MAX_SAFE_INTEGER),
    fc.string({ maxLength: 80 }),
  );
  const nearCustomer = fc
    .dictionary(field, value, { maxKeys: 6 })
    .map((over) => ({ ...sampleCustomer, ...over }));
  const body = fc.oneof(
    fc.jsonValue().map((v) => JSON.stringify(v)),
    nearCustomer.map((c) => JSON.stringify(c)),
    fc.array(nearCustomer, { maxLength: 25 }).map((rows) => JSON.stringify({ rows })),
    fc.string({ maxLength: 200 }),
  );
  const headers = fc.record({
    authorization: fc.oneof(fc.constant(GOOD), fc.string({ maxLength: 60 }), fc.constant('Basic Og==')),
    'content-type': fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'text/plain',
      'application/xml',
      '',
    ),
  });
  const target = fc.constantFrom(
    { method: 'POST', url: '/v1/predict' },
    { method: 'POST', url: '/v1/predict/batch' },
    { method: 'GET', url: '/v1/model' },
    { method: 'GET', url: '/metrics' },
    { method: 'POST', url: '/v1/predict?x=1' },
  ) as fc.Arbitrary<{ method: 'GET' | 'POST'; url: string }>;

  it('over 3000 random requests', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(target, body, headers, async (t, payload, h) => {
        const res = await app.inject({
          method: t.method,
          url: t.url,
          ...(t.method === 'POST' ? { payload } : {}),
          headers: Object.fromEntries(Object.entries(h).filter(([, v]) => v !== '')),
        });
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        expect(res.statusCode, `${t.method} ${t.url} ${payload.slice(0, 200)} → ${res.body}`).toBeLessThan(
          500,
        );
      }),
      { numRuns: 3000, seed: 20261123 },
    );
    // The inputs reach every layer: successes, validation refusals and auth refusals all occur.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(100);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(100);
    expect(statuses.get(401) ?? 0).toBeGreaterThan(100);
  });
});
