import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/env.js';

/** MLFLOW_PORT and MLFLOW_TRACKING_URI as the scripts resolve them (scripts/lib.sh). */
function resolved(env: Record<string, string>): string {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => k !== 'MLFLOW_PORT' && k !== 'MLFLOW_TRACKING_URI'),
  );
  return execFileSync(
    'bash',
    ['-c', `source "${ROOT}/scripts/lib.sh"; echo "$MLFLOW_PORT $MLFLOW_TRACKING_URI"`],
    { env: { ...clean, DRIFTWOOD_HOME: path.join(ROOT, '.driftwood'), ...env }, encoding: 'utf8' },
  ).trim();
}

describe('the scripts honour the MLflow settings', () => {
  it('derive the local port from the tracking URI, and the URI from the port', () => {
    expect(resolved({})).toBe('5000 http://127.0.0.1:5000');
    expect(resolved({ MLFLOW_TRACKING_URI: 'http://127.0.0.1:5300' })).toBe('5300 http://127.0.0.1:5300');
    expect(resolved({ MLFLOW_TRACKING_URI: 'http://localhost:5301/' })).toBe('5301 http://localhost:5301/');
    expect(resolved({ MLFLOW_PORT: '5400' })).toBe('5400 http://127.0.0.1:5400');
    // A remote server is used as it is; the local port stays the default.
    expect(resolved({ MLFLOW_TRACKING_URI: 'https://mlflow.example.org' })).toBe(
      '5000 https://mlflow.example.org',
    );
  });

  it('start and stop MLflow on the resolved port, never on a fixed one', () => {
    for (const script of ['demo.sh', 'up.sh', 'down.sh']) {
      const text = readFileSync(path.join(ROOT, 'scripts', script), 'utf8');
      expect(text, script).not.toMatch(/mlflow\.sh (start|stop) \d/);
      expect(text, script).not.toMatch(/MLFLOW_TRACKING_URI:-/);
    }
  });
});

/** AIRFLOW_HOME as a script sees it after sourcing scripts/lib.sh. */
function airflowHome(env: Record<string, string>): string {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'AIRFLOW_HOME'));
  return execFileSync('bash', ['-c', `source "${ROOT}/scripts/lib.sh"; echo "$AIRFLOW_HOME"`], {
    env: { ...clean, DRIFTWOOD_HOME: '/tmp/driftwood-home', ...env },
    encoding: 'utf8',
  }).trim();
}

describe('one Airflow home for the demo, dags-test and the service', () => {
  it('defaults to $DRIFTWOOD_HOME/airflow and honours AIRFLOW_HOME', () => {
    expect(airflowHome({})).toBe('/tmp/driftwood-home/airflow');
    expect(airflowHome({ AIRFLOW_HOME: '/srv/airflow' })).toBe('/srv/airflow');
  });

  it('no script picks a home of its own', () => {
    for (const script of ['airflow.sh', 'airflow-service.sh', 'up.sh', 'down.sh', 'demo.sh']) {
      const text = readFileSync(path.join(ROOT, 'scripts', script), 'utf8');
      expect(text, script).not.toMatch(/airflow-service\b(?!\.sh)/);
      expect(text, script).not.toMatch(/AIRFLOW_HOME:-/);
    }
  });

  it('the service runs the triggerer, and down stops the drift sidecar that up starts', () => {
    const service = readFileSync(path.join(ROOT, 'scripts', 'airflow-service.sh'), 'utf8');
    expect(service).toMatch(/NAMES=\([^)]*airflow-triggerer[^)]*\)/);
    const up = readFileSync(path.join(ROOT, 'scripts', 'up.sh'), 'utf8');
    const down = readFileSync(path.join(ROOT, 'scripts', 'down.sh'), 'utf8');
    expect(up).toContain('drift-sidecar.pid');
    expect(down).toContain('stop_pid drift-sidecar');
  });
});

