import type { MlflowClient } from '@driftwood/tasks';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { hashPassword, parseCredentials } from '../../serving/src/auth/credentials.js';
import { mlflowClient, uniqueName } from '../support/env.js';
import {
  CHURN_FIELDS,
  type RegisteredTestModel,
  registerTestModel,
  sampleCustomer,
} from '../support/serving-model.js';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const PREDICTOR = basic('predictor', 'predictor-password-1');
const OPERATOR = basic('operator', 'operator-password-1');
const WRONG = basic('predictor', 'not-the-password');
const STRANGER = basic('nobody', 'predictor-password-1');

describe('the prediction API over a model registered in a live MLflow server', () => {
  let mlflow: MlflowClient;
  let modelName: string;
  let registered: RegisteredTestModel;
  let app: FastifyInstance;
  let credentials: ReturnType<typeof parseCredentials>;
  const logLines: string[] = [];

  beforeAll(async () => {
    mlflow = mlflowClient(inject('mlflowUri'));
    modelName = uniqueName('churn-api');
    registered = await registerTestModel(mlflow, {
      modelName,
      experiment: uniqueName('exp-api'),
      seed: 3,
      alias: 'champion',
    });
    credentials = parseCredentials(
      [
        `predictor:predict:${await hashPassword('predictor-password-1')}`,
        `operator:admin:${await hashPassword('operator-password-1')}`,
      ].join('\n'),
    );
    const pino = (await import('pino')).default;
    const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
    app = await buildApp({
      mlflow,
      modelName,
      alias: 'champion',
      credentials,
      metricsAuth: true,
      maxBatchRows: 5,
      logger,
    });
    // A route that fails the way a bug would, to prove 5xx details never reach the caller.
    app.get('/v1/boom', { config: { role: 'predict' } }, async () => {
      throw new Error('connection string postgres://admin:s3cret@db/prod refused');
    });
    await app.ready();
  });

  afterAll(async () => {
    await app?.close();
  });

  const post = (url: string, payload: unknown, authorization = PREDICTOR) =>
    app.inject({ method: 'POST', url, payload: payload as object, headers: { authorization } });

  describe('routes', () => {
    it('predicts one customer with the champion and the response holds only the documented fields', async () => {
      const res = await post('/v1/predict', sampleCustomer);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(Object.keys(body).sort()).toEqual(['label', 'model', 'probability']);
      expect(body.probability).toBeGreaterThan(0);
      expect(body.probability).toBeLessThan(1);
      expect(body.label).toBe(body.probability >= 0.5 ? 1 : 0);
      expect(body.model).toEqual({ name: modelName, version: registered.version, alias: 'champion' });
    });

    it('predicts a batch row by row, the same as one at a time', async () => {
      const rows = [
        sampleCustomer,
        { ...sampleCustomer, customer_id: 'C2', tenure_days: 900, plan: 'premium' },
        { plan: 'basic', region: 'east' },
      ];
      const res = await post('/v1/predict/batch', { rows });
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.count).toBe(3);
      for (const [i, row] of rows.entries()) {
        const one = (await post('/v1/predict', row)).json();
        expect(body.predictions[i].probability).toBeCloseTo(one.probability, 12);
      }
    });

    it('refuses a batch over the configured maximum, and an empty one', async () => {
      const big = await post('/v1/predict/batch', { rows: Array(6).fill(sampleCustomer) });
      expect(big.statusCode).toBe(400);
      expect(big.json().message).toBe('body.rows must hold at most 5 items');
      const empty = await post('/v1/predict/batch', { rows: [] });
      expect(empty.statusCode).toBe(400);
      expect(empty.json().message).toBe('body.rows must hold at least 1 items');
    });

    it('describes the served model: version, run, data snapshot, holdout metrics and inputs', async () => {
      const res = await app.inject({
        method: 'GET',
        url: '/v1/model',
        headers: { authorization: PREDICTOR },
      });
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body).toMatchObject({
        name: modelName,
        version: registered.version,
        alias: 'champion',
        run_id: registered.runId,
        model_id: registered.modelId,
        data_digest: 'digest-3',
        cutoff: '2026-11-01T00:00:00.000Z',
        challenger: null,
      });
      expect(body.metrics.holdout_roc_auc).toBeCloseTo(registered.rocAuc, 10);
      expect(body.metrics.holdout_log_loss).toBe(0.4);
      expect(body.inputs.categorical).toEqual(CHURN_FIELDS.categorical);
      expect([...body.inputs.numeric].sort()).toEqual([...CHURN_FIELDS.numeric].sort());
    });

    it('is live and ready, openly', async () => {
      expect((await app.inject({ method: 'GET', url: '/health/live' })).json()).toEqual({ status: 'ok' });
      const ready = await app.inject({ method: 'GET', url: '/health/ready' });
      expect(ready.statusCode).toBe(200);
      expect(ready.json().model.version).toBe(registered.version);
    });

    it('publishes an OpenAPI document whose request schema lists the model’s fields', async () => {
      const res = await app.inject({ method: 'GET', url: '/docs/json' });
      expect(res.statusCode).toBe(200);
      const doc = res.json();
      const body = doc.paths['/v1/predict'].post.requestBody.content['application/json'].schema;
      expect(Object.keys(body.properties)).toEqual(
        expect.arrayContaining([...CHURN_FIELDS.numeric, ...CHURN_FIELDS.categorical, 'customer_id']),
      );
      expect(body.required).toEqual(CHURN_FIELDS.categorical);
      expect(doc.paths['/v1/predict/batch']).toBeDefined();
      expect(doc.components.securitySchemes.basicAuth).toEqual({ type: 'http', scheme: 'basic' });
      const ui = await app.inject({ method: 'GET', url: '/docs' });
      expect(ui.statusCode).toBe(200);
      expect(ui.headers['content-type']).toMatch(/text\/html/);
      expect(ui.body).toMatch(/swagger/i);
    });

    it('exposes Prometheus metrics: requests, latency, errors by code, predictions by version and label, loads', async () => {
      await post('/v1/predict', { ...sampleCustomer, plan: 1 });
      await app.inject({ method: 'GET', url: '/no/such/route' });
      await app.inject({ method: 'GET', url: '/docs/json' });
      const res = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: OPERATOR } });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/text\/plain/);
      const text = res.body;
      expect(text).toMatch(
        /driftwood_http_requests_total\{method="POST",route="\/v1\/predict",status_code="200"\} \d+/,
      );
      expect(text).toMatch(
        /driftwood_http_request_duration_seconds_bucket\{le="0.005",method="POST",route="\/v1\/predict"\}/,
      );
      expect(text).toMatch(/driftwood_http_errors_total\{status_code="400"\} [1-9]/);
      // Unknown URLs are counted under one label, never their raw path; Swagger UI's routes by pattern.
      expect(text).toMatch(
        /driftwood_http_requests_total\{method="GET",route="unmatched",status_code="404"\} [1-9]/,
      );
      expect(text).not.toContain('/no/such/route');
      expect(text).toMatch(
        /driftwood_http_requests_total\{method="GET",route="\/docs\/json",status_code="200"\} [1-9]/,
      );
      expect(text).toMatch(
        new RegExp(
          `driftwood_predictions_total\\{dataset="${modelName}",model_name="${modelName}",model_version="${registered.version}",alias="champion",served="true",label="[01]"\\} [1-9]`,
        ),
      );
      expect(text).toContain(
        `driftwood_model_loads_total{dataset="${modelName}",alias="champion",version="${registered.version}",outcome="success"} 1`,
      );
    });
  });

  describe('bad input gets a 4xx that names the problem', () => {
    it.each([
      [
        'a number as text',
        { ...sampleCustomer, tenure_days: 'abc' },
        'body.tenure_days must be a number or null',
      ],
      ['a category as number', { ...sampleCustomer, plan: 7 }, 'body.plan must be a string'],
      ['an unknown field', { ...sampleCustomer, colour: 'blue' }, 'body.colour is not a known field'],
      ['a missing category', { tenure_days: 3, region: 'north' }, 'body.plan is required'],
      [
        'an over-long category',
        { ...sampleCustomer, region: 'x'.repeat(65) },
        'body.region must be a string of at most 64 characters',
      ],
      ['an array body', [sampleCustomer], 'body must be an object'],
      [
        'a boolean number',
        { ...sampleCustomer, sessions_7d: true },
        'body.sessions_7d must be a number or null',
      ],
    ])('%s', async (_kind, payload, message) => {
      const res = await post('/v1/predict', payload);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({ error: 'bad_request', message });
    });

    // Values no feature can take: a negative count or duration (training never saw one), or one
    // past any plausible range. Before, the API scored them.
    it.each([
      [
        'a negative duration',
        { ...sampleCustomer, tenure_days: -5 },
        /^body\.tenure_days must be at least 0 \(training saw /,
      ],
      [
        'an absurd count',
        { ...sampleCustomer, sessions_30d: 1e9 },
        /^body\.sessions_30d must be at most [\d.]+ \(training saw /,
      ],
    ])('refuses %s, naming the field and the training range', async (_kind, payload, message) => {
      const res = await post('/v1/predict', payload);
      expect(res.statusCode).toBe(400);
      expect(res.json().message).toMatch(message);
    });

    it('names the batch row and field', async () => {
      const res = await post('/v1/predict/batch', {
        rows: [sampleCustomer, { ...sampleCustomer, region: 3 }],
      });
      expect(res.statusCode).toBe(400);
      expect(res.json().message).toBe('body.rows.1.region must be a string');
    });

    it('refuses broken JSON (400), a body over 64 KB (413) and a non-JSON content type (415)', async () => {
      const broken = await app.inject({
        method: 'POST',
        url: '/v1/predict',
        payload: '{"plan":',
        headers: { 'content-type': 'application/json', authorization: PREDICTOR },
      });
      expect(broken.statusCode).toBe(400);
      const big = await post('/v1/predict/batch', {
        rows: [{ ...sampleCustomer, customer_id: 'x'.repeat(70_000) }],
      });
      expect(big.statusCode).toBe(413);
      expect(big.json().error).toBe('body_too_large');
      const text = await app.inject({
        method: 'POST',
        url: '/v1/predict',
        payload: '<plan>basic</plan>',
        headers: { 'content-type': 'application/xml', authorization: PREDICTOR },
      });
      expect(text.statusCode).toBe(415);
    });

    it('masks a 5xx: a generic message to the caller, the details only in the log', async () => {
      const res = await app.inject({ method: 'GET', url: '/v1/boom', headers: { authorization: PREDICTOR } });
      expect(res.statusCode).toBe(500);
      expect(res.json()).toEqual({
        error: 'internal_error',
        message: 'the server could not answer; the error is logged',
      });
      expect(res.body).not.toContain('s3cret');
      expect(logLines.join('')).toContain('connection string');
    });
  });

  describe('auth: HTTP Basic with roles', () => {
    const routes: { method: 'GET' | 'POST'; url: string; role: 'predict' | 'admin'; payload?: unknown }[] = [
      { method: 'POST', url: '/v1/predict', role: 'predict', payload: sampleCustomer },
      { method: 'POST', url: '/v1/predict/batch', role: 'predict', payload: { rows: [sampleCustomer] } },
      { method: 'GET', url: '/v1/model', role: 'predict' },
      { method: 'POST', url: '/v1/admin/reload', role: 'admin', payload: {} },
      { method: 'GET', url: '/metrics', role: 'admin' },
    ];
    const cases = routes.flatMap((r) => {
      const right = r.role === 'predict' ? PREDICTOR : OPERATOR;
      const other = r.role === 'predict' ? OPERATOR : PREDICTOR;
      return (
        [
          ['no credentials', undefined, 401],
          ['a wrong password', WRONG, 401],
          ['an unknown user', STRANGER, 401],
          ['a malformed header', 'Bearer abc', 401],
          ['the wrong role', other, 403],
          ['the right role', right, 200],
        ] as const
      ).map(
        ([what, authorization, status]) =>
          [`${r.method} ${r.url} with ${what} → ${status}`, r, authorization, status] as const,
      );
    });

    it.each(cases)('%s', async (_name, route, authorization, status) => {
      const res = await app.inject({
        method: route.method,
        url: route.url,
        ...(route.payload !== undefined ? { payload: route.payload as object } : {}),
        headers: authorization ? { authorization } : {},
      });
      expect(res.statusCode).toBe(status);
      if (status === 401) expect(res.headers['www-authenticate']).toMatch(/^Basic realm=/);
    });

    it.each(['/health/live', '/health/ready', '/docs/json'])('%s is open', async (url) => {
      expect((await app.inject({ method: 'GET', url })).statusCode).toBe(200);
    });

    it('never writes a password or an Authorization header to the log', () => {
      const all = logLines.join('');
      expect(all).not.toContain('predictor-password-1');
      expect(all).not.toContain(PREDICTOR.slice(6));
      expect(all).not.toMatch(/authorization/i);
    });
  });

  describe('protection', () => {
    it('sends the REST set of secure headers on JSON answers and the browser set on /docs', async () => {
      const res = await app.inject({ method: 'GET', url: '/health/live' });
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['content-security-policy']).toBe("default-src 'none'; frame-ancestors 'none'");
      expect(res.headers['strict-transport-security']).toMatch(/max-age=/);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['x-powered-by']).toBeUndefined();
      // Headers about how a browser treats a document are left to the pages a browser renders.
      expect(res.headers['cross-origin-opener-policy']).toBeUndefined();
      const docs = await app.inject({ method: 'GET', url: '/docs/json' });
      expect(docs.headers['cross-origin-opener-policy']).toBe('same-origin');
      expect(docs.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(docs.headers['content-security-policy']).toMatch(/^default-src 'self'/);
    });

    it('limits the rate per credential: one user’s 429 does not block another', async () => {
      const limited = await buildApp({
        mlflow,
        modelName,
        alias: 'champion',
        credentials,
        rateLimitPerMinute: 3,
      });
      await limited.ready();
      try {
        const call = (authorization: string) =>
          limited.inject({ method: 'GET', url: '/v1/model', headers: { authorization } });
        for (let i = 0; i < 3; i++) {
          const ok = await call(PREDICTOR);
          expect(ok.statusCode).toBe(200);
          expect(ok.headers.ratelimit).toMatch(new RegExp(`^limit=3, remaining=${2 - i}, reset=\\d+$`));
        }
        const over = await call(PREDICTOR);
        expect(over.statusCode).toBe(429);
        expect(over.json().error).toBe('rate_limited');
        expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
        expect(over.headers.ratelimit).toMatch(/^limit=3, remaining=0, reset=\d+$/);
        expect(over.headers['ratelimit-policy']).toBe('3;w=60');
        // A different credential (the operator has no predict role: 403, not 429) has its own budget.
        expect((await call(OPERATOR)).statusCode).toBe(403);
        // Health checks are never rate limited.
        for (let i = 0; i < 5; i++)
          expect((await limited.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
      } finally {
        await limited.close();
      }
    });

    it('sheds load with 503 and Retry-After when under pressure, but keeps health checks answering', async () => {
      // A heap ceiling of 1 byte is always exceeded: the overload path without having to overload the machine.
      const pressed = await buildApp({
        openAccess: true,
        mlflow,
        modelName,
        alias: 'champion',
        pressure: { maxHeapUsedBytes: 1, retryAfterSeconds: 7, sampleIntervalMs: 5 },
      });
      await pressed.ready();
      try {
        await new Promise((r) => setTimeout(r, 50));
        const res = await pressed.inject({ method: 'POST', url: '/v1/predict', payload: sampleCustomer });
        expect(res.statusCode).toBe(503);
        expect(res.headers['retry-after']).toBe('7');
        expect(res.json().error).toBe('overloaded');
        expect((await pressed.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
      } finally {
        await pressed.close();
      }
    });
  });
});
