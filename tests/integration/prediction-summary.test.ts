import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOf } from '../../serving/src/predictions/log.js';
import {
  predictionSummaryRoutes,
  summarisePredictions,
} from '../../serving/src/routes/prediction-summary.js';
import { tempHome } from '../support/env.js';

/**
 * Issue 20, problem 4: `GET /v1/monitoring/predictions` read each hour file whole and parsed it on
 * the event loop (4 s for a 710 MB log, during which every other request waited). Here a log of
 * tens of MB is summarised while a cheap request is sent every few milliseconds: the event loop's
 * longest stall must stay a small fraction of the time the summary takes (before: about all of it).
 */
const line = (i: number) =>
  `${JSON.stringify({
    ts: '2026-12-07T10:15:02.123Z',
    dataset: 'churn',
    request_id: `req-${i}`,
    model: { name: 'churn', version: '3', alias: 'champion' },
    served: i % 10 !== 0,
    customer_token: 'ab'.repeat(16),
    features: { tenure_days: i % 97, plan: 'basic', region: 'north', monthly_charges: 12.5 + (i % 13) },
    probability: (i % 1000) / 1000,
    label: i % 1000 >= 500 ? 1 : 0,
  })}\n`;

describe('the prediction summary over a large log', () => {
  let app: FastifyInstance;
  let dir: string;
  const files: string[] = [];
  let want: ReturnType<typeof summarisePredictions>;

  beforeAll(async () => {
    dir = path.join(tempHome('driftwood-summary-'), 'predictions');
    const now = Date.now();
    // The previous and the current hour: ~45 MB and a small file.
    for (const [ts, n] of [
      [now - 3_600_000, 150_000],
      [now, 2_000],
    ] as const) {
      const file = path.join(dir, partitionOf(ts), 'predictions.jsonl');
      mkdirSync(path.dirname(file), { recursive: true });
      const block = Array.from({ length: 1000 }, (_, i) => line(i)).join('');
      writeFileSync(file, block.repeat(n / 1000));
      files.push(file);
    }
    want = summarisePredictions(files.map((f) => ({ hour: 'h', text: readFileSync(f, 'utf8') })));
    app = Fastify();
    app.get('/ping', async () => ({ ok: true }));
    await app.register(predictionSummaryRoutes, { prefix: '/v1', predictionLogDir: dir });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
  });

  it('keeps the event loop free while it reads, and answers the same summary', async () => {
    const delay = monitorEventLoopDelay({ resolution: 5 });
    let pings = 0;
    let pending = true;
    const pinger = (async () => {
      while (pending) {
        const res = await app.inject({ url: '/ping' });
        if (res.statusCode === 200 && pending) pings++;
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    delay.enable();
    const t0 = performance.now();
    const res = await app.inject({ url: '/v1/monitoring/predictions?hours=2' });
    const tookMs = performance.now() - t0;
    pending = false;
    // The histogram records a stall when its timer fires after it: give it the chance.
    await new Promise((r) => setTimeout(r, 50));
    delay.disable();
    await pinger;
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.total).toBe(want.total);
    expect(body.histogram).toEqual(want.histogram);
    expect(body.hours.map((h: { count: number }) => h.count)).toEqual([150_000 * 0.9, 2_000 * 0.9]);
    const maxStallMs = delay.max / 1e6;
    console.info(
      `summary of ~45 MB: ${tookMs.toFixed(0)} ms, longest stall ${maxStallMs.toFixed(1)} ms, ${pings} pings`,
    );
    // The longest stall is a small share of the summary's time, and cheap requests kept flowing.
    expect(maxStallMs, `longest stall ${maxStallMs} ms of ${tookMs} ms`).toBeLessThan(tookMs / 5);
    expect(pings, `${pings} pings in ${tookMs} ms`).toBeGreaterThanOrEqual(10);
  });

  it('reads only what was appended since the last call, and afresh a file that was rewritten', async () => {
    appendFileSync(files[1] as string, `${line(1)}${line(2)}{"served":tr`);
    const grown = (await app.inject({ url: '/v1/monitoring/predictions?hours=2' })).json();
    // Two whole served lines more; the partial one is left for a later call.
    expect(grown.total).toBe(want.total + 2);
    expect(grown.hours[1].count).toBe(2_000 * 0.9 + 2);
    appendFileSync(files[1] as string, 'ue,"probability":0.5,"label":1}\n');
    const completed = (await app.inject({ url: '/v1/monitoring/predictions?hours=2' })).json();
    expect(completed.hours[1].count).toBe(2_000 * 0.9 + 3);
    writeFileSync(files[1] as string, line(7));
    const rewritten = (await app.inject({ url: '/v1/monitoring/predictions?hours=2' })).json();
    expect(rewritten.hours[1]).toMatchObject({ count: 1, churned: 0 });
    expect(rewritten.total).toBe(want.total - 2_000 * 0.9 + 1);
  });
});