describe('dags-test beside the service', () => {
  it("refuses an unpaused DAG while the home's scheduler runs, before starting Airflow", () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'driftwood-dags-test-'));
    const airflowHome = path.join(home, 'airflow');
    mkdirSync(path.join(home, 'run'), { recursive: true });
    mkdirSync(airflowHome, { recursive: true });
    execFileSync('python3', [
      '-c',
      'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("create table dag (dag_id text, is_paused boolean)"); c.execute("insert into dag values (\'churn_pipeline\', 0)"); c.commit()',
      path.join(airflowHome, 'airflow.db'),
    ]);
    // A live process stands for the scheduler that `make up` recorded.
    const scheduler = spawn('sleep', ['60'], { stdio: 'ignore' });
    writeFileSync(path.join(home, 'run', 'airflow-scheduler.pid'), String(scheduler.pid));
    try {
      const env = { ...process.env, DRIFTWOOD_HOME: home, AIRFLOW_HOME: airflowHome };
      delete env.AIRFLOW__DATABASE__SQL_ALCHEMY_CONN;
      const run = spawnSync(path.join(ROOT, 'scripts', 'airflow.sh'), ['dags-test', 'churn_pipeline'], {
        env,
        encoding: 'utf8',
      });
      expect(run.status).toBe(2);
      expect(run.stderr).toContain('churn_pipeline is unpaused');
      expect(run.stderr).toContain('dags trigger churn_pipeline');
    } finally {
      scheduler.kill();
    }
  });
});

/** The demo's period as scripts/demo.sh computes it (scripts/lib.sh: demo_period) at a given clock. */
function demoPeriod(home: string, env: Record<string, string>, now: string): string {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DEMO_')));
  const seconds = Math.floor(Date.parse(now) / 1000);
  return execFileSync(
    'bash',
    ['-c', `source "${ROOT}/scripts/lib.sh"; demo_period ${seconds}; echo "$START $HOURS $END"`],
    { env: { ...clean, DRIFTWOOD_HOME: home, ...env }, encoding: 'utf8' },
  ).trim();
}

describe("the demo's data ends at the current hour", () => {
  it('starts 336 hours before the current hour, then keeps its start and extends to the current hour', () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'driftwood-demo-period-'));
    const first = '2026-11-23T05:00:00Z 336 2026-12-07T05:00:00+00:00';
    expect(demoPeriod(home, {}, '2026-12-07T05:42:10Z')).toBe(first);
    // Again within the hour: the same period, so the same files.
    expect(demoPeriod(home, {}, '2026-12-07T05:59:59Z')).toBe(first);
    // Three hours later: the same start (files already written stay as they are), three hours more.
    expect(demoPeriod(home, {}, '2026-12-07T08:05:00Z')).toBe(
      '2026-11-23T05:00:00Z 339 2026-12-07T08:00:00+00:00',
    );
  });

  it('takes DEMO_START and DEMO_HOURS as given', () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'driftwood-demo-period-'));
    const now = '2026-12-07T05:42:10Z';
    expect(demoPeriod(home, { DEMO_HOURS: '48' }, now)).toBe(
      '2026-12-05T05:00:00Z 48 2026-12-07T05:00:00+00:00',
    );
    expect(demoPeriod(home, { DEMO_START: '2026-11-01T00:00:00Z', DEMO_HOURS: '24' }, now)).toBe(
      '2026-11-01T00:00:00Z 24 2026-11-02T00:00:00+00:00',
    );
    expect(demoPeriod(home, { DEMO_START: '2026-11-01T00:00:00Z' }, now)).toBe(
      '2026-11-01T00:00:00Z 336 2026-11-15T00:00:00+00:00',
    );
  });
});

describe('the step-by-step path makes its PII key', () => {
  it('scripts/pii-key.sh makes a private key once per home and prints its path', () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'driftwood-pii-key-'));
    const run = () =>
      execFileSync(path.join(ROOT, 'scripts', 'pii-key.sh'), {
        env: { ...process.env, DRIFTWOOD_HOME: home },
        encoding: 'utf8',
      }).trim();
    const key = run();
    expect(key).toBe(path.join(home, 'secrets', 'pii.key'));
    const first = readFileSync(key, 'utf8');
    expect(Buffer.from(first.trim(), 'base64')).toHaveLength(32);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(run()).toBe(key);
    expect(readFileSync(key, 'utf8')).toBe(first);
  });
});
