import { afterAll, describe, expect, inject, it } from 'vitest';
import { closedLoop } from '../support/closed-loop.js';
import { mlflowClient, tempHome, uniqueName } from '../support/env.js';
import { eventually, registerTestModel, sampleCustomer, spawnServe } from '../support/serving-model.js';

const PORT = 7236;

/**
 * Issue 20, problem 2: a SIGTERM under keep-alive load reset the request in flight on every
 * connection (32 of 32), because closing destroyed connections that looked idle while their next
 * request was already on its way. With two API workers (node:cluster), 32 closed-loop connections
 * each sending predictions back to back: after the SIGTERM every request written is answered, 200
 * or 503 with `Connection: close`, none is lost, and the primary exits 0.
 */
describe('driftwood serve with two workers on SIGTERM under keep-alive load', () => {
  const kill: (() => void)[] = [];
  afterAll(() => {
    for (const k of kill) k();
  });

  it('loses no request', async () => {
    const mlflow = mlflowClient(inject('mlflowUri'));
    const modelName = uniqueName('churn-keepalive');
    await registerTestModel(mlflow, {
      modelName,
      experiment: uniqueName('exp-keepalive'),
      seed: 17,
      alias: 'champion',
    });
    const { child, exit, output } = spawnServe({
      home: tempHome('driftwood-keepalive-'),
      port: PORT,
      modelName,
      mlflowUri: inject('mlflowUri'),
      extraEnv: {
        DRIFTWOOD_API_WORKERS: '2',
        DRIFTWOOD_API_POLL_MS: '0',
        DRIFTWOOD_PII_KEY: 'keepalive-key-0123456789',
      },
    });
    kill.push(() => child.exitCode === null && child.kill('SIGKILL'));
    await eventually(async () => {
      const res = await fetch(`http://127.0.0.1:${PORT}/health/ready`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    }, 60_000);
    const load = closedLoop({
      port: PORT,
      connections: 32,
      method: 'POST',
      path: '/v1/predict',
      body: JSON.stringify(sampleCustomer),
    });
    // Under way on every connection before the signal lands.
    await eventually(async () => (load.sent() >= 320 ? true : undefined), 30_000);
    child.kill('SIGTERM');
    expect(await exit, output().slice(-3000)).toBe(0);
    const result = await load.stop();
    const lost = result.outcomes.filter((o) => o.kind === 'lost');
    expect(lost).toEqual([]);
    // 503 is either the closing answer (`Connection: close`) or, on a starved machine, the load
    // shedder's (`Retry-After`): both are answers, neither loses the request.
    const unexpected = result.outcomes.filter(
      (o) =>
        o.kind === 'answered' &&
        o.status !== 200 &&
        !(o.status === 503 && (o.closing || o.retryAfter !== undefined)),
    );
    expect(unexpected).toEqual([]);
    // Each connection was told to close (a last answer with Connection: close) before it went; a
    // request the client had to open a new connection for was refused, never sent.
    const closing = result.outcomes.filter((o) => o.kind === 'answered' && o.closing).length;
    expect(closing + result.refused).toBe(32);
  });
});
