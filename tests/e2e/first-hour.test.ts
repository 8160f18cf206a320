import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliRun, ROOT, runProcess, tempHome } from '../support/env.js';

/**
 * A new user's first hour, as the README tells it, on a machine where the default ports are taken:
 * `scripts/demo.sh` (ONCE=1), then `scripts/up.sh` on the same fresh home and other ports. The
 * stack it leaves must hang together: the demo's DAG run in the Airflow of `make up` (one Airflow
 * home), a healthy triggerer, the drift sidecar, an API that refuses anonymous callers, and a
 * dashboard whose admin sees traffic, the run and a drift report.
 */
const DEFAULT_PORTS = [5000, 8000, 8080, 8081];
const MLFLOW_PORT = 5171;
const DEMO_API_PORT = 7741;
const API_PORT = 7742;
const AIRFLOW_PORT = 7784;
const SIDECAR_PORT = 7794;
const API = `http://127.0.0.1:${API_PORT}`;
const AIRFLOW = `http://127.0.0.1:${AIRFLOW_PORT}`;
const SIDECAR = `http://127.0.0.1:${SIDECAR_PORT}`;
const SHOTS = path.join(ROOT, '.driftwood', 'test', 'screenshots');
/** The sidecar's window size for a verdict (decision.min_rows of config.example.yaml). */
const DRIFT_ROWS = 500;
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'];

