import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { MlflowClient } from '@driftwood/tasks';
import type { FastifyInstance } from 'fastify';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { hashPassword, parseCredentials } from '../../serving/src/auth/credentials.js';
import { prPng, rocPng } from '../../tasks/src/evaluate/plots.js';
import { moveAlias } from '../../tasks/src/promote/index.js';
import { mlflowClient, ROOT, tempHome, uniqueName } from '../support/env.js';
import { registerTestModel, sampleCustomer } from '../support/serving-model.js';

/**
 * The dashboard in a real Chromium (Debian's, driven by playwright-core) against the API built on a
 * live MLflow server with two registered versions whose promotion is in the audit trail.
 */
const PORT = 7731;
const BASE = `http://127.0.0.1:${PORT}`;
const SHOTS = path.join(ROOT, '.driftwood', 'test', 'screenshots');
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const USERS = {
  predictor: { user: 'analyst', password: 'analyst-password-1', role: 'predict' },
  admin: { user: 'operator', password: 'operator-password-1', role: 'predict,admin' },
};

describe('the dashboard in a browser', () => {
  let mlflow: MlflowClient;
  let modelName: string;
  let app: FastifyInstance;
  let browser: Browser;
  let v1: string;
  let v2: string;
  const loadTimes: Record<string, Record<string, number>> = {};

  beforeAll(async () => {
    await build({ configFile: path.join(ROOT, 'dashboard', 'vite.config.ts'), logLevel: 'error' });
    mlflow = mlflowClient(inject('mlflowUri'));
    modelName = uniqueName('churn-ui');
    const experiment = uniqueName('exp-ui');
    // Version 1 was champion, then version 2 was promoted over it: a rollback has somewhere to go.
    v1 = (await registerTestModel(mlflow, { modelName, experiment, seed: 11 })).version;
    const second = await registerTestModel(mlflow, { modelName, experiment, seed: 12 });
    v2 = second.version;
    const runUri = (await mlflow.getRun(second.runId)).info.artifact_uri;
    await mlflow.uploadArtifact(
      runUri,
      'plots/roc.png',
      rocPng(
        [
          [0, 0],
          [0.2, 0.7],
          [1, 1],
        ],
        0.8,
      ),
    );
    await mlflow.uploadArtifact(
      runUri,
      'plots/pr.png',
      prPng(
        [
          [0, 1],
          [0.5, 0.6],
          [1, 0.3],
        ],
        0.6,
        0.3,
      ),
    );
    const at = (s: number) => new Date(Date.now() - s * 1000).toISOString();
    const move = { alias: 'champion', action: 'promote' as const, by: 'test', reason: 'gate passed' };
    await moveAlias(mlflow, { ...move, at: at(60), version: v1, previous: null }, modelName);
    await moveAlias(mlflow, { ...move, at: at(30), version: v2, previous: v1 }, modelName);
    const lines = await Promise.all(
      Object.values(USERS).map(async (u) => `${u.user}:${u.role}:${await hashPassword(u.password)}`),
    );
    app = await buildApp({
      mlflow,
      modelName,
      alias: 'champion',
      credentials: parseCredentials(lines.join('\n')),
      metricsAuth: true,
      predictionLog: { dir: path.join(tempHome('driftwood-ui-'), 'predictions'), flushMs: 100 },
    });
    await app.listen({ port: PORT, host: '127.0.0.1' });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    mkdirSync(SHOTS, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    if (Object.keys(loadTimes).length) {
      const out = path.join(ROOT, '.driftwood', 'test', 'dashboard-load-times.json');
      writeFileSync(out, `${JSON.stringify(loadTimes, null, 2)}\n`);
    }
  });

  async function signIn(who: keyof typeof USERS): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.on('pageerror', (e) => console.log(`[${who}] pageerror: ${e.message}`));
    await page.goto(`${BASE}/ui/`);
    await page.getByLabel('User').fill(USERS[who].user);
    await page.getByLabel('Password').fill(USERS[who].password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    try {
      await page.waitForSelector('main[data-ready="overview"]');
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await page.locator('body').innerHTML()}`);
    }
    return { context, page };
  }

  async function open(page: Page, name: string, who: string): Promise<void> {
    await page.goto(`${BASE}/ui/#/${name}`);
    await page.reload(); // a full load, so the navigation timing below is this page's
    await page.waitForSelector(`main[data-ready="${name}"]`);
    const t = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      return {
        domContentLoaded: nav.domContentLoadedEventEnd,
        load: nav.loadEventEnd,
        ready: performance.now(),
      };
    });
    loadTimes[`${who} ${name}`] = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Math.round(v)]));
    await page.screenshot({ path: path.join(SHOTS, `dashboard-${who}-${name}.png`), fullPage: true });
  }

  it('serves the build under /ui with caching headers and refuses a wrong password', async () => {
    const index = await fetch(`${BASE}/ui/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const asset = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(await index.text())?.[1];
    expect(asset).toBeDefined();
    const js = await fetch(`${BASE}${asset}`);
    expect(js.headers.get('cache-control')).toContain('immutable');

    const page = await browser.newPage();
    await page.goto(`${BASE}/ui/`);
    await page.getByLabel('User').fill(USERS.predictor.user);
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('Wrong user or password');
    await page.close();
  });

  it('predicts through the form: the API answer, its version and the per-feature contributions', async () => {
    const { context, page } = await signIn('predictor');
    await open(page, 'overview', 'predict-user');
    expect(await page.locator('main').textContent()).toContain(`champion${v2}`);
    await open(page, 'predict', 'predict-user');
    for (const [field, value] of Object.entries(sampleCustomer)) {
      const el = page.locator(`#f-${field}`);
      if ((await el.evaluate((e) => e.tagName)) === 'SELECT') await el.selectOption(String(value));
      else await el.fill(String(value));
    }
    await page.getByRole('button', { name: 'Predict' }).click();
    await page.waitForSelector('#predict-probability');
    const api = await app.inject({
      method: 'POST',
      url: '/v1/predict',
      payload: sampleCustomer,
      headers: { authorization: basic(USERS.predictor) },
    });
    const expected = api.json() as { probability: number; model: { version: string } };
    expect(await page.locator('#predict-probability').textContent()).toContain(
      `${(expected.probability * 100).toFixed(1)} %`,
    );
    expect(await page.locator('#predict-model').textContent()).toContain(`version ${v2}`);
    expect(await page.locator('#predict-contributions li').count()).toBe(11);
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-predict-answer.png'), fullPage: true });

    await page.locator('#f-tenure_days').fill('three weeks');
    await page.getByRole('button', { name: 'Predict' }).click();
    await page.waitForSelector('#predict-error');
    expect(await page.locator('#predict-error').textContent()).toMatch(/tenure_days/);
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-predict-error.png'), fullPage: true });
    await context.close();
  });

  it('shows a predict user the model list without admin actions, and the API refuses them', async () => {
    const { context, page } = await signIn('predictor');
    await open(page, 'models', 'predict-user');
    const versions = await page.locator('#models-table tbody tr td:first-child').allTextContents();
    expect(versions).toEqual([v2, v1]);
    expect(await page.locator('#models-history tbody tr').count()).toBe(2);
    expect(await page.locator('button.admin').count()).toBe(0);
    // Version 2's ROC and PR plots from its MLflow run; version 1 logged none.
    expect(await page.locator('#models-plots img').count()).toBe(2);
    expect(
      await page
        .locator('#models-plots img')
        .first()
        .evaluate((i) => (i as HTMLImageElement).naturalWidth),
    ).toBeGreaterThan(0);
    const status = await page.evaluate(async () => {
      const res = await fetch('/v1/admin/rollback', {
        method: 'POST',
        headers: {
          authorization: `Basic ${sessionStorage.getItem('driftwood.auth')}`,
          'content-type': 'application/json',
        },
        body: '{}',
      });
      return res.status;
    });
    expect(status).toBe(403);
    expect((await mlflow.getVersionByAlias(modelName, 'champion'))?.version).toBe(v2);
    await context.close();
  });

  it('lets an admin roll back after confirming, and the champion changes', async () => {
    const { context, page } = await signIn('admin');
    await open(page, 'models', 'admin');
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Roll back champion' }).click();
    await page.waitForSelector('#models-status .ok');
    expect(await page.locator('#models-status').textContent()).toContain(`moved from ${v2} to ${v1}`);
    expect((await mlflow.getVersionByAlias(modelName, 'champion'))?.version).toBe(v1);
    const info = await app.inject({ url: '/v1/model', headers: { authorization: basic(USERS.admin) } });
    expect(info.json().version).toBe(v1);
    expect(await page.locator('#models-history tbody tr').first().textContent()).toContain('rollback');
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-admin-rolled-back.png'), fullPage: true });

    // The form's prediction and the test's own reach the log within a flush.
    await expect
      .poll(async () => {
        const res = await app.inject({
          url: '/v1/monitoring/predictions',
          headers: { authorization: basic(USERS.admin) },
        });
        return res.json().total;
      })
      .toBe(2);
    await open(page, 'monitoring', 'admin');
    expect(await page.locator('main').textContent()).toContain('2 served predictions');
    expect(await page.locator('#chart-volume').count()).toBe(1);
    expect(await page.locator('#chart-scores').count()).toBe(1);
    expect(await page.locator('#chart-requests').count()).toBe(1);
    expect(await page.locator('#chart-predictions').count()).toBe(1);
    await open(page, 'forecast', 'admin');
    expect(await page.locator('main').textContent()).toContain('No forecast model exists yet');
    await open(page, 'architecture', 'admin');
    expect(await page.locator('main .flow li').count()).toBe(8);
    await open(page, 'overview', 'admin');
    expect(await page.locator('main').textContent()).toContain('API traffic');
    await open(page, 'predict', 'admin');
    await context.close();
  });
});

function basic(u: { user: string; password: string }): string {
  return `Basic ${Buffer.from(`${u.user}:${u.password}`).toString('base64')}`;
}
