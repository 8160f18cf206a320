import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { DriftwoodError, loadConfig, tokenise } from '@driftwood/tasks';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createVerifier,
  hashPassword,
  parseBasicHeader,
  parseCredentials,
  parsePasswordHash,
} from '../../serving/src/auth/credentials.js';
import { contractProblem, planSwap } from '../../serving/src/plugins/model-registry.js';
import { RateLimiter } from '../../serving/src/plugins/rate-limit.js';
import { PredictionLines } from '../../serving/src/predictions/line.js';
import { loggableFeatures, PredictionLog, partitionOf } from '../../serving/src/predictions/log.js';
import { customerBucket, planRoute } from '../../serving/src/routing/canary.js';
import { CanaryGuard, DEFAULT_ROLLBACK, decideRollback } from '../../serving/src/routing/guard.js';
import { featureRowSchema } from '../../serving/src/schemas.js';
import { tempHome } from '../support/env.js';

const CHEAP = { N: 1024, r: 8, p: 1 };
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

describe('credentials', () => {
  it('hashes with scrypt and verifies only the right password, in constant time', async () => {
    const hash = await hashPassword('correct horse battery', CHEAP);
    expect(hash).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(await hashPassword('correct horse battery', CHEAP)).not.toBe(hash); // salted
    const store = parseCredentials(`ana:predict,admin:${hash}\n# a comment\n\nbob:predict:${hash}`);
    expect([...(store.get('ana')?.roles ?? [])]).toEqual(['predict', 'admin']);
    const verify = createVerifier(store);
    expect((await verify(basic('ana', 'correct horse battery')))?.user).toBe('ana');
    expect((await verify(basic('ana', 'correct horse battery')))?.user).toBe('ana'); // cached
    expect(await verify(basic('ana', 'wrong'))).toBeUndefined();
    expect(await verify(basic('carl', 'correct horse battery'))).toBeUndefined();
    expect(await verify(undefined)).toBeUndefined();
  });

  it('admits a header verified moments ago without scrypt, per connection without rehashing, until it expires', async () => {
    const hash = await hashPassword('correct horse battery', CHEAP);
    const verify = createVerifier(parseCredentials(`ana:predict:${hash}`), { cacheMs: 50 });
    const good = basic('ana', 'correct horse battery');
    const connection = {};
    expect(verify.cached(good, connection)).toBeUndefined(); // never verified: scrypt first
    expect((await verify(good))?.user).toBe('ana');
    expect(verify.cached(good, connection)?.user).toBe('ana');
    expect(verify.cached(good, connection)?.user).toBe('ana'); // the connection's last header
    expect(verify.cached(good, {})?.user).toBe('ana'); // another connection: by the keyed hash
    expect(verify.cached(basic('ana', 'wrong'), connection)).toBeUndefined();
    expect(verify.cached(good, connection)?.user).toBe('ana');
    await new Promise((r) => setTimeout(r, 80));
    expect(verify.cached(good, connection)).toBeUndefined(); // expired, even for the same connection
  });

  it.each([
    ['ana:predict', 'entry 1 must be user:role[,role]:scrypt$N$r$p$salt$hash'],
    ['ana:root:scrypt$1024$8$1$c2FsdA==$aGFzaA==', "entry 1 has role 'root', expected predict or admin"],
    ['ana:predict:md5$abc', 'entry 1 has no valid scrypt hash'],
    ['ana:predict:scrypt$1000$8$1$c2FsdA==$aGFzaA==', 'entry 1 has no valid scrypt hash'],
    ['bad user:predict:x', 'entry 1 has a user name'],
  ])('refuses %j naming the entry, never its content', (text, message) => {
    let caught: unknown;
    try {
      parseCredentials(text);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DriftwoodError);
    expect((caught as DriftwoodError).code).toBe('CONFIG_INVALID');
    expect((caught as Error).message).toContain(message);
    expect((caught as Error).message).toContain('DRIFTWOOD_API_CREDENTIALS');
    expect((caught as Error).message).not.toContain('c2FsdA');
  });

  it('repeats are refused, and hashes with hostile costs are not accepted', async () => {
    const hash = await hashPassword('a-long-password', CHEAP);
    expect(() => parseCredentials(`a:predict:${hash}\na:admin:${hash}`)).toThrow(/entry 2 repeats user 'a'/);
    expect(parsePasswordHash(hash.replace('$1024$', `$${2 ** 24}$`))).toBeUndefined();
  });

  it.each([
    [basic('u', 'p:w'), { user: 'u', password: 'p:w' }],
    [`basic ${Buffer.from('u:').toString('base64')}`, { user: 'u', password: '' }],
    ['Bearer abc', undefined],
    ['Basic !!!', undefined],
    [basic('', 'p'), undefined],
    [undefined, undefined],
  ])('parses the Basic header %j', (header, expected) => {
    expect(parseBasicHeader(header)).toEqual(expected);
  });
});

