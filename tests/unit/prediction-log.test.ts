import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PredictionLog } from '../../serving/src/predictions/log.js';
import { tempHome } from '../support/env.js';

describe('PredictionLog spill files', () => {
  it('writes the spill file a killed process left behind, once, skipping its torn last record', async () => {
    const dir = tempHome('driftwood-log-orphan-');
    const spillDir = path.join(dir, '.spill');
    mkdirSync(spillDir, { recursive: true });
    // The id of a process that has exited: the spill file's owner is gone.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid as number;
    const record = (i: number) => `dt=2026-11-23/hr=10\t${JSON.stringify({ request_id: `r${i}` })}\n`;
    writeFileSync(
      path.join(spillDir, `${dead}-1764000000000.spill`),
      `${record(0)}${record(1)}${record(2)}dt=2026-11-23/hr=10\t{"request_i`,
    );
    // A live process's spill file (this one's parent) is left alone.
    writeFileSync(path.join(spillDir, `${process.ppid}-1.spill`), record(9));
    const log = new PredictionLog({ dir, flushMs: 60_000 });
    await log.close();
    expect(log).toMatchObject({ recovered: 3, accepted: 0, written: 0, lagLines: 0 });
    const ids = readFileSync(path.join(dir, 'dt=2026-11-23/hr=10/predictions.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).request_id);
    expect(ids).toEqual(['r0', 'r1', 'r2']);
    expect(readdirSync(spillDir)).toEqual([`${process.ppid}-1.spill`]);
    // A second start finds nothing more to recover.
    const again = new PredictionLog({ dir, flushMs: 60_000 });
    await again.close();
    expect(again.recovered).toBe(0);
  });

  it('retries a failed write until the disk takes it, losing and repeating nothing', async () => {
    const dir = tempHome('driftwood-log-retry-');
    // A file where the partition's folder must go: every write fails until it is removed.
    writeFileSync(path.join(dir, 'dt=2026-11-23'), 'in the way');
    const errors: unknown[] = [];
    const log = new PredictionLog({ dir, flushMs: 60_000, onWriteError: (err) => errors.push(err) });
    for (let i = 0; i < 100; i++)
      log.appendLine('dt=2026-11-23/hr=10', `${JSON.stringify({ request_id: `r${i}` })}\n`);
    const flushed = log.flush();
    await expect.poll(() => log.writeErrors).toBeGreaterThanOrEqual(2);
    expect(log.lagLines).toBe(100);
    expect(log.lagSeconds()).toBeGreaterThan(0);
    rmSync(path.join(dir, 'dt=2026-11-23'));
    await flushed;
    await log.close();
    const ids = readFileSync(path.join(dir, 'dt=2026-11-23/hr=10/predictions.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).request_id);
    expect(ids).toEqual(Array.from({ length: 100 }, (_, i) => `r${i}`));
    expect(log).toMatchObject({ accepted: 100, written: 100, lagLines: 0 });
    expect(errors.length).toBe(log.writeErrors);
  });
});
