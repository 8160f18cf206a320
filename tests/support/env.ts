import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger, MlflowClient } from '@driftwood/tasks';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const CLI = path.join(ROOT, 'tasks', 'src', 'cli.ts');
export const silentLog = createLogger('silent');
export const http = { timeoutMs: 30_000, retries: 2, backoffMs: 100 };

export function tempHome(prefix = 'driftwood-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function mlflowClient(uri: string): MlflowClient {
  return new MlflowClient(uri, http);
}

/** A name no other test (or earlier run against the same server) uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real, built `driftwood` CLI (make build) as Airflow does: a separate process. */
export function runCli(args: string[], env: Record<string, string>, cwd = ROOT): Promise<CliRun> {
  return runProcess('node', [path.join(ROOT, 'tasks', 'dist', 'cli.js'), ...args], env, cwd);
}

/** Runs a process to its end; `base` is the environment it inherits (this process's by default). */
export function runProcess(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  cwd = ROOT,
  base: NodeJS.ProcessEnv = process.env,
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...base, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/**
 * Lands simulated churn data from 2026-11-01 in a home's lake and ingests it with the built CLI,
 * as the hourly pipeline would; fails the test with the CLI's own message if a step fails.
 */
export async function landAndIngest(
  env: Record<string, string>,
  data: { hours: number; seed: number; customers: number },
): Promise<void> {
  const start = Date.parse('2026-11-01T00:00:00Z');
  const until = new Date(start + data.hours * 3_600_000).toISOString();
  const steps = [
    ['simulate', '--dataset', 'churn', '--start', '2026-11-01T00:00Z', '--hours', String(data.hours)],
    ['ingest', '--dataset', 'churn', '--until', until],
  ];
  steps[0]?.push('--seed', String(data.seed), '--customers', String(data.customers));
  for (const args of steps) {
    const r = await runCli(args, env);
    if (r.code !== 0) throw new Error(`driftwood ${args[0]} exited ${r.code}: ${r.stderr}`);
  }
}

/**
 * A fresh home with simulated churn data ingested into its SQLite warehouse, in process (the
 * in-process counterpart of landAndIngest, for tests that call the steps' functions directly).
 */
export async function seededWarehouse(data: { hours: number; seed: number; customers: number }) {
  const { openObjectStore } = await import('../../tasks/src/lake/object-store.js');
  const { openWarehouse } = await import('../../tasks/src/warehouse/db.js');
  const { runSimulate } = await import('../../tasks/src/simulate/index.js');
  const { runIngest } = await import('../../tasks/src/ingest/index.js');
  const home = tempHome();
  const lake = openObjectStore(`file://${path.join(home, 'lake')}`);
  const db = await openWarehouse(`sqlite://${path.join(home, 'warehouse.db')}`);
  await runSimulate(
    {
      dataset: 'churn',
      start: Date.parse('2026-11-01T00:00:00Z'),
      labelDelayHours: 24,
      hours: data.hours,
      seed: data.seed,
      entities: data.customers,
    },
    { lake, log: silentLog },
  );
  await runIngest(
    { dataset: 'churn', piiKey: 'k-0123456789abcdef', now: Date.now },
    { lake, db, log: silentLog },
  );
  return { home, lake, db };
}