describe('canary routing', () => {
  it.each([
    [
      { mode: 'off', percent: 50, customerId: 'c', hasChallenger: true },
      { serve: 'champion', shadow: false },
    ],
    [
      { mode: 'canary', percent: 50, customerId: 'c', hasChallenger: false },
      { serve: 'champion', shadow: false },
    ],
    [
      { mode: 'canary', percent: 100, customerId: 'c', hasChallenger: true },
      { serve: 'challenger', shadow: false },
    ],
    [
      { mode: 'canary', percent: 0, customerId: 'c', hasChallenger: true },
      { serve: 'champion', shadow: false },
    ],
    [
      { mode: 'canary', percent: 100, customerId: undefined, hasChallenger: true },
      { serve: 'champion', shadow: false },
    ],
    [
      { mode: 'shadow', percent: 100, customerId: 'c', hasChallenger: true },
      { serve: 'champion', shadow: true },
    ],
    [
      { mode: 'shadow', percent: 0, customerId: undefined, hasChallenger: false },
      { serve: 'champion', shadow: false },
    ],
  ] as const)('%j → %j', (input, expected) => {
    expect(planRoute(input)).toEqual(expected);
  });

  it('buckets are stable, in [0, 1), and monotone in the percentage', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 100 }),
        (id, a, b) => {
          const bucket = customerBucket(id);
          expect(bucket).toBe(customerBucket(id));
          expect(bucket).toBeGreaterThanOrEqual(0);
          expect(bucket).toBeLessThan(1);
          const [lo, hi] = a < b ? [a, b] : [b, a];
          const at = (percent: number) =>
            planRoute({ mode: 'canary', percent, customerId: id, hasChallenger: true }).serve;
          // Raising the split never moves a customer back from the challenger to the champion.
          if (at(lo) === 'challenger') expect(at(hi)).toBe('challenger');
        },
      ),
    );
  });
});