describe("a new user's first hour: make demo, then make up, on other ports", () => {
  const home = tempHome('driftwood-first-hour-');
  const env: Record<string, string> = {
    DRIFTWOOD_HOME: home,
    MLFLOW_PORT: String(MLFLOW_PORT),
    AIRFLOW_PORT: String(AIRFLOW_PORT),
    DRIFTWOOD_SIDECAR_PORT: String(SIDECAR_PORT),
  };
  const blockers: Server[] = [];
  let browser: Browser | undefined;
  /** The MLflow link `make up` prints. */
  let mlflowUi = '';

  beforeAll(async () => {
    for (const p of ['tasks/dist/cli.js', 'serving/dist/bin/hash-password.js', 'dashboard/dist/index.html'])
      if (!existsSync(path.join(ROOT, p))) throw new Error(`${p} is missing: run make build`);
    // Taken by someone else: a script that falls back to a default port finds a listener that is
    // not its service (a port taken already by another process serves as well).
    for (const port of DEFAULT_PORTS) {
      const server = createServer((socket) => socket.destroy());
      const taken = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen(port, '127.0.0.1', () => resolve(true));
      });
      if (taken) blockers.push(server);
    }
    // The migrated empty databases are a cache, not state: the suite's MLflow made them already.
    mkdirSync(path.join(home, 'cache'), { recursive: true });
    for (const db of ['mlflow-empty.db', 'airflow-empty.db']) {
      const cached = path.join(ROOT, '.driftwood', 'cache', db);
      if (existsSync(cached)) copyFileSync(cached, path.join(home, 'cache', db));
    }
    mkdirSync(SHOTS, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    const down = await script('down.sh', {});
    if (down.code !== 0) console.log(`down.sh exited ${down.code}: ${down.stderr}`);
    for (const server of blockers) server.close();
  });

  function script(name: string, extra: Record<string, string>): Promise<CliRun> {
    // The caller's Driftwood, MLflow and Airflow settings stay out: only the ones given here count.
    const clean = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !/^(DRIFTWOOD_|MLFLOW_|AIRFLOW)/.test(k)),
    );
    const logLevel = process.env.LOG_LEVEL ?? 'info';
    return runProcess(
      path.join(ROOT, 'scripts', name),
      [],
      { ...env, LOG_LEVEL: logLevel, ...extra },
      ROOT,
      clean,
    );
  }

  /** The churn_pipeline runs Airflow's REST API lists, and a token for its UI and API. */
  async function airflowRuns() {
    const password = (JSON.parse(secret('airflow-passwords.json')) as { driftwood: string }).driftwood;
    const token = (await (
      await fetch(`${AIRFLOW}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'driftwood', password }),
      })
    ).json()) as { access_token: string };
    const runs = (await (
      await fetch(`${AIRFLOW}/api/v2/dags/churn_pipeline/dagRuns`, {
        headers: { authorization: `Bearer ${token.access_token}` },
      })
    ).json()) as { dag_runs: { dag_run_id: string; state: string; logical_date: string }[] };
    return { token: token.access_token, runs: runs.dag_runs };
  }

  const secret = (file: string) => readFileSync(path.join(home, 'secrets', file), 'utf8');
  const apiUser = (user: string) => {
    const line = secret('api-passwords')
      .split('\n')
      .find((l) => l.startsWith(`${user}:`));
    if (!line) throw new Error(`no ${user} in api-passwords`);
    return {
      user,
      password: line.slice(user.length + 1),
      basic: `Basic ${Buffer.from(line).toString('base64')}`,
    };
  };

  it('make demo ONCE=1 trains, serves and answers its sample prediction on the ports it is given', async () => {
    const run = await script('demo.sh', { ONCE: '1', DRIFTWOOD_API_PORT: String(DEMO_API_PORT) });
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/response: \{"probability":[\d.e-]+,"label":[01],"model":\{"name":"churn"/);
    expect(run.stdout).toContain(`http://127.0.0.1:${DEMO_API_PORT}/ui/`);
  }, 900_000);

  it('make up starts every service on its port and prints every URL', async () => {
    const run = await script('up.sh', { DRIFTWOOD_API_PORT: String(API_PORT) });
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    mlflowUi = /MLflow UI +(\S+)/.exec(run.stdout)?.[1] ?? '';
    for (const url of [
      `http://127.0.0.1:${MLFLOW_PORT}`,
      AIRFLOW,
      `${API}/v1/predict`,
      `${API}/ui/`,
      SIDECAR,
    ])
      expect(run.stdout).toContain(url);
    expect((await fetch(`${SIDECAR}/health`)).status).toBe(200);
    const anonymous = await fetch(`${API}/v1/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(anonymous.status).toBe(401);
  }, 600_000);

  it("Airflow's UI shows the demo's run (one Airflow home) and a healthy triggerer", async () => {
    const health = (await (await fetch(`${AIRFLOW}/api/v2/monitor/health`)).json()) as Record<
      string,
      { status: string }
    >;
    expect(health.triggerer?.status).toBe('healthy');
    expect(health.scheduler?.status).toBe('healthy');
    const { runs } = await airflowRuns();
    expect(runs.map((r) => r.state)).toContain('success');
    // The demo's data ends at the current hour, and so does its run: unpausing finds data.
    const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    const latest = Math.max(...runs.map((r) => Date.parse(r.logical_date)));
    expect(hour - latest).toBeLessThanOrEqual(3_600_000);
  });

  it('the admin signs in to the dashboard and sees traffic, the pipeline run and a drift report', async () => {
    const predict = apiUser('predict');
    const admin = apiUser('admin');
    const summary = async () =>
      (
        (await (
          await fetch(`${API}/v1/monitoring/predictions?hours=24`, {
            headers: { authorization: admin.basic },
          })
        ).json()) as { total: number }
      ).total;
    // The demo's sample prediction is in the log this API reads.
    const before = await summary();
    expect(before).toBeGreaterThanOrEqual(1);
    // A window of traffic the sidecar can judge, as the predict user.
    // From now: the demo's own sample prediction may be only seconds old, and is not in this window.
    const from = new Date(Date.now() - 1).toISOString();
    for (let batch = 0; batch < DRIFT_ROWS / 100; batch++) {
      const res = await fetch(`${API}/v1/predict/batch`, {
        method: 'POST',
        headers: { authorization: predict.basic, 'content-type': 'application/json' },
        body: JSON.stringify({ rows: Array.from({ length: 100 }, (_, i) => customer(batch * 100 + i)) }),
      });
      expect(res.status, await res.clone().text()).toBe(200);
    }
    await expect.poll(summary, { timeout: 30_000 }).toBe(before + DRIFT_ROWS);
    const check = await fetch(`${SIDECAR}/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ start: from, end: new Date(Date.now() + 60_000).toISOString() }),
    });
    const record = (await check.json()) as { report_id: string; rows: number; features?: unknown[] };
    expect(check.status, JSON.stringify(record)).toBe(200);
    expect(record.rows).toBe(DRIFT_ROWS);
    expect(record.features?.length).toBeGreaterThan(0);

    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${API}/ui/`);
    await page.getByLabel('User').fill(admin.user);
    await page.getByLabel('Password').fill(admin.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForSelector('main[data-ready="overview"]');
    const overview = (await page.locator('main').textContent()) ?? '';
    expect(overview).toContain(String(DRIFT_ROWS)); // the traffic this API served
    expect(await page.locator('#overview-pipelines').textContent()).toContain('churn_pipeline');
    expect(await page.locator('#overview-drift').textContent()).toContain(record.report_id);
    await shot(page, 'overview');
    await open(page, 'monitoring');
    // The prediction log (the demo's sample included) as the dashboard counts it.
    expect(await page.locator('main').textContent()).toContain(String(before + DRIFT_ROWS));
    await shot(page, 'monitoring');
    await open(page, 'models');
    await shot(page, 'models');
    await open(page, 'predict');
    await shot(page, 'predict');
  });

  it("MLflow's experiment page lists the demo's run by name, and Airflow's UI shows the run's tasks", async () => {
    if (!browser) throw new Error('the dashboard test opens the browser');
    // The experiment's runs, in MLflow's model-training view (its GenAI view is the default).
    expect(mlflowUi).toMatch(
      new RegExp(
        `^http://127\\.0\\.0\\.1:${MLFLOW_PORT}/#/experiments/\\d+\\?workflowType=machine_learning$`,
      ),
    );
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(mlflowUi);
    // The run's name says what it is: the kind auto kept, features id, time (tasks/src/train).
    await page
      .getByText(/churn (logistic|gbdt) [0-9a-f]{8} /)
      .first()
      .waitFor({ timeout: 60_000 });
    await shot(page, 'mlflow-experiment');

    const { token, runs } = await airflowRuns();
    const run = runs.find((r) => r.state === 'success');
    if (!run) throw new Error('no successful churn_pipeline run');
    // Airflow's UI reads its token from this cookie, as its own login page leaves it.
    await page.context().addCookies([{ name: '_token', value: token, url: AIRFLOW }]);
    await page.goto(`${AIRFLOW}/dags/churn_pipeline/runs/${encodeURIComponent(run.dag_run_id)}`);
    await page.getByText('promote', { exact: true }).first().waitFor({ timeout: 60_000 });
    await shot(page, 'airflow-run');
    await page.close();
  });

  it('make demo again while make up runs: uses its API instead of failing on the port', async () => {
    const run = await script('demo.sh', { ONCE: '1', DRIFTWOOD_API_PORT: String(API_PORT) });
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain(`using the API of 'make up' on ${API}`);
    expect(run.stdout).toMatch(/response: \{"probability":[\d.e-]+,"label":[01],"model":\{"name":"churn"/);
    // The lake keeps the files the first demo wrote (a new hour may have begun since).
    expect(run.stdout).toMatch(/\d+ files \([1-9]\d* already there\)/);
  }, 900_000);
});

async function open(page: Page, name: string): Promise<void> {
  await page.goto(`${API}/ui/#/${name}`);
  await page.waitForSelector(`main[data-ready="${name}"]`);
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `first-hour-${name}.png`), fullPage: true });
}

/** A plausible customer, varied row by row (every value within what training saw). */
function customer(i: number) {
  const sessions = (i * 7) % 40;
  return {
    customer_id: `C${String(100_000 + i).padStart(6, '0')}`,
    tenure_days: 30 + ((i * 37) % 900),
    monthly_charges: 15 + ((i * 13) % 80),
    sessions_3d: sessions % 5,
    sessions_7d: sessions % 12,
    sessions_30d: sessions,
    minutes_30d: sessions * 6,
    tickets_7d: i % 2,
    tickets_30d: i % 4,
    payment_failures_30d: i % 3 === 0 ? 1 : 0,
    purchases_30d: i % 5,
    hours_since_last_session: 1 + ((i * 11) % 200),
    plan: ['basic', 'standard', 'premium'][i % 3],
    region: ['north', 'south', 'east', 'west'][i % 4],
  };
}
