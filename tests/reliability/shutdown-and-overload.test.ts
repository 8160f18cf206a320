import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type ClosedLoopResult, closedLoop, quantile } from '../support/closed-loop.js';
import { mlflowClient, tempHome, uniqueName } from '../support/env.js';
import { atScale, recordRow } from '../support/reliability.js';
import { eventually, registerTestModel, sampleCustomer, spawnServe } from '../support/serving-model.js';

const PORT = 7237;
const BODY = JSON.stringify(sampleCustomer);

/** A real `driftwood serve` (the built CLI) on PORT, ready; `extraEnv` adds settings. */
async function startServe(modelName: string, extraEnv: Record<string, string> = {}) {
  const served = spawnServe({
    home: tempHome('driftwood-reliability-serve-'),
    port: PORT,
    modelName,
    mlflowUri: inject('mlflowUri'),
    extraEnv: { DRIFTWOOD_API_POLL_MS: '0', DRIFTWOOD_PII_KEY: 'reliability-key-0123456789', ...extraEnv },
  });
  await eventually(async () => {
    const res = await fetch(`http://127.0.0.1:${PORT}/health/ready`).catch(() => undefined);
    return res?.status === 200 ? true : undefined;
  }, 60_000);
  return served;
}

/** Runs a closed loop of `connections` predictions for `ms`. */
async function loadFor(connections: number, ms: number): Promise<ClosedLoopResult> {
  const load = closedLoop({ port: PORT, connections, method: 'POST', path: '/v1/predict', body: BODY });
  await new Promise((r) => setTimeout(r, ms));
  return load.stop();
}

const fmt = (ms: number) => `${ms.toFixed(2)} ms`;

/**
 * Issue 20, problems 2 and 3, at the sizes of the acceptance table: SIGTERM under keep-alive load
 * loses no request (32 connections in CI, 32 and 256 in the full run), and at twice the in-flight
 * limit only 503/429 answer past capacity while the successes keep their unloaded p99 (within 2×).
 */
describe('API shutdown and overload', () => {
  let modelName: string;
  const children: (() => void)[] = [];

  beforeAll(async () => {
    const mlflow = mlflowClient(inject('mlflowUri'));
    modelName = uniqueName('churn-reliability-serve');
    await registerTestModel(mlflow, {
      modelName,
      experiment: uniqueName('exp-reliability-serve'),
      seed: 19,
      alias: 'champion',
    });
  });
  afterAll(() => {
    for (const kill of children) kill();
  });

  const sizes = atScale({ ci: [32], full: [32, 256] });
  it.each(sizes)(
    'SIGTERM under keep-alive load with %i connections loses no request',
    async (connections) => {
      const { child, exit } = await startServe(modelName);
      children.push(() => child.exitCode === null && child.kill('SIGKILL'));
      const load = closedLoop({ port: PORT, connections, method: 'POST', path: '/v1/predict', body: BODY });
      await eventually(async () => (load.sent() >= connections * 10 ? true : undefined), 30_000);
      child.kill('SIGTERM');
      const code = await exit;
      const result = await load.stop();
      const closing = result.outcomes.filter(
        (o) => o.kind === 'answered' && o.status === 503 && o.closing,
      ).length;
      // Past the default in-flight limit (256 connections), some are shed: answered 503, not lost.
      const shed = result.outcomes.filter(
        (o) => o.kind === 'answered' && o.status === 503 && !o.closing,
      ).length;
      const other = result.outcomes.filter(
        (o) => o.kind === 'answered' && o.status !== 200 && o.status !== 503,
      ).length;
      const ok = result.lost === 0 && other === 0 && code === 0;
      const errors = [...new Set(result.outcomes.flatMap((o) => (o.kind === 'lost' ? [o.error] : [])))].join(
        ', ',
      );
      recordRow({
        check: `SIGTERM under keep-alive load, ${connections} connections`,
        goal: '0 requests lost',
        measured: `${result.lost} lost of ${result.outcomes.length} (${result.byStatus.get(200) ?? 0} answered 200, ${closing} answered 503 with Connection: close, ${shed} shed 503 before the signal, ${other} other, ${result.refused} new connections refused${errors ? `; lost as ${errors}` : ''}); exit ${code}`,
        ok,
      });
      expect(result.lost).toBe(0);
      expect(other).toBe(0);
      expect(code).toBe(0);
    },
  );

  it('2× overload: only 503 past capacity, and successes keep their p99', async () => {
    const maxInFlight = 16;
    const rounds = atScale({ ci: 3, full: 10 });
    const { child, exit } = await startServe(modelName, {
      DRIFTWOOD_API_MAX_IN_FLIGHT: String(maxInFlight),
      DRIFTWOOD_API_RATE_LIMIT: '10000000',
    });
    children.push(() => child.exitCode === null && child.kill('SIGKILL'));
    await loadFor(maxInFlight, 1_000); // warm-up
    // Capacity unloaded: as many connections as the limit, so nothing is shed; then twice as many.
    // Rounds of one second each, alternated, so a change in the machine's other load hits both alike.
    const unloaded: ClosedLoopResult[] = [];
    const overload: ClosedLoopResult[] = [];
    for (let i = 0; i < rounds; i++) {
      unloaded.push(await loadFor(maxInFlight, 1_000));
      overload.push(await loadFor(2 * maxInFlight, 1_000));
    }
    child.kill('SIGTERM');
    await exit;
    const okMs = (rs: ClosedLoopResult[]) => rs.flatMap((r) => r.okMs).sort((a, b) => a - b);
    const count = (rs: ClosedLoopResult[], status: number) =>
      rs.reduce((n, r) => n + (r.byStatus.get(status) ?? 0), 0);
    const statuses = (rs: ClosedLoopResult[]) => new Set(rs.flatMap((r) => [...r.byStatus.keys()]));
    const base = quantile(okMs(unloaded), 0.99);
    const loaded = quantile(okMs(overload), 0.99);
    const lost = [...unloaded, ...overload].reduce((n, r) => n + r.lost, 0);
    const past = [...statuses(overload)].filter((s) => s !== 200 && s !== 503 && s !== 429);
    const ok = lost === 0 && past.length === 0 && count(unloaded, 503) === 0 && loaded <= 2 * base;
    recordRow({
      check: `2× overload (${2 * maxInFlight} connections, DRIFTWOOD_API_MAX_IN_FLIGHT=${maxInFlight}, ${rounds} × 1 s)`,
      goal: 'only 503/429 past capacity; success p99 ≤ 2× unloaded p99',
      measured: `success p99 ${fmt(loaded)} vs ${fmt(base)} at capacity unloaded (${(loaded / base).toFixed(2)}×); ${okMs(overload).length} ok, ${count(overload, 503)} shed 503, other statuses: ${past.join(', ') || 'none'}, ${lost} lost`,
      ok,
    });
    expect(past).toEqual([]);
    expect(lost).toBe(0);
    expect(count(unloaded, 503)).toBe(0);
    expect(count(overload, 503)).toBeGreaterThan(0);
    // The p99 ratio is a latency goal, measured and reported in the table (make test-reliability
    // fails on a missed row); a wall-clock bound inside a test would fail with the machine's load.
  });
});
