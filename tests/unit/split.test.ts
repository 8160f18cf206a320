import { describe, expect, it } from 'vitest';
import { datasetSettings, loadContract, validateContract } from '../../tasks/src/contracts/index.js';
import type { Contract } from '../../tasks/src/contracts/types.js';
import type { LabelledRow } from '../../tasks/src/features/rows.js';
import { assignSplits, type Split, splitOf } from '../../tasks/src/features/split.js';
import { splitAndFit } from '../../tasks/src/features/training-rows.js';
import { Rng } from '../../tasks/src/random.js';

const T0 = Date.UTC(2026, 0, 1);
const H = 3_600_000;

/** n rows with distinct ids; row i happened at hour i, unless `time` says otherwise. */
const rowsOf = (n: number, time: (i: number) => number | undefined = (i) => T0 + i * H) =>
  Array.from({ length: n }, (_, i) => ({ id: `c${String(i).padStart(6, '0')}`, time: time(i) }));

const count = (split: Split[], s: Split) => split.filter((x) => x === s).length;

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const rng = new Rng(seed);
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe('the hash split', () => {
  const rows = rowsOf(20_000);
  const policy = { strategy: 'hash' as const, holdout: 0.2, validation: 0.15 };

  it('puts each row where the hash of its id says, whatever its time', () => {
    const split = assignSplits(rows, 7, policy);
    rows.forEach((r, i) => {
      expect(split[i]).toBe(splitOf(r.id, 7, policy));
    });
    const later = assignSplits(
      rows.map((r) => ({ ...r, time: (r.time as number) + 1_000 * H })),
      7,
      policy,
    );
    expect(later).toEqual(split);
  });

  it('honours the fractions within 1.5 points on 20,000 ids', () => {
    const split = assignSplits(rows, 7, policy);
    expect(Math.abs(count(split, 'holdout') / rows.length - 0.2)).toBeLessThan(0.015);
    expect(Math.abs(count(split, 'validation') / rows.length - 0.15)).toBeLessThan(0.015);
  });

  it('is deterministic for a seed, and another seed deals other rows', () => {
    expect(assignSplits(rows, 7, policy)).toEqual(assignSplits(rows, 7, policy));
    const other = assignSplits(rows, 8, policy);
    const same = assignSplits(rows, 7, policy).filter((s, i) => s === other[i]).length;
    expect(same).toBeLessThan(rows.length * 0.9);
  });
});

describe('the time split', () => {
  const policy = { strategy: 'time' as const, holdout: 0.2, validation: 0.15 };

  it('makes the newest rows the holdout and the ones just before them validation', () => {
    const rows = shuffled(rowsOf(1_000), 1);
    const split = assignSplits(rows, 7, policy);
    const times = (s: Split) => rows.filter((_, i) => split[i] === s).map((r) => r.time as number);
    expect(times('holdout')).toHaveLength(200);
    expect(times('validation')).toHaveLength(150);
    expect(times('train')).toHaveLength(650);
    expect(Math.min(...times('holdout'))).toBe(T0 + 800 * H);
    expect(Math.max(...times('validation'))).toBeLessThan(Math.min(...times('holdout')));
    expect(Math.max(...times('train'))).toBeLessThan(Math.min(...times('validation')));
  });

  it.each([
    [10, 0.2, 0.15, 2, 2],
    [7, 0.2, 0.15, 1, 1],
    [333, 0.1, 0.3, 33, 100],
  ])('on %i rows with holdout %f and validation %f holds %i and %i rows', (n, holdout, validation, h, v) => {
    const split = assignSplits(rowsOf(n), 3, { strategy: 'time', holdout, validation });
    expect(count(split, 'holdout')).toBe(h);
    expect(count(split, 'validation')).toBe(v);
  });

  it('gives every row the same part whatever order the rows come in', () => {
    const rows = rowsOf(500);
    const byId = (rs: typeof rows) => {
      const split = assignSplits(rs, 11, policy);
      return Object.fromEntries(rs.map((r, i) => [r.id, split[i]]));
    };
    expect(byId(shuffled(rows, 2))).toEqual(byId(rows));
  });

  it('breaks ties at a boundary by the id hash, the same way on every run', () => {
    // Every row at one of two times: the holdout boundary falls inside the newer group.
    const rows = rowsOf(100, (i) => T0 + (i < 30 ? 0 : H));
    const split = assignSplits(rows, 5, policy);
    expect(count(split, 'holdout')).toBe(20);
    expect(rows.filter((_, i) => split[i] === 'holdout').every((r) => r.time === T0 + H)).toBe(true);
    expect(assignSplits(shuffled(rows, 9), 5, policy).sort()).toEqual([...split].sort());
    expect(assignSplits(rows, 5, policy)).toEqual(split);
  });

  it('refuses a row without a time, naming it', () => {
    const rows = rowsOf(10, (i) => (i === 4 ? undefined : T0 + i * H));
    expect(() => assignSplits(rows, 1, policy)).toThrow(
      /split strategy 'time': row 'c000004' has no time; every row needs one/,
    );
  });

  it('fits the transform on the oldest rows only (splitAndFit)', () => {
    // The newest rows carry a value training never saw: the fitted range must not include it.
    const rows: LabelledRow[] = rowsOf(100).map((r, i) => ({
      customerId: r.id,
      time: r.time as number,
      label: (i % 2) as 0 | 1,
      features: { amount: i >= 80 ? 1_000 : i },
    }));
    const { parts, state } = splitAndFit({ numeric: ['amount'], categorical: [] }, rows, 1, {
      holdout: 0.2,
      validation: 0.1,
      strategy: 'time',
    });
    expect(parts.holdout.map((r) => r.customerId)).toEqual(rows.slice(80).map((r) => r.customerId));
    expect(parts.validation.map((r) => r.customerId)).toEqual(rows.slice(70, 80).map((r) => r.customerId));
    // Rows 0…69 train: the fitted range is theirs, the holdout's 1,000 is unseen.
    expect(state.numeric[0]).toMatchObject({ name: 'amount', min: 0, max: 69 });
  });
});

