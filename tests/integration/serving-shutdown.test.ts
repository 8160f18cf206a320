import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mlflowClient, tempHome, uniqueName } from '../support/env.js';
import { eventually, registerTestModel, sampleCustomer, spawnServe } from '../support/serving-model.js';

const PORT = 7231;
const BASE = `http://127.0.0.1:${PORT}`;

/**
 * The real `driftwood serve` process (built CLI, as Docker and Kubernetes run it): a SIGTERM while a
 * request is mid-way still answers that request, flushes the prediction log and exits 0.
 */
describe('driftwood serve shuts down with grace on SIGTERM', () => {
  let child: ChildProcess;
  let home: string;
  let logOf: () => string = () => '';
  let exit: Promise<number | null>;

  beforeAll(async () => {
    const mlflow = mlflowClient(inject('mlflowUri'));
    const modelName = uniqueName('churn-sigterm');
    await registerTestModel(mlflow, {
      modelName,
      experiment: uniqueName('exp-sigterm'),
      seed: 5,
      alias: 'champion',
    });
    home = tempHome('driftwood-serve-');
    let output: () => string;
    ({ child, output, exit } = spawnServe({
      home,
      port: PORT,
      modelName,
      mlflowUri: inject('mlflowUri'),
      extraEnv: { DRIFTWOOD_PII_KEY: 'sigterm-key-0123456789' },
    }));
    logOf = output;
    await eventually(async () => {
      const res = await fetch(`${BASE}/health/ready`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    }, 60_000);
  });

  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('finishes the in-flight request, logs it, refuses new work, and exits 0', async () => {
    const body = JSON.stringify({ ...sampleCustomer, customer_id: 'inflight-1' });
    const socket = net.connect(PORT, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    let response = '';
    socket.on('data', (d) => {
      response += d;
    });
    const ended = new Promise((r) => socket.once('close', r));
    // Headers and half the body: the request is accepted and in flight when the signal lands.
    socket.write(
      `POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`,
    );
    socket.write(body.slice(0, 40));
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGTERM');
    await eventually(async () => (logOf().includes('shutting down') ? true : undefined));
    // New work is refused while the old request is still open: a new connection is answered 503
    // with Connection: close (the listener stays open until the connections drain, so none is
    // reset in its backlog).
    const fresh = await new Promise<string>((resolve, reject) => {
      const probe = net.connect(PORT, '127.0.0.1');
      let text = '';
      probe.setEncoding('utf8');
      probe.on('data', (d: string) => {
        text += d;
      });
      probe.once('close', () => resolve(text));
      probe.once('error', reject);
      probe.write('GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    });
    expect(fresh).toMatch(/^HTTP\/1\.1 503 [\s\S]*connection: close/i);
    socket.write(body.slice(40));
    await ended;
    expect(response).toMatch(/^HTTP\/1\.1 200 /);
    const json = JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4));
    expect(json.probability).toBeGreaterThan(0);
    expect(json.model.alias).toBe('champion');
    expect(await exit).toBe(0);
    // The prediction log was flushed on the way out, the customer id tokenised.
    const dir = path.join(home, 'predictions');
    const logged = readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.jsonl'))
      .map((f) => readFileSync(path.join(dir, f), 'utf8'))
      .join('');
    expect(logged.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(logged).probability).toBe(json.probability);
    expect(logged).not.toContain('inflight-1');
  });
});