describe('canary rollback decisions', () => {
  const policy = {
    ...DEFAULT_ROLLBACK,
    minRequests: 10,
    maxFailureRate: 0.1,
    maxLatencyRatio: 3,
    minLatencyMs: 1,
  };
  const stats = (requests: number, failures: number, meanMs: number) => ({
    requests,
    failures,
    totalMs: requests * meanMs,
  });
  it.each([
    ['too few requests to judge', stats(9, 9, 50), stats(100, 0, 1), undefined],
    ['a healthy challenger', stats(100, 10, 1), stats(100, 0, 1), undefined],
    [
      'too many failures',
      stats(100, 11, 1),
      stats(100, 0, 1),
      'challenger failure rate 11.0% (11 of 100) is over 10.0%',
    ],
    [
      'slow past the ratio and the floor',
      stats(100, 0, 4),
      stats(100, 0, 1),
      /mean scoring time 4\.000 ms is over 3× the champion's 1\.000 ms/,
    ],
    ['slower by ratio but only by microseconds', stats(100, 0, 0.009), stats(100, 0, 0.001), undefined],
    ['slow but no champion baseline yet', stats(100, 0, 40), stats(5, 0, 1), undefined],
  ] as const)('%s', (_what, challenger, champion, expected) => {
    const reason = decideRollback(challenger, champion, policy);
    if (expected === undefined) expect(reason).toBeUndefined();
    else expect(reason).toMatch(expected);
  });

  it('the guard rolls back once, and a new challenger version starts afresh', () => {
    const guard = new CanaryGuard(policy);
    expect(guard.allows('2')).toBe(true);
    for (let i = 0; i < 9; i++) expect(guard.record('challenger', 0.01, true)).toBeUndefined();
    expect(guard.record('challenger', 0.01, false)).toBeUndefined(); // 1 of 10 is not over 10%
    expect(guard.record('challenger', 0.01, false)).toMatch(/2 of 11/);
    expect(guard.record('challenger', 0.01, false)).toBeUndefined(); // already rolled back
    expect(guard.allows('2')).toBe(false);
    expect(guard.rolledBack()).toMatchObject({ version: '2' });
    expect(guard.allows('3')).toBe(true);
    expect(guard.rolledBack()).toBeUndefined();
  });
});

describe('hot-swap decisions', () => {
  it.each([
    [undefined, '1', undefined, 'load'],
    ['1', '1', undefined, 'keep'],
    ['1', '2', undefined, 'load'],
    ['1', '2', '2', 'skip_failed'],
    ['1', '3', '2', 'load'],
    ['1', undefined, undefined, 'alias_gone'],
  ] as const)('served %s, alias at %s, failed %s → %s', (served, target, failed, action) => {
    expect(planSwap(served, target, failed)).toBe(action);
  });

  it('accepts the same input fields in any order and names every difference', () => {
    const contract = { numeric: ['a', 'b'], categorical: ['c'] };
    expect(contractProblem(undefined, contract)).toBeUndefined();
    expect(contractProblem(contract, { numeric: ['b', 'a'], categorical: ['c'] })).toBeUndefined();
    expect(contractProblem(contract, { numeric: ['a', 'z'], categorical: [] })).toBe(
      'its inputs differ from the served contract: lacks numeric field b, adds numeric field z, lacks categorical field c',
    );
  });
});

describe('request schema from the transform fields', () => {
  it('types numeric fields as number-or-null, requires categorical ones, and refuses others', () => {
    const schema = featureRowSchema({ numeric: ['tenure'], categorical: ['plan'] }) as {
      properties: Record<string, { type: unknown }>;
      required: string[];
      additionalProperties: boolean;
    };
    expect(schema.properties.tenure?.type).toEqual(['number', 'null']);
    expect(schema.properties.plan?.type).toBe('string');
    expect(schema.properties.customer_id?.type).toBe('string');
    expect(schema.required).toEqual(['plan']);
    expect(schema.additionalProperties).toBe(false);
    expect(featureRowSchema(undefined)).toMatchObject({ type: 'object' });
  });
});