const columnsContract = (training: Record<string, unknown>, timestamp = true) => ({
  dataset: 'loans',
  version: 1,
  task: 'binary_classification',
  builder: 'columns',
  training,
  tables: [
    {
      name: 'applications',
      files: ['applications.csv'],
      key: 'application_id',
      columns: [
        { name: 'application_id', type: 'string', role: 'id' },
        ...(timestamp ? [{ name: 'submitted_at', type: 'timestamp', role: 'timestamp' }] : []),
        { name: 'income', type: 'number', role: 'feature' },
        { name: 'defaulted', type: 'boolean', role: 'target' },
      ],
    },
  ],
});

describe('the split in the contract', () => {
  it('reads the strategy, hash by default and time for a forecast', async () => {
    const ok = await validateContract(
      columnsContract({ split: { validation: 0.1, test: 0.25, strategy: 'time' } }),
      'loans.yaml',
    );
    expect(datasetSettings({ ...ok, digest: 'x' } as Contract).split).toEqual({
      validation: 0.1,
      test: 0.25,
      strategy: 'time',
    });
    const plain = await validateContract(columnsContract({}), 'loans.yaml');
    expect(datasetSettings({ ...plain, digest: 'x' } as Contract).split.strategy).toBe('hash');
    expect(datasetSettings(await loadContract('churn')).split).toEqual({
      validation: 0.15,
      test: 0.2,
      strategy: 'hash',
    });
    expect(datasetSettings(await loadContract('btc')).split.strategy).toBe('time');
  });

  it.each([
    [
      'an unknown strategy',
      columnsContract({ split: { strategy: 'random' } }),
      /\/training\/split\/strategy: must be equal to one of the allowed values \(hash, time\)/,
    ],
    [
      "'time' on a table without a timestamp column",
      columnsContract({ split: { strategy: 'time' } }, false),
      /\/training\/split\/strategy: 'time' orders rows by their time: give table 'applications' a column with role: timestamp, or use 'hash'/,
    ],
    [
      "'time' with a builder whose rows are all as of one cutoff",
      { ...columnsContract({ split: { strategy: 'time' } }), builder: 'churn_activity' },
      /\/training\/split\/strategy: 'time' orders rows by their table's timestamp column, which builder 'churn_activity' does not give/,
    ],
    [
      'a test share of a half or more',
      columnsContract({ split: { test: 0.5 } }),
      /\/training\/split\/test: must be < 0.5/,
    ],
  ])('refuses %s, naming the path', async (_, raw, message) => {
    await expect(validateContract(raw, 'loans.yaml')).rejects.toThrow(message);
  });
});
