import { describe, expect, it } from 'vitest';
import { experimentFor, loadConfig, modelNameFor, overridesIgnored } from '../../tasks/src/config.js';
import { loadAllContracts } from '../../tasks/src/contracts/index.js';
import { datasetSettings } from '../../tasks/src/contracts/settings.js';
import type { ColumnContract, Contract } from '../../tasks/src/contracts/types.js';
import { columnsLayout, labelOf } from '../../tasks/src/features/columns-builder.js';
import { tabularProfile } from '../../tasks/src/features/profile.js';

const col = (c: Partial<ColumnContract> & Pick<ColumnContract, 'name'>): ColumnContract => ({
  type: 'number',
  role: 'feature',
  ...c,
});

function contract(columns: ColumnContract[], over: Partial<Contract> = {}): Contract {
  return {
    dataset: 'loans',
    version: 1,
    task: 'binary_classification',
    builder: 'columns',
    alert_threshold: 0.05,
    file_rules: {
      extra_columns: 'accept',
      missing_column: 'quarantine_file',
      type_change: 'quarantine_file',
      type_change_share: 0.5,
    },
    tables: [{ name: 'applications', files: ['applications.csv'], key: 'application_id', columns }],
    digest: 'x',
    ...over,
  };
}

const columns = [
  col({ name: 'application_id', type: 'string', role: 'id' }),
  col({ name: 'email', type: 'string', role: 'pii', store_as: 'email_token' }),
  col({ name: 'submitted_at', type: 'timestamp', role: 'timestamp' }),
  col({ name: 'income' }),
  col({ name: 'dependants', type: 'integer' }),
  col({ name: 'owns_home', type: 'boolean' }),
  col({ name: 'purpose', type: 'string', allowed: ['car', 'home', 'study'] }),
  col({ name: 'employer', type: 'string' }),
  col({ name: 'defaulted', type: 'string', role: 'target', positive: 'Y' }),
];

describe('the columns builder', () => {
  it('takes features from the contract: numbers and booleans numeric, strings categorical, never id, PII or time', () => {
    const layout = columnsLayout(contract(columns));
    expect(layout.numeric).toEqual(['income', 'dependants', 'owns_home']);
    expect(layout.categorical).toEqual(['purpose', 'employer']);
    // Only a closed list of values makes a segment worth judging separately.
    expect(layout.segments).toEqual(['purpose']);
    expect(layout.id.name).toBe('application_id');
    expect(layout.timestamp?.name).toBe('submitted_at');
  });

  it.each([
    [{ type: 'string', positive: 'Y' }, 'Y', 1],
    [{ type: 'string', positive: 'Y' }, 'N', 0],
    [{ type: 'string', positive: 'Y' }, null, undefined],
    [{ type: 'boolean' }, true, 1],
    [{ type: 'boolean' }, 0, 0],
    [{ type: 'integer' }, 1, 1],
    [{ type: 'integer' }, '0', 0],
    [{ type: 'integer' }, 7, undefined],
    [{ type: 'integer', positive: 7 }, 7, 1],
  ] as const)('reads target %j value %j as label %j', (target, value, label) => {
    expect(labelOf(col({ name: 't', role: 'target', ...target }), value)).toBe(label);
  });

  it('refuses a contract it cannot build from, saying why', () => {
    const noTarget = columns.filter((c) => c.role !== 'target');
    expect(() => columnsLayout(contract(noTarget))).toThrow(/exactly one table with a 'target' column/);
    const stringTarget = columns.map((c) => (c.role === 'target' ? { ...c, positive: undefined } : c));
    expect(() => columnsLayout(contract(stringTarget))).toThrow(/name its positive class with 'positive'/);
    expect(() => tabularProfile(contract(columns, { task: 'regression' }))).toThrow(/not supported yet/);
    expect(() => tabularProfile(contract(columns, { builder: 'time_windows' }))).toThrow(/builds sequences/);
  });

  it('gives linear models no sign constraints and checks invariance to id and PII only', () => {
    const p = tabularProfile(contract(columns));
    expect([...p.signs(['income', 'purpose=car'])]).toEqual([0, 0]);
    const score = (r: Record<string, unknown>) => (r.application_id === 'A1' ? 0.9 : 0.1);
    const [check] = p.behaviour([{ application_id: 'A1', income: 1 }], score, 0.5);
    expect(check?.name).toBe('invariant_to_id_and_pii');
    expect(check?.passed).toBe(false);
    expect(p.behaviour([{ income: 1 }], () => 0.3, 0.5)[0]?.passed).toBe(true);
  });
});

