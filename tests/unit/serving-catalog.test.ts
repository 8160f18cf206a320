import { describe, expect, it } from 'vitest';
import { type DatasetDeclaration, planCatalog } from '../../serving/src/datasets/catalog.js';

const tabular = (dataset: string, modelName = dataset): DatasetDeclaration => ({
  dataset,
  task: 'binary_classification',
  modelName,
});
const forecast = (dataset: string): DatasetDeclaration => ({
  dataset,
  task: 'sequence_forecast',
  modelName: dataset,
});

describe('planCatalog: which datasets one API serves, and the default one', () => {
  it.each([
    ['one classification contract is the default', [tabular('a'), forecast('f')], {}, 'a', undefined],
    [
      'DRIFTWOOD_DATASET chooses among several',
      [tabular('a'), tabular('b')],
      { defaultDataset: 'b' },
      'b',
      undefined,
    ],
    [
      'several and no choice: no default, and the message names the choice',
      [tabular('a'), tabular('b')],
      {},
      undefined,
      /set DRIFTWOOD_DATASET to one of a, b/,
    ],
    [
      'a DRIFTWOOD_DATASET that is not served is named',
      [tabular('a'), forecast('f')],
      { defaultDataset: 'f' },
      undefined,
      /DRIFTWOOD_DATASET=f is not a served classification dataset \(served: a\)/,
    ],
    ['no classification contract: no default', [forecast('f')], {}, undefined, /one of none/],
  ] as const)('%s', (_what, declared, opts, wanted, problem) => {
    const c = planCatalog([...declared], { forecastModelName: 'fm', ...opts });
    expect(c.defaultDataset).toBe(wanted);
    if (problem) expect(c.noDefault).toMatch(problem);
    else expect(c.noDefault).toBeUndefined();
  });

  it('serves classification and forecast contracts, not regression ones yet', () => {
    const c = planCatalog(
      [tabular('a'), forecast('f'), { dataset: 'r', task: 'regression', modelName: 'r' }],
      { forecastModelName: 'f' },
    );
    expect(c.datasets.map((d) => [d.dataset, d.kind])).toEqual([
      ['a', 'tabular'],
      ['f', 'forecast'],
    ]);
  });

  it('DRIFTWOOD_MODEL_NAME renames the default dataset’s model only', () => {
    const c = planCatalog([tabular('a'), tabular('b', 'b-model')], {
      defaultDataset: 'a',
      defaultModelName: 'custom',
    });
    expect(c.datasets.map((d) => d.modelName)).toEqual(['custom', 'b-model']);
  });

  it('DRIFTWOOD_FORECAST_MODEL names the only forecast dataset’s model; off serves none', () => {
    expect(planCatalog([forecast('f')], { forecastModelName: 'mine' }).datasets).toEqual([
      { dataset: 'f', kind: 'forecast', modelName: 'mine' },
    ]);
    expect(
      planCatalog([forecast('f'), forecast('g')], { forecastModelName: 'mine' }).datasets.map(
        (d) => d.modelName,
      ),
    ).toEqual(['f', 'g']);
    expect(planCatalog([forecast('f')], { forecastModelName: 'off' }).datasets).toEqual([]);
    expect(planCatalog([forecast('f')], {}).datasets).toEqual([
      { dataset: 'f', kind: 'forecast', modelName: 'f' },
    ]);
  });
});