describe('prediction log', () => {
  it('partitions by UTC hour', () => {
    expect(partitionOf(Date.parse('2026-11-23T05:59:59.999Z'))).toBe('dt=2026-11-23/hr=05');
    expect(partitionOf(Date.parse('2026-12-31T23:00:00Z'))).toBe('dt=2026-12-31/hr=23');
  });

  it('drops the customer id from features and tokenises it with the PII key', () => {
    const row = { customer_id: 'C1', plan: 'basic' };
    expect(loggableFeatures(row)).toEqual({ plan: 'basic' });
    const p = {
      ts: 0,
      requestId: 'r',
      model: { name: 'm', version: '1', alias: 'a' },
      served: true,
      probability: 0.5,
      label: 1,
    };
    const tokenOf = (key: string | undefined, r: Record<string, unknown>) =>
      JSON.parse(new PredictionLines(key).format({ ...p, row: r })).customer_token;
    expect(tokenOf('k-0123456789abcdef', row)).toBe(tokenise('C1', 'k-0123456789abcdef'));
    expect(tokenOf(undefined, row)).toBeNull();
    expect(tokenOf('k-0123456789abcdef', { plan: 'basic' })).toBeNull();
  });

  it('drops nothing past its memory bound: lines spill to a file and are all written, in order', async () => {
    const dir = tempHome('driftwood-log-unit-');
    // A bound of a few lines, so most lines go through the spill file.
    const log = new PredictionLog({ dir, maxBufferedBytes: 600, flushMs: 60_000 });
    const ts = Date.parse('2026-11-23T10:15:00Z');
    const record = (i: number) => ({
      ts: new Date(ts).toISOString(),
      request_id: `r${i}`,
      model: { name: 'm', version: '1', alias: 'champion' },
      served: true,
      customer_token: null,
      features: { i },
      probability: 0.5,
      label: 1,
    });
    const line = (i: number) => `${JSON.stringify(record(i))}\n`;
    for (const i of [0, 1, 2, 3, 4]) log.appendLine(partitionOf(ts), line(i));
    expect(log.spilled).toBeGreaterThan(0);
    expect(log.lagLines).toBe(5);
    await log.flush();
    log.appendLine(partitionOf(ts + 3_600_000), line(5));
    await log.close();
    expect(log).toMatchObject({ accepted: 6, written: 6, writeErrors: 0, lagLines: 0 });
    expect(log.lagSeconds()).toBe(0);
    const first = readFileSync(path.join(dir, 'dt=2026-11-23/hr=10/predictions.jsonl'), 'utf8');
    expect(
      first
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).request_id),
    ).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    const next = readFileSync(path.join(dir, 'dt=2026-11-23/hr=11/predictions.jsonl'), 'utf8');
    expect(JSON.parse(next).request_id).toBe('r5');
    // The spill file is gone once drained.
    expect(readdirSync(path.join(dir, '.spill'))).toEqual([]);
  });
  it('appends formatted lines to their partitions in order, across partition changes', async () => {
    const dir = tempHome('driftwood-log-lines-');
    const log = new PredictionLog({ dir, flushMs: 60_000 });
    const line = (i: number) => `${JSON.stringify({ request_id: `r${i}` })}\n`;
    const hours = ['10', '10', '11', '10', '11', '11'];
    hours.forEach((h, i) => {
      log.appendLine(`dt=2026-11-23/hr=${h}`, line(i));
    });
    await log.close();
    expect(log).toMatchObject({ accepted: 6, written: 6 });
    const ids = (h: string) =>
      readFileSync(path.join(dir, `dt=2026-11-23/hr=${h}/predictions.jsonl`), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).request_id);
    expect(ids('10')).toEqual(['r0', 'r1', 'r3']);
    expect(ids('11')).toEqual(['r2', 'r4', 'r5']);
  });
});

describe('rate limiter', () => {
  it('counts per key in fixed windows and starts a key afresh when its window ends', () => {
    const limiter = new RateLimiter(2, 60_000);
    expect(limiter.hit('basic:alice', 0)).toEqual({ count: 1, resetAt: 60_000 });
    expect(limiter.hit('basic:alice', 10_000).count).toBe(2);
    expect(limiter.hit('basic:alice', 20_000).count).toBe(3);
    // Another key has its own budget.
    expect(limiter.hit('basic:bob', 20_000)).toEqual({ count: 1, resetAt: 80_000 });
    expect(limiter.hit('basic:alice', 60_000)).toEqual({ count: 1, resetAt: 120_000 });
  });

  it('sweeps ended windows and, when full, forgets the oldest window first', () => {
    const limiter = new RateLimiter(10, 1_000, 2);
    limiter.hit('a', 0);
    limiter.hit('b', 500);
    limiter.sweep(1_000);
    expect(limiter.size).toBe(1);
    limiter.hit('c', 1_200);
    limiter.hit('d', 1_300);
    expect(limiter.size).toBe(2);
    // 'b' was the oldest: it was forgotten, so it starts a new window; 'c' keeps counting.
    expect(limiter.hit('c', 1_400).count).toBe(2);
    expect(limiter.hit('b', 1_400).count).toBe(1);
  });
});

