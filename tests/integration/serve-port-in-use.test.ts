import net from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli, tempHome } from '../support/env.js';

/**
 * `driftwood serve` on a port something else holds: one line naming the setting and exit 2 (a
 * configuration error, not a fault to retry), from one process and from a cluster of workers alike,
 * instead of a stack trace and exit 1 (or workers restarted forever).
 */
describe('serve on a port in use', () => {
  let holder: net.Server;
  let port: number;

  beforeAll(async () => {
    holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    port = (holder.address() as net.AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => holder.close(() => resolve())));

  it.each([1, 2])('exits 2 with one line naming DRIFTWOOD_API_PORT (%i process)', async (workers) => {
    const run = await runCli(['serve'], {
      DRIFTWOOD_HOME: tempHome(),
      MLFLOW_TRACKING_URI: inject('mlflowUri'),
      DRIFTWOOD_API_PORT: String(port),
      DRIFTWOOD_API_HOST: '127.0.0.1',
      DRIFTWOOD_API_WORKERS: String(workers),
      LOG_LEVEL: 'fatal',
    });
    expect(run.code, run.stderr).toBe(2);
    const lines = run.stderr.split('\n').filter((l) => l.startsWith('driftwood serve:'));
    expect(lines.length, run.stderr).toBeGreaterThanOrEqual(1);
    expect(lines[0]).toBe(
      `driftwood serve: CONFIG_INVALID: 127.0.0.1:${port} is already in use (DRIFTWOOD_API_PORT, DRIFTWOOD_API_HOST): stop what listens there or choose another port`,
    );
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});
