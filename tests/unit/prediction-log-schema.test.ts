import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { PredictionLines, type ServedPrediction } from '../../serving/src/predictions/line.js';
import { ROOT } from '../support/env.js';

const SCHEMA = path.join(ROOT, 'contracts', 'prediction-log.schema.json');
/** The same bytes the Python reader's test reads (tests/monitoring/test_prediction_log_schema.py). */
const FIXTURE = path.join(ROOT, 'tests', 'fixtures', 'prediction-log', 'predictions.jsonl');
const KEY = 'fixture-pii-key-0123456789';
const TS = Date.parse('2026-11-20T10:20:00.000Z');
const churnModel = { name: 'churn', version: '3', alias: 'champion' };
const challenger = { name: 'churn', version: '4', alias: 'challenger' };
const parcelsModel = { name: 'parcels', version: '1', alias: 'champion' };

/**
 * Lines made by the real writer, as the API makes them: a single prediction from its body's text,
 * the rows of a batch body, a shadow line, a row serialised from the parsed row (an escape in its
 * body), and another dataset's line with its own id column and no PII key.
 */
function writerLines(): string[] {
  const churn = new PredictionLines(KEY, { dataset: 'churn', partitionPrefix: '' });
  const parcels = new PredictionLines(undefined, {
    dataset: 'parcels',
    partitionPrefix: 'dataset=parcels/',
    idColumn: 'parcel_ref',
  });
  const at = (n: number) => TS + n * 1000 + n;
  const base = (n: number, model: ServedPrediction['model']) => ({
    ts: at(n),
    requestId: `req-${n}`,
    model,
    served: true,
  });
  const single =
    '{"customer_id":"C000042","tenure_days":35,"monthly_charges":19.5,"plan":"basic","region":"north"}';
  const batch =
    '{"rows":[{"customer_id":"C000043","tenure_days":400,"monthly_charges":null,"plan":"premium","region":"south"},{"tenure_days":12,"monthly_charges":80.25,"plan":"basic","region":"east"}]}';
  const escaped = '{"customer_id":"C000044","tenure_days":1,"plan":"stan\\u0064ard","region":"west"}';
  const batchRows = JSON.parse(batch).rows as Record<string, unknown>[];
  return [
    churn.format({
      ...base(0, churnModel),
      probability: 0.7311,
      label: 1,
      row: JSON.parse(single),
      source: { body: single, index: -1 },
    }),
    ...batchRows.map((row, index) =>
      churn.format({
        ...base(1 + index, churnModel),
        requestId: 'req-batch',
        probability: index === 0 ? 0.125 : 0.5,
        label: index === 0 ? 0 : 1,
        row,
        source: { body: batch, index, rows: batchRows.length },
      }),
    ),
    churn.format({
      ...base(3, challenger),
      requestId: 'req-0',
      served: false,
      probability: 0.69,
      label: 1,
      row: JSON.parse(single),
      source: { body: single, index: -1 },
    }),
    churn.format({
      ...base(4, churnModel),
      probability: 0,
      label: 0,
      row: JSON.parse(escaped),
      source: { body: escaped, index: -1 },
    }),
    parcels.format({
      ...base(5, parcelsModel),
      probability: 0.42,
      label: 0,
      row: { parcel_ref: 'P000001', weight_kg: 2.5, distance_km: 340, stops: 4, carrier: 'swiftco' },
    }),
  ];
}

describe('the prediction-log line schema (contracts/prediction-log.schema.json)', () => {
  const validate = new Ajv({ allErrors: true }).compile(JSON.parse(readFileSync(SCHEMA, 'utf8')));
  const lines = writerLines();

  it('every line the writer makes conforms: single, batch, shadow, parsed-row and another dataset’s', () => {
    expect(lines).toHaveLength(6);
    for (const line of lines) {
      expect(line.endsWith('\n')).toBe(true);
      const record = JSON.parse(line);
      expect(validate(record), `${line} ${JSON.stringify(validate.errors)}`).toBe(true);
    }
    const records = lines.map((l) => JSON.parse(l));
    expect(records.map((r) => r.dataset)).toEqual(['churn', 'churn', 'churn', 'churn', 'churn', 'parcels']);
    // The id column is tokenised, never a feature, whatever the dataset calls it.
    expect(records.every((r) => !('customer_id' in r.features) && !('parcel_ref' in r.features))).toBe(true);
    expect(records[5].customer_token).toBeNull();
  });

  it('the committed fixture is what the writer makes today, so both languages read the same bytes', () => {
    const made = lines.join('');
    if (process.env.UPDATE_FIXTURES === '1' || !existsSync(FIXTURE)) {
      mkdirSync(path.dirname(FIXTURE), { recursive: true });
      writeFileSync(FIXTURE, made);
    }
    expect(readFileSync(FIXTURE, 'utf8')).toBe(made);
  });

  it.each([
    ['without a time', (r: Record<string, unknown>) => delete r.ts],
    ['with a probability above 1', (r: Record<string, unknown>) => Object.assign(r, { probability: 1.5 })],
    [
      'with a nested feature',
      (r: Record<string, unknown>) => Object.assign(r, { features: { a: { b: 1 } } }),
    ],
    [
      'with a model lacking its version',
      (r: Record<string, unknown>) => Object.assign(r, { model: { name: 'churn', alias: 'champion' } }),
    ],
    ['with a raw customer id', (r: Record<string, unknown>) => Object.assign(r, { customer_id: 'C000042' })],
  ])('refuses a line %s', (_what, spoil) => {
    const record = JSON.parse(lines[0] as string);
    spoil(record);
    expect(validate(record)).toBe(false);
  });
});
