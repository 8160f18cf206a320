import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';

/** The code version a run records: DRIFTWOOD_GIT_COMMIT (set in images) or the checkout's HEAD. */
export function gitCommit(env: Record<string, string | undefined> = process.env): string | undefined {
  if (env.DRIFTWOOD_GIT_COMMIT) return env.DRIFTWOOD_GIT_COMMIT;
  try {
    return (
      execFileSync('git', ['rev-parse', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim() || undefined
    );
  } catch {
    return undefined;
  }
}

/** Who acts, for the audit trail: DRIFTWOOD_USER (the API sets it to its caller), else the OS user. */
export function currentUser(env: NodeJS.ProcessEnv = process.env): string {
  const named = env.DRIFTWOOD_USER?.trim();
  if (named) return named;
  try {
    return os.userInfo().username;
  } catch {
    return 'driftwood';
  }
}

/** Versions of the packages that decide a model's numbers, for the run's environment artifact. */
export function packageVersions(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const out: Record<string, string> = { node: process.versions.node };
  for (const name of [
    '@tensorflow/tfjs',
    '@tensorflow/tfjs-backend-wasm',
    '@tensorflow/tfjs-node',
    'knex',
    'undici',
  ]) {
    try {
      const file = require.resolve(`${name}/package.json`);
      out[name] = (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
    } catch {
      // Not installed (tfjs-node is optional).
    }
  }
  return out;
}
