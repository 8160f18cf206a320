import { describe, expect, it } from 'vitest';
import {
  columnarKey,
  type MirrorFile,
  parseColumnarKey,
  planColumnar,
} from '../../tasks/src/warehouse/columnar.js';

const file = (source: string, stamp: string, rows: number): MirrorFile => ({
  key: columnarKey('churn', 'events', source, stamp, rows),
  stamp,
  rows,
});
const A = 'raw/churn/dt=2026-11-01/hr=00/events.csv';
const B = 'raw/churn/dt=2026-11-01/hr=01/events.csv';

describe('planColumnar', () => {
  it.each([
    {
      name: 'in step: nothing to do',
      counts: [[A, 10]],
      stamps: [[A, 'aaaaaaaaaaaaaaaa']],
      files: [file(A, 'aaaaaaaaaaaaaaaa', 10)],
      write: [],
      remove: [],
    },
    {
      name: 'a new source is written',
      counts: [
        [A, 10],
        [B, 3],
      ],
      stamps: [
        [A, 'aaaaaaaaaaaaaaaa'],
        [B, 'bbbbbbbbbbbbbbbb'],
      ],
      files: [file(A, 'aaaaaaaaaaaaaaaa', 10)],
      write: [B],
      remove: [],
    },
    {
      name: 'a reloaded source (new ledger stamp, same rows) is rewritten and its old file removed',
      counts: [[A, 10]],
      stamps: [[A, 'cccccccccccccccc']],
      files: [file(A, 'aaaaaaaaaaaaaaaa', 10)],
      write: [A],
      remove: [file(A, 'aaaaaaaaaaaaaaaa', 10).key],
    },
    {
      name: 'a source that lost rows to another (or to erasure) is rewritten',
      counts: [[A, 9]],
      stamps: [[A, 'aaaaaaaaaaaaaaaa']],
      files: [file(A, 'aaaaaaaaaaaaaaaa', 10)],
      write: [A],
      remove: [file(A, 'aaaaaaaaaaaaaaaa', 10).key],
    },
    {
      name: 'a source the warehouse no longer holds loses its file',
      counts: [[A, 10]],
      stamps: [[A, 'aaaaaaaaaaaaaaaa']],
      files: [file(A, 'aaaaaaaaaaaaaaaa', 10), file(B, 'none', 2)],
      write: [],
      remove: [file(B, 'none', 2).key],
    },
    {
      name: 'two files of one source (a run killed between write and removal) are replaced by one',
      counts: [[A, 10]],
      stamps: [[A, 'aaaaaaaaaaaaaaaa']],
      files: [file(A, 'aaaaaaaaaaaaaaaa', 10), file(A, 'dddddddddddddddd', 10)],
      write: [A],
      remove: [file(A, 'aaaaaaaaaaaaaaaa', 10).key, file(A, 'dddddddddddddddd', 10).key],
    },
  ])('$name', ({ counts, stamps, files, write, remove }) => {
    const bySource = new Map<string, MirrorFile[]>();
    for (const f of files) {
      const source = parseColumnarKey('churn', 'events', f.key)?.source as string;
      bySource.set(source, [...(bySource.get(source) ?? []), f]);
    }
    const plan = planColumnar(
      new Map(counts as [string, number][]),
      new Map(stamps as [string, string][]),
      bySource,
    );
    expect(plan).toEqual({ write, remove });
  });

  it('names a file by its source, ledger stamp and rows, and reads them back', () => {
    expect(columnarKey('churn', 'events', A, 'aaaaaaaaaaaaaaaa', 7)).toBe(
      'columnar/churn/events/dt=2026-11-01/hr=00/events.csv.aaaaaaaaaaaaaaaa.7.parquet',
    );
    for (const source of [A, 'bench', 'a/b c%.csv'])
      expect(parseColumnarKey('churn', 'events', columnarKey('churn', 'events', source, 'none', 0))).toEqual({
        source,
        stamp: 'none',
        rows: 0,
      });
    expect(parseColumnarKey('churn', 'events', 'columnar/churn/events/x.parquet')).toBeUndefined();
  });
});
