import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONTRACTS_DIR, loadContract, validateContract } from '../../tasks/src/contracts/index.js';
import { checkColumns, readCell, validateRow } from '../../tasks/src/contracts/rows.js';
import type { ColumnContract, TableContract } from '../../tasks/src/contracts/types.js';

const base = () => ({
  dataset: 'demo',
  version: 1,
  task: 'regression',
  builder: 'columns',
  tables: [
    {
      name: 'items',
      files: ['items.csv'],
      key: 'id',
      columns: [
        { name: 'id', type: 'integer', role: 'id', nullable: false },
        { name: 'price', type: 'number', role: 'target', nullable: false, on_anomaly: 'coerce' },
      ],
    },
  ],
});

type Base = ReturnType<typeof base>;
const tbl = (c: Base) => c.tables[0] as Base['tables'][number];
const col = (c: Base, i: number) => tbl(c).columns[i] as Record<string, unknown>;

describe('dataset contracts', () => {
  it('loads the churn contract with its defaults and digest', async () => {
    const c = await loadContract('churn');
    expect(c.tables.map((t) => t.name)).toEqual(['customers', 'events', 'labels']);
    expect(c.alert_threshold).toBe(0.05);
    expect(c.file_rules).toEqual({
      extra_columns: 'accept',
      missing_column: 'quarantine_file',
      type_change: 'quarantine_file',
      type_change_share: 0.5,
    });
    expect(c.digest).toMatch(/^[0-9a-f]{64}$/);
    const email = c.tables[0]?.columns.find((col) => col.name === 'email');
    expect(email).toMatchObject({ role: 'pii', store_as: 'email_token' });
  });

  // Each bad contract names the JSON path of what is wrong.
  const bad: [string, (c: Base) => unknown, RegExp][] = [
    [
      'an unknown column type',
      (c) => (col(c, 1).type = 'float'),
      /\/tables\/0\/columns\/1\/type: must be equal to one of the allowed values \(string, integer, number, boolean, timestamp\)/,
    ],
    [
      'an unknown role',
      (c) => (col(c, 0).role = 'label'),
      /\/tables\/0\/columns\/0\/role: must be equal to one of the allowed values/,
    ],
    [
      'a misspelt property',
      (c) => (col(c, 1).nulable = true),
      /\/tables\/0\/columns\/1: unknown property 'nulable'/,
    ],
    [
      'a bad anomaly policy',
      (c) => (col(c, 1).on_anomaly = 'fix'),
      /\/tables\/0\/columns\/1\/on_anomaly: must be equal to one of the allowed values \(coerce, drop_row, quarantine_file\)/,
    ],
    [
      'a missing version',
      (c) => delete (c as Partial<typeof c>).version,
      /contract demo.yaml: \(root\): must have required property 'version'/,
    ],
    [
      'a threshold above 1',
      (c) => ((c as Record<string, unknown>).alert_threshold = 5),
      /\/alert_threshold: must be <= 1/,
    ],
    [
      'a key that is not a column',
      (c) => (tbl(c).key = 'sku'),
      /\/tables\/0\/key: 'sku' is not one of the table's columns/,
    ],
    [
      'a pii column without a token column',
      (c) => tbl(c).columns.push({ name: 'email', type: 'string', role: 'pii' } as never),
      /\/tables\/0\/columns\/2\/store_as: a pii column is stored tokenised/,
    ],
    [
      'a duplicate column',
      (c) => tbl(c).columns.push({ ...col(c, 1) } as never),
      /\/tables\/0\/columns\/2\/name: duplicate column 'price'/,
    ],
    [
      'a file of an unknown format',
      (c) => (tbl(c).files = ['items.xlsx']),
      /\/tables\/0\/files\/0: must match pattern/,
    ],
  ];
  it.each(bad)('rejects %s with the path of the error', async (_, mutate, message) => {
    const c = base();
    mutate(c);
    await expect(validateContract(c, 'demo.yaml')).rejects.toThrow(message);
    await expect(validateContract(c, 'demo.yaml')).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('accepts a new dataset from a contract file alone, and names a broken or missing file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'driftwood-contracts-'));
    copyFileSync(
      path.join(DEFAULT_CONTRACTS_DIR, 'contract.schema.json'),
      path.join(dir, 'contract.schema.json'),
    );
    writeFileSync(path.join(dir, 'demo.yaml'), JSON.stringify(base()));
    expect((await loadContract('demo', dir)).tables[0]?.key).toBe('id');
    writeFileSync(path.join(dir, 'broken.yaml'), 'dataset: [unclosed');
    await expect(loadContract('broken', dir)).rejects.toThrow(/broken\.yaml: not valid YAML/);
    await expect(loadContract('absent', dir)).rejects.toThrow(
      /no contract for dataset 'absent': expected .*absent\.yaml/,
    );
    writeFileSync(path.join(dir, 'other.yaml'), JSON.stringify(base()));
    await expect(loadContract('other', dir)).rejects.toThrow(
      /other\.yaml: \/dataset: expected 'other', got 'demo'/,
    );
  });
});

describe('validateRow applies each column policy', () => {
  const table: TableContract = {
    name: 't',
    files: ['t.csv'],
    key: 'id',
    columns: [
      { name: 'id', type: 'integer', role: 'id', nullable: false, on_anomaly: 'quarantine_file' },
      { name: 'n', type: 'number', role: 'feature', nullable: true, on_anomaly: 'coerce', range: { min: 0 } },
      {
        name: 'kind',
        type: 'string',
        role: 'feature',
        nullable: false,
        allowed: ['a', 'b'],
        on_anomaly: { default: 'a' },
      },
      { name: 'at', type: 'timestamp', role: 'timestamp', nullable: false, on_anomaly: 'drop_row' },
      { name: 'ok', type: 'boolean', role: 'feature', nullable: true, on_anomaly: 'coerce' },
    ],
  };
  const row = (o: Record<string, unknown>) => ({
    id: '1',
    n: '2',
    kind: 'a',
    at: '2026-11-01T00:00:00Z',
    ok: 'true',
    ...o,
  });
  const cases: [string, Record<string, unknown>, boolean, string, unknown][] = [
    [
      'a clean CSV row',
      {},
      true,
      'good',
      { id: 1, n: 2, kind: 'a', at: Date.parse('2026-11-01T00:00:00Z'), ok: true },
    ],
    ['"42" padded in CSV is coerced', { n: ' 42 ' }, true, 'corrected', 42],
    ['"42" as text in JSON is coerced', { n: '42', id: 1, ok: true }, false, 'corrected', 42],
    ['a blank number becomes null', { n: '  ' }, true, 'corrected', null],
    ['an uncoercible number drops the row', { n: 'abc' }, true, 'dropped', undefined],
    [
      'a number out of range drops the row (coerce has nothing to fix)',
      { n: '-1' },
      true,
      'dropped',
      undefined,
    ],
    ['an unknown category takes the default', { kind: 'z' }, true, 'corrected', 'a'],
    ['a missing required time drops the row', { at: '' }, true, 'dropped', undefined],
    ['"yes" for a boolean is coerced', { ok: 'yes' }, true, 'corrected', true],
    ['an empty id quarantines the file', { id: '' }, true, 'quarantine_file', undefined],
  ];
  it.each(cases)('%s', (_, patch, textual, status, value) => {
    const v = validateRow(row(patch), 7, table, textual);
    expect(v.status).toBe(status);
    const col = Object.keys(patch)[0] ?? 'id';
    if (v.status === 'good') expect(v.values).toEqual(value);
    else if (v.status === 'corrected') expect(v.values[col]).toEqual(value);
    if (v.status !== 'good')
      expect(v.problems.every((p) => p.row === 7 && typeof p.rule === 'string')).toBe(true);
  });

  it('reads Parquet-typed values strictly', () => {
    const [id, , , at] = table.columns as [ColumnContract, ColumnContract, ColumnContract, ColumnContract];
    expect(readCell(new Date('2026-11-01T00:00:00Z'), at, false)).toEqual({
      ok: true,
      value: Date.parse('2026-11-01T00:00:00Z'),
    });
    expect(readCell(5n, id, false)).toEqual({ ok: true, value: 5 });
    expect(readCell(1.5, id, false)).toMatchObject({ ok: false, rule: 'type' });
  });

  it('checks a file header: missing required columns and unknown extras', () => {
    expect(checkColumns(['id', 'n', 'kind', 'at', 'ok', 'x'], table, 'accept')).toEqual({
      missing: [],
      extra: ['x'],
    });
    expect(checkColumns(['id', 'n', 'kind', 'at', 'x'], table, 'reject').reject).toBe(
      'unknown column(s): x (extra_columns: reject)',
    );
    // `kind` has a default, `n` and `ok` are nullable: only `at` is required and missing.
    expect(checkColumns(['id'], table, 'accept').reject).toBe('missing required column(s): at');
  });
});
