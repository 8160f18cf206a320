import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { TestProject } from 'vitest/node';

const ROOT = path.resolve(import.meta.dirname, '../..');

/**
 * Starts one real MLflow server for the whole suite (unless the caller already runs one and says so
 * in DRIFTWOOD_TEST_MLFLOW_URI) and hands its URL to the tests.
 */
export default function setup(project: TestProject) {
  const given = process.env.DRIFTWOOD_TEST_MLFLOW_URI;
  if (given) {
    project.provide('mlflowUri', given);
    return;
  }
  const port = process.env.DRIFTWOOD_TEST_MLFLOW_PORT ?? '5055';
  const dir = path.join(ROOT, '.driftwood', 'test', `mlflow-${port}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  execFileSync(path.join(ROOT, 'scripts', 'mlflow.sh'), ['start', port, dir], { stdio: 'inherit' });
  project.provide('mlflowUri', `http://127.0.0.1:${port}`);
  return () => {
    execFileSync(path.join(ROOT, 'scripts', 'mlflow.sh'), ['stop', port], { stdio: 'inherit' });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    mlflowUri: string;
  }
}
