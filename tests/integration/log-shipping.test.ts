import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mlflowClient, runCli, tempHome, uniqueName } from '../support/env.js';
import { eventually, registerTestModel, sampleCustomer, spawnServe } from '../support/serving-model.js';

/**
 * DRIFTWOOD_LOKI_URL: a step and the API ship their log lines to Loki's push API with the labels
 * and fields that docs/monitoring.md ("Searching logs") queries by, and with no PII in any line.
 *
 * The receiving end is a small HTTP server that takes Loki's push API (`POST /loki/api/v1/push`,
 * JSON streams) and keeps what it is sent: Grafana Loki itself is not packaged for Debian (its `loki`
 * package is an unrelated genetics program), npm or PyPI, so the LogQL side is not run here; what
 * leaves our processes, byte for byte, is.
 */

interface Entry {
  labels: Record<string, string>;
  raw: string;
  line: Record<string, unknown>;
}

class PushReceiver {
  readonly entries: Entry[] = [];
  pushes = 0;
  /** Answer every push with this status (500: a Loki that fails). */
  status = 204;
  private server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      this.pushes++;
      if (req.method === 'POST' && req.url === '/loki/api/v1/push' && this.status < 300) {
        const { streams } = JSON.parse(body) as {
          streams: { stream: Record<string, string>; values: [string, string][] }[];
        };
        for (const s of streams)
          for (const [, raw] of s.values) this.entries.push({ labels: s.stream, raw, line: JSON.parse(raw) });
      }
      res.statusCode = this.status;
      res.end(this.status < 300 ? '' : 'ingester unavailable');
    });
  });
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }
  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
  of(labels: Record<string, string>): Entry[] {
    return this.entries.filter((e) => Object.entries(labels).every(([k, v]) => e.labels[k] === v));
  }
}

const EMAIL = /[\w.+-]+@[\w-]+\.[\w.]+/;
const PII_KEY = 'log-shipping-key-0123456789';

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Every value of a column in the landed CSV files of a home's lake. */
function landed(home: string, column: string): Set<string> {
  const values = new Set<string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.name.endsWith('.csv')) {
        const [header, ...rows] = readFileSync(full, 'utf8').trim().split('\n');
        const at = header?.split(',').indexOf(column) ?? -1;
        if (at >= 0) for (const r of rows) values.add(r.split(',')[at] ?? '');
      }
    }
  };
  walk(path.join(home, 'lake'));
  values.delete('');
  return values;
}

const pinoLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('log lines shipped to Loki (DRIFTWOOD_LOKI_URL)', () => {
  const loki = new PushReceiver();
  beforeAll(() => loki.start());
  afterAll(() => loki.stop());

  it('a step under Airflow: every stderr line, labelled service and dataset, naming the DAG run, no PII; a failure too', async () => {
    const home = tempHome('driftwood-loki-step-');
    const env = { DRIFTWOOD_HOME: home, DRIFTWOOD_PII_KEY: PII_KEY, LOG_LEVEL: 'info' };
    const sim = await runCli(
      ['simulate', '--dataset', 'churn', '--start', '2026-11-01T00:00Z', '--hours', '2', '--customers', '40'],
      env,
    );
    expect(sim.code, sim.stderr).toBe(0);
    const ids = landed(home, 'customer_id');
    const emails = landed(home, 'email');
    expect(ids.size).toBeGreaterThan(0);
    expect(emails.size).toBeGreaterThan(0);

    // A step that fails: its reason is a line in Loki too, not only the plain line on stderr.
    const failed = await runCli(['ingest', '--dataset', 'churn', '--until', '2026-11-01T02:00:00Z'], {
      ...env,
      DRIFTWOOD_PII_KEY: '',
      DRIFTWOOD_LOKI_URL: loki.url,
    });
    expect(failed.code, failed.stderr).toBe(2);
    const reason = loki
      .of({ service: 'ingest', level: 'error' })
      .find((e) => e.line.msg === 'ingest: failed');
    expect((reason?.line.err as { code?: string } | undefined)?.code).toBe('CONFIG_INVALID');
    loki.entries.length = 0;

    const dagRunId = 'scheduled__2026-11-01T02:00:00+00:00';
    const run = await runCli(['ingest', '--dataset', 'churn', '--until', '2026-11-01T02:00:00Z'], {
      ...env,
      DRIFTWOOD_LOKI_URL: loki.url,
      AIRFLOW_CTX_DAG_RUN_ID: dagRunId,
    });
    expect(run.code, run.stderr).toBe(0);
    // The batch still in the buffer is pushed as the step exits: nothing is waited for here.
    const shipped = loki.of({ service: 'ingest', dataset: 'churn' });
    const stderr = pinoLines(run.stderr);
    expect(stderr.map((l) => l.msg)).toContain('ingest: done');
    // The very lines of stderr (pino-loki moves the host name into a label); two batches may arrive
    // in either order.
    const sorted = (lines: Record<string, unknown>[]) => lines.map((l) => JSON.stringify(l)).sort();
    expect(sorted(shipped.map((e) => e.line))).toEqual(
      sorted(stderr.map(({ hostname: _, ...rest }) => rest)),
    );
    for (const e of shipped) {
      expect(e.line.dagRunId).toBe(dagRunId);
      expect(Object.keys(e.labels).sort()).toEqual(['dataset', 'hostname', 'level', 'service']);
      expect(e.raw).not.toMatch(EMAIL);
      for (const id of ids) expect(e.raw).not.toContain(id);
    }
  });

  describe('the API', () => {
    let child: ChildProcess | undefined;
    let base = '';
    let version = '';
    let output: () => string = () => '';
    let exit: Promise<number | null>;

    beforeAll(async () => {
      const mlflow = mlflowClient(inject('mlflowUri'));
      const modelName = uniqueName('churn-loki');
      ({ version } = await registerTestModel(mlflow, {
        modelName,
        experiment: uniqueName('exp-loki'),
        seed: 3,
        alias: 'champion',
      }));
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      ({ child, output, exit } = spawnServe({
        home: tempHome('driftwood-loki-api-'),
        port,
        modelName,
        mlflowUri: inject('mlflowUri'),
        extraEnv: {
          DRIFTWOOD_LOKI_URL: loki.url,
          DRIFTWOOD_PII_KEY: PII_KEY,
          DRIFTWOOD_API_WEBHOOK_SECRET: 'webhook-secret-0123456789',
        },
      }));
      await eventually(async () => {
        const res = await fetch(`${base}/health/ready`).catch(() => undefined);
        return res?.status === 200 ? true : undefined;
      }, 60_000);
    });
    afterAll(async () => {
      if (child && child.exitCode === null) {
        child.kill('SIGTERM');
        await exit;
      }
    });

    it('its lines carry service=api, the model version, the request id, and no customer id or email', async () => {
      const customers = ['C000042', 'C000777', 'C031337'];
      for (const customer_id of customers) {
        const res = await fetch(`${base}/v1/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ ...sampleCustomer, customer_id }),
        });
        expect(res.status, await res.text()).toBe(200);
      }
      // A request that logs: an unsigned registry webhook is refused with a warning.
      const hook = await fetch(`${base}/v1/hooks/mlflow`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ entity: 'model_version_alias', data: { name: 'x', alias: 'champion' } }),
      });
      expect(hook.status).toBe(401);
      const refused = await eventually(async () =>
        loki.of({ service: 'api' }).find((e) => e.line.msg === 'mlflow webhook: delivery refused'),
      );
      expect(refused.line.reqId).toEqual(expect.any(String));
      expect(refused.labels.level).toBe('warning');

      const api = loki.of({ service: 'api' });
      const msgs = api.map((e) => e.line.msg);
      expect(msgs).toContain('serve: listening');
      const loaded = api.find((e) => e.line.version === version && e.line.alias === 'champion');
      expect(loaded, msgs.join('\n')).toBeDefined();
      expect(loaded?.labels.dataset).toBe(loaded?.line.dataset);
      for (const e of api) {
        expect(e.raw).not.toMatch(EMAIL);
        for (const id of customers) expect(e.raw).not.toContain(id);
      }
      // Shipping is a copy: stderr has every line too.
      for (const m of msgs) expect(output()).toContain(`"msg":${JSON.stringify(m)}`);
    });
  });

  it('a Loki that refuses batches is reported once; the API keeps answering', async () => {
    const failing = new PushReceiver();
    failing.status = 500;
    await failing.start();
    const mlflow = mlflowClient(inject('mlflowUri'));
    const modelName = uniqueName('churn-loki-down');
    await registerTestModel(mlflow, {
      modelName,
      experiment: uniqueName('exp-loki'),
      seed: 4,
      alias: 'champion',
    });
    const port = await freePort();
    const serve = spawnServe({
      home: tempHome('driftwood-loki-down-'),
      port,
      modelName,
      mlflowUri: inject('mlflowUri'),
      extraEnv: {
        DRIFTWOOD_LOKI_URL: failing.url,
        DRIFTWOOD_API_WEBHOOK_SECRET: 'webhook-secret-0123456789',
      },
    });
    try {
      await eventually(async () => {
        const res = await fetch(`http://127.0.0.1:${port}/health/ready`).catch(() => undefined);
        return res?.status === 200 ? true : undefined;
      }, 60_000);
      // Each refused webhook logs a line, so each batch interval has something to push; three pushes
      // refused means three failures happened.
      await eventually(async () => {
        await fetch(`http://127.0.0.1:${port}/v1/hooks/mlflow`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{}',
        });
        return failing.pushes >= 3 ? true : undefined;
      });
      const res = await fetch(`http://127.0.0.1:${port}/v1/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(sampleCustomer),
      });
      expect(res.status).toBe(200);
      const reports = serve
        .output()
        .split('\n')
        .filter((l) => l.includes('did not take a batch of log lines'));
      expect(reports).toHaveLength(1);
      expect(reports[0]).toContain('ingester unavailable');
      expect(reports[0]).toContain('DRIFTWOOD_LOKI_URL');
      expect(serve.child.exitCode).toBeNull();
    } finally {
      serve.child.kill('SIGTERM');
      await serve.exit;
      await failing.stop();
    }
  });
});
