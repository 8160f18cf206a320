import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadResult, LoadSpec } from './cannon.js';

export type { LoadResult } from './cannon.js';

export interface LoadTarget {
  name: string;
  origin: string;
  path: string;
  headers: Record<string, string>;
  /** Request bodies, used in order so every target sees the same mix in the same order. */
  bodies: string[];
}

const cannon = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cannon.js');

/**
 * Loads one target with autocannon in a separate process (cannon.ts) and returns its result. On a
 * small machine the generator competes with the server for cores; a process of its own at least
 * keeps it out of the server's event loop, and every target gets the very same generator settings.
 */
export async function runLoad(
  target: LoadTarget,
  opts: { concurrency: number; warmupS: number; durationS: number; specDir: string },
): Promise<LoadResult> {
  const spec: LoadSpec = {
    name: target.name,
    url: target.origin,
    path: target.path,
    headers: target.headers,
    bodies: target.bodies,
    connections: opts.concurrency,
    warmupS: opts.warmupS,
    durationS: opts.durationS,
  };
  const specPath = path.join(opts.specDir, 'load-spec.json');
  writeFileSync(specPath, JSON.stringify(spec));
  const child = spawn(process.execPath, [cannon, specPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`load generator for ${target.name} exited with ${code}: ${err.trim()}`);
  return JSON.parse(out.trim().split('\n').at(-1) as string) as LoadResult;
}
