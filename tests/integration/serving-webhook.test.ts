import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import path from 'node:path';
import type { MlflowClient } from '@driftwood/tasks';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { mlflowClient, ROOT, tempHome, uniqueName } from '../support/env.js';
import { eventually, registerTestModel, sampleCustomer } from '../support/serving-model.js';

const MLFLOW_PORT = 7290;
const API_PORT = 7291;
const SECRET = 'webhook-secret-0123456789';

/**
 * MLflow's registry webhook, delivered by a real MLflow server. It gets its own server because
 * delivering to http://127.0.0.1 must be allowed when the server starts
 * (MLFLOW_WEBHOOK_ALLOWED_SCHEMES, MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS), which the shared one does not do.
 */
describe('the MLflow registry webhook swaps the model without waiting for a poll', () => {
  let mlflow: MlflowClient;
  let app: FastifyInstance;
  let modelName: string;
  let experiment: string;
  let v1: string;
  const uri = `http://127.0.0.1:${MLFLOW_PORT}`;

  beforeAll(async () => {
    execFileSync(
      path.join(ROOT, 'scripts', 'mlflow.sh'),
      ['start', String(MLFLOW_PORT), tempHome('driftwood-mlflow-hooks-')],
      {
        stdio: 'inherit',
        env: {
          ...process.env,
          MLFLOW_WEBHOOK_ALLOWED_SCHEMES: 'http,https',
          MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS: 'true',
          // MLflow caches each event's subscribers for 60 s by default; a test cannot wait that long.
          MLFLOW_WEBHOOK_CACHE_TTL: '1',
        },
      },
    );
    mlflow = mlflowClient(uri);
    modelName = uniqueName('churn-hook');
    experiment = uniqueName('exp-hook');
    v1 = (await registerTestModel(mlflow, { modelName, experiment, seed: 51, alias: 'champion' })).version;
    app = await buildApp({
      openAccess: true,
      mlflow,
      modelName,
      alias: 'champion',
      pollMs: 0,
      webhookSecret: SECRET,
    });
    await app.listen({ host: '127.0.0.1', port: API_PORT });
    const res = await fetch(`${uri}/api/2.0/mlflow/webhooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        name: uniqueName('driftwood-api'),
        url: `http://127.0.0.1:${API_PORT}/v1/hooks/mlflow`,
        events: [{ entity: 'MODEL_VERSION_ALIAS', action: 'CREATED' }],
        secret: SECRET,
      }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    // Registering v1 filled MLflow's subscriber cache with "no webhook" for this event; an alias move
    // within the cache's TTL (1 s here) would not be delivered, so let that entry expire first.
    await new Promise((r) => setTimeout(r, 1500));
  });

  afterAll(async () => {
    await app?.close();
    execFileSync(path.join(ROOT, 'scripts', 'mlflow.sh'), ['stop', String(MLFLOW_PORT)], {
      stdio: 'inherit',
    });
  });

  const served = async () =>
    (await app.inject({ method: 'POST', url: '/v1/predict', payload: sampleCustomer })).json().model.version;

  it('moves to the new champion when MLflow reports the alias moved (polling is off)', async () => {
    expect(await served()).toBe(v1);
    const v2 = (await registerTestModel(mlflow, { modelName, experiment, seed: 52, alias: 'champion' }))
      .version;
    await eventually(async () => ((await served()) === v2 ? true : undefined), 60_000);
  });

  describe('refuses deliveries that are not MLflow’s', () => {
    const body = JSON.stringify({
      entity: 'model_version_alias',
      action: 'created',
      timestamp: new Date().toISOString(),
      data: { name: 'x', alias: 'champion', version: '1' },
    });
    const sign = (secret: string, id: string, ts: string) =>
      `v1,${createHmac('sha256', secret).update(`${id}.${ts}.${body}`).digest('base64')}`;
    const now = () => String(Math.floor(Date.now() / 1000));
    const send = (headers: Record<string, string>, payload = body) =>
      app.inject({
        method: 'POST',
        url: '/v1/hooks/mlflow',
        payload,
        headers: { 'content-type': 'application/json', ...headers },
      });

    it.each([
      ['no signature', () => ({ 'x-mlflow-delivery-id': 'd1', 'x-mlflow-timestamp': now() }), /are required/],
      [
        'a wrong secret',
        () => ({
          'x-mlflow-delivery-id': 'd1',
          'x-mlflow-timestamp': now(),
          'x-mlflow-signature': sign('guess', 'd1', now()),
        }),
        /does not match/,
      ],
      [
        'a replayed old delivery',
        () => {
          const old = String(Math.floor(Date.now() / 1000) - 3600);
          return {
            'x-mlflow-delivery-id': 'd1',
            'x-mlflow-timestamp': old,
            'x-mlflow-signature': sign(SECRET, 'd1', old),
          };
        },
        /more than 300 s from now/,
      ],
      [
        'a signature for another delivery id',
        () => ({
          'x-mlflow-delivery-id': 'd2',
          'x-mlflow-timestamp': now(),
          'x-mlflow-signature': sign(SECRET, 'd1', now()),
        }),
        /does not match/,
      ],
    ])('%s → 401', async (_what, headers, message) => {
      const res = await send(headers());
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ error: 'bad_signature' });
      expect(res.json().message).toMatch(message);
    });

    it('a tampered body → 401; a genuine delivery about another model is acknowledged, not acted on', async () => {
      const ts = now();
      const headers = {
        'x-mlflow-delivery-id': 'd9',
        'x-mlflow-timestamp': ts,
        'x-mlflow-signature': sign(SECRET, 'd9', ts),
      };
      expect((await send(headers, body.replace('"1"', '"2"'))).statusCode).toBe(401);
      const ok = await send(headers);
      expect(ok.statusCode).toBe(200);
      expect(ok.json()).toEqual({ accepted: true, refresh: false });
    });
  });
});