describe('serving settings', () => {
  it('has safe defaults', () => {
    expect(loadConfig({}, '/tmp').serving).toMatchObject({
      credentials: undefined,
      metricsAuth: false,
      bodyLimitBytes: 65_536,
      maxBatchRows: 100,
      rateLimitPerMinute: 6000,
      workers: 1,
      pollMs: 30_000,
      challengerMode: 'off',
      canaryPercent: 10,
      webhookSecret: undefined,
      jwt: undefined,
      airflow: undefined,
      forecastModel: undefined,
    });
    expect(loadConfig({ DRIFTWOOD_FORECAST_MODEL: 'off' }, '/tmp').serving.forecastModel).toBe('off');
    expect(loadConfig({ DRIFTWOOD_API_WORKERS: '3' }, '/tmp').serving.workers).toBe(3);
    expect(loadConfig({ DRIFTWOOD_API_WORKERS: 'auto' }, '/tmp').serving.workers).toBe(
      availableParallelism(),
    );
  });

  it.each([
    ['DRIFTWOOD_API_CHALLENGER_MODE', 'blue', 'one of off, canary, shadow'],
    ['DRIFTWOOD_API_CANARY_PERCENT', '140', 'an integer from 0 to 100'],
    ['DRIFTWOOD_API_METRICS_AUTH', 'yes', 'one of true, false'],
    ['DRIFTWOOD_API_MAX_BATCH', '0', 'an integer from 1 to 10000'],
    ['DRIFTWOOD_API_WORKERS', 'many', "an integer from 1 to 64 or 'auto'"],
    ['DRIFTWOOD_API_WORKERS', '0', 'an integer from 1 to 64'],
    ['DRIFTWOOD_FORECAST_MODEL', 'btc usd', "letters, digits, _ - . or 'off'"],
    ['DRIFTWOOD_API_CREDENTIALS_FILE', '/nonexistent/creds', 'the path of a readable file'],
    ['DRIFTWOOD_API_WEBHOOK_SECRET_FILE', '/nonexistent/secret', 'the path of a readable file'],
  ])('names a bad %s', (name, value, expected) => {
    expect(() => loadConfig({ [name]: value }, '/tmp')).toThrow(`setting ${name}: expected ${expected}`);
  });

  it('an Airflow URL needs its password', () => {
    expect(() => loadConfig({ DRIFTWOOD_AIRFLOW_URL: 'http://airflow:8080' }, '/tmp')).toThrow(
      'setting DRIFTWOOD_AIRFLOW_PASSWORD: expected the Airflow password',
    );
    expect(
      loadConfig({ DRIFTWOOD_AIRFLOW_URL: 'http://airflow:8080', DRIFTWOOD_AIRFLOW_PASSWORD: 'pw' }, '/tmp')
        .serving.airflow,
    ).toEqual({
      baseUrl: 'http://airflow:8080',
      username: 'driftwood',
      password: 'pw',
      dagId: 'churn_retrain',
    });
  });

  it('a JWT issuer needs its JWKS URL', () => {
    expect(() => loadConfig({ DRIFTWOOD_API_JWT_ISSUER: 'https://id.example' }, '/tmp')).toThrow(
      'setting DRIFTWOOD_API_JWT_JWKS_URL: expected a URL starting with https:// or http://, got nothing',
    );
    expect(
      loadConfig(
        {
          DRIFTWOOD_API_JWT_ISSUER: 'https://id.example',
          DRIFTWOOD_API_JWT_JWKS_URL: 'https://id.example/jwks',
        },
        '/tmp',
      ).serving.jwt,
    ).toEqual({ issuer: 'https://id.example', jwksUrl: 'https://id.example/jwks', audience: undefined });
  });
});