describe('model and experiment names per dataset', () => {
  const loans = datasetSettings(contract(columns));
  it('default to the dataset’s own, unless set in the environment', () => {
    const plain = loadConfig({}, '/tmp');
    expect(modelNameFor(plain, loans)).toBe('loans');
    expect(experimentFor(plain, loans)).toBe('driftwood-loans');
    const set = loadConfig({ DRIFTWOOD_MODEL_NAME: 'm', DRIFTWOOD_EXPERIMENT: 'e' }, '/tmp');
    expect(modelNameFor(set, loans)).toBe('m');
    expect(experimentFor(set, loans)).toBe('e');
  });

  it('set for another dataset (DRIFTWOOD_DATASET), they leave this one’s alone', () => {
    const env = { DRIFTWOOD_DATASET: 'churn', DRIFTWOOD_MODEL_NAME: 'churn', DRIFTWOOD_EXPERIMENT: 'x' };
    const other = loadConfig(env, '/tmp');
    expect(modelNameFor(other, loans)).toBe('loans');
    expect(experimentFor(other, loans)).toBe('driftwood-loans');
    expect(overridesIgnored(other, 'loans')).toEqual(['DRIFTWOOD_MODEL_NAME', 'DRIFTWOOD_EXPERIMENT']);
    const same = loadConfig({ ...env, DRIFTWOOD_DATASET: 'loans' }, '/tmp');
    expect(modelNameFor(same, loans)).toBe('churn');
    expect(overridesIgnored(same, 'loans')).toEqual([]);
  });
});

describe('dataset settings from the contract', () => {
  it('derive every default from the dataset itself', () => {
    expect(datasetSettings(contract(columns))).toEqual({
      dataset: 'loans',
      modelName: 'loans',
      experiment: 'driftwood-loans',
      idColumn: 'application_id',
      target: 'defaulted',
      horizonHours: 0,
      labelDelayHours: 0,
      split: { validation: 0.15, test: 0.2, strategy: 'hash' },
      model: {},
      calibration: 'platt',
      threshold: { objective: 'f1' },
    });
  });

  it('take what the contract declares', () => {
    const declared = contract(columns, {
      model: { name: 'credit-risk', experiment: 'risk' },
      training: { target: 'default_90d', label_delay_hours: 72, split: { validation: 0.1, test: 0.25 } },
    });
    expect(datasetSettings(declared)).toMatchObject({
      modelName: 'credit-risk',
      experiment: 'risk',
      target: 'default_90d',
      labelDelayHours: 72,
      split: { validation: 0.1, test: 0.25 },
    });
  });

  it('refuse an activity builder with no label window', () => {
    expect(() => datasetSettings(contract(columns, { builder: 'churn_activity' }))).toThrow(
      /contract loans: builder 'churn_activity' needs training.horizon_hours/,
    );
  });

  it('read the shipped contracts: each names its own model and experiment', async () => {
    const all = await loadAllContracts();
    expect(all.length).toBeGreaterThanOrEqual(2);
    for (const c of all) {
      const s = datasetSettings(c);
      expect(s.modelName).toBe(c.model?.name ?? c.dataset);
      expect(s.experiment).toBe(c.model?.experiment ?? `driftwood-${c.dataset}`);
    }
  });
});
