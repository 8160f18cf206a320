import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { hashPassword, parseCredentials } from '../../serving/src/auth/credentials.js';
import { http, mlflowClient, ROOT, tempHome, uniqueName } from '../support/env.js';
import { eventually, registerTestModel } from '../support/serving-model.js';

const AIRFLOW_PORT = 7295;
const AIRFLOW = `http://127.0.0.1:${AIRFLOW_PORT}`;
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

/** `POST /v1/train` against a real Airflow 3 API server (scripts/airflow-service.sh) with the project's DAGs. */
describe('POST /v1/train starts the retraining DAG through Airflow’s REST API', () => {
  let home: string;
  let password: string;
  let app: FastifyInstance;
  let credentials: ReturnType<typeof parseCredentials>;
  let modelName: string;
  const env = () => ({ ...process.env, DRIFTWOOD_HOME: home });

  const airflowToken = async () => {
    const res = await fetch(`${AIRFLOW}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'driftwood', password }),
    });
    return ((await res.json()) as { access_token: string }).access_token;
  };

  beforeAll(async () => {
    home = tempHome('driftwood-airflow-train-');
    // A migrated empty database from an earlier run saves minutes of migrations, when there is one.
    const template = path.join(ROOT, '.driftwood', 'cache', 'airflow-empty.db');
    if (existsSync(template)) {
      mkdirSync(path.join(home, 'cache'), { recursive: true });
      copyFileSync(template, path.join(home, 'cache', 'airflow-empty.db'));
    }
    execFileSync(path.join(ROOT, 'scripts', 'airflow-service.sh'), ['start', String(AIRFLOW_PORT)], {
      env: env(),
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    password = JSON.parse(
      readFileSync(path.join(home, 'secrets', 'airflow-passwords.json'), 'utf8'),
    ).driftwood;
    // The DAG processor must have parsed the DAG before a run can be created.
    await eventually(async () => {
      const res = await fetch(`${AIRFLOW}/api/v2/dags/churn_retrain`, {
        headers: { authorization: `Bearer ${await airflowToken()}` },
      });
      return res.status === 200 ? true : undefined;
    }, 240_000);
    credentials = parseCredentials(
      [
        `ops:admin:${await hashPassword('ops-password-123', { N: 1024, r: 8, p: 1 })}`,
        `app:predict:${await hashPassword('app-password-123', { N: 1024, r: 8, p: 1 })}`,
      ].join('\n'),
    );
    const mlflow = mlflowClient(inject('mlflowUri'));
    modelName = uniqueName('churn-train');
    await registerTestModel(mlflow, {
      modelName,
      experiment: uniqueName('exp-train'),
      seed: 81,
      alias: 'champion',
    });
    app = await buildApp({
      mlflow,
      modelName,
      alias: 'champion',
      credentials,
      airflow: { baseUrl: AIRFLOW, username: 'driftwood', password, dagId: 'churn_retrain', http },
    });
    await app.ready();
  });

  afterAll(async () => {
    await app?.close();
    if (home)
      execFileSync(path.join(ROOT, 'scripts', 'airflow-service.sh'), ['stop'], {
        env: env(),
        stdio: 'inherit',
      });
  });

  it('an admin starts a run; Airflow holds it with the reason in its conf', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/train',
      payload: { reason: 'drift on tenure_days' },
      headers: { authorization: basic('ops', 'ops-password-123') },
    });
    expect(res.statusCode).toBe(202);
    const run = res.json();
    expect(run).toMatchObject({ dag_id: 'churn_retrain', state: 'queued' });
    expect(run.dag_run_id).toMatch(/^api__\d{4}-\d{2}-\d{2}T/);
    const stored = await fetch(
      `${AIRFLOW}/api/v2/dags/churn_retrain/dagRuns/${encodeURIComponent(run.dag_run_id)}`,
      {
        headers: { authorization: `Bearer ${await airflowToken()}` },
      },
    );
    expect(stored.status).toBe(200);
    expect(((await stored.json()) as { conf: unknown }).conf).toEqual({
      reason: 'drift on tenure_days',
      requested_by: 'ops',
    });
  });

  it('needs the admin role (403 for predict, 401 without credentials) and refuses unknown body fields', async () => {
    const asApp = await app.inject({
      method: 'POST',
      url: '/v1/train',
      payload: {},
      headers: { authorization: basic('app', 'app-password-123') },
    });
    expect(asApp.statusCode).toBe(403);
    expect((await app.inject({ method: 'POST', url: '/v1/train', payload: {} })).statusCode).toBe(401);
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/train',
      payload: { dag: 'other' },
      headers: { authorization: basic('ops', 'ops-password-123') },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toBe('body.dag is not a known field');
  });

  it('answers 502 naming the setting when Airflow refuses the login', async () => {
    const wrong = await buildApp({
      mlflow: mlflowClient(inject('mlflowUri')),
      modelName,
      alias: 'champion',
      credentials,
      airflow: { baseUrl: AIRFLOW, username: 'driftwood', password: 'wrong', dagId: 'churn_retrain', http },
    });
    await wrong.ready();
    try {
      const res = await wrong.inject({
        method: 'POST',
        url: '/v1/train',
        payload: {},
        headers: { authorization: basic('ops', 'ops-password-123') },
      });
      expect(res.statusCode).toBe(502);
      expect(res.json()).toEqual({
        error: 'airflow_error',
        message:
          'Airflow refused the login (HTTP 401): check DRIFTWOOD_AIRFLOW_USER and DRIFTWOOD_AIRFLOW_PASSWORD',
      });
    } finally {
      await wrong.close();
    }
  });
});
