import { createServer } from 'node:net';
import path from 'node:path';
import { AirflowClient, openObjectStore } from '@driftwood/tasks';
import { describe, expect, it } from 'vitest';
import { landingExtra, newestPartition, rawAssetUri } from '../../tasks/src/lake/landing.js';
import { runSimulate } from '../../tasks/src/simulate/index.js';
import { silentLog, tempHome } from '../support/env.js';

describe('newestPartition', () => {
  it.each([
    [[], undefined],
    [['raw/churn/readme.txt'], undefined],
    [
      ['raw/churn/dt=2026-11-15/hr=05/events.csv'],
      { partition: 'dt=2026-11-15/hr=05', asOf: '2026-11-15T06:00:00+00:00' },
    ],
    // Newest by time, not by listing order; the last hour of a day ends at the next day's midnight.
    [
      [
        'raw/churn/dt=2026-11-15/hr=23/events.csv',
        'raw/churn/dt=2026-11-16/hr=02/labels.csv',
        'raw/churn/dt=2026-11-14/hr=09/customers.csv',
      ],
      { partition: 'dt=2026-11-16/hr=02', asOf: '2026-11-16T03:00:00+00:00' },
    ],
    [
      ['raw/churn/dt=2026-12-31/hr=23/events.csv'],
      { partition: 'dt=2026-12-31/hr=23', asOf: '2027-01-01T00:00:00+00:00' },
    ],
  ])('%j → %j', (keys, expected) => {
    expect(newestPartition(keys)).toEqual(expected);
  });

  it('gives the pipeline its as-of under the key its templates read', () => {
    const landed = { partition: 'dt=2026-11-15/hr=05', asOf: '2026-11-15T06:00:00+00:00' };
    expect(rawAssetUri('churn')).toBe('driftwood://churn/raw');
    expect(landingExtra('churn', landed, 3, 'simulate')).toEqual({
      dataset: 'churn',
      driftwood_partition: 'dt=2026-11-15/hr=05',
      driftwood_as_of: '2026-11-15T06:00:00+00:00',
      files: 3,
      source: 'simulate',
    });
  });
});

/** A loopback port nothing listens on: an Airflow that is down. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('simulate lands files whatever Airflow does', () => {
  const options = {
    dataset: 'churn',
    start: Date.parse('2026-11-15T00:00Z'),
    hours: 3,
    seed: 5,
    entities: 20,
  };

  it('with Airflow down: every file is in the lake, and the result says the event was not recorded', async () => {
    const lake = openObjectStore(`file://${path.join(tempHome('driftwood-landing-'), 'lake')}`);
    const airflow = new AirflowClient({
      baseUrl: `http://127.0.0.1:${await closedPort()}`,
      username: 'driftwood',
      password: 'x',
      http: { timeoutMs: 2_000, retries: 0, backoffMs: 10 },
    });
    const result = await runSimulate({ ...options, labelDelayHours: 1 }, { lake, log: silentLog, airflow });
    expect((await lake.list('raw/churn/')).length).toBe(result.files);
    expect(result.landing).toMatchObject({
      posted: false,
      asset: 'driftwood://churn/raw',
      partition: 'dt=2026-11-15/hr=02',
      asOf: '2026-11-15T03:00:00+00:00',
    });
    expect(result.landing.posted === false && result.landing.reason).toMatch(/cannot reach/);
  });

  it('without Airflow configured, and on a re-run that lands nothing new, no event is posted', async () => {
    const lake = openObjectStore(`file://${path.join(tempHome('driftwood-landing-'), 'lake')}`);
    const first = await runSimulate({ ...options, labelDelayHours: 1 }, { lake, log: silentLog });
    expect(first.landing).toMatchObject({ posted: false, reason: 'DRIFTWOOD_AIRFLOW_URL unset' });
    const again = await runSimulate({ ...options, labelDelayHours: 1 }, { lake, log: silentLog });
    expect(again.unchanged).toBe(first.files);
    expect(again.landing).toEqual({
      posted: false,
      asset: 'driftwood://churn/raw',
      reason: 'no new files landed',
    });
  });
});
