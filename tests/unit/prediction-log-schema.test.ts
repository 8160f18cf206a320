import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { PredictionLines, type ServedPrediction } from '../../serving/src/predictions/line.js';
import { ROOT } from '../support/env.js';

const SCHEMA = path.join(ROOT, 'contracts', 'prediction-log.schema.json');
/** The same bytes the Python reader's test reads (tests/monitoring/test_prediction_log_schema.py). */
const FIXTURES = path.join(ROOT, 'tests', 'fixtures', 'prediction-log');
/** A classification dataset's partition: what the drift sidecar reads. */
const FIXTURE = path.join(FIXTURES, 'predictions.jsonl');
/** A forecast dataset's partition. */
const FORECAST_FIXTURE = path.join(FIXTURES, 'forecasts.jsonl');
const KEY = 'fixture-pii-key-0123456789';
const TS = Date.parse('2026-11-20T10:20:00.000Z');
const churnModel = { name: 'churn', version: '3', alias: 'champion' };
const challenger = { name: 'churn', version: '4', alias: 'challenger' };
const parcelsModel = { name: 'parcels', version: '1', alias: 'champion' };
const btcModel = { name: 'btc', version: '2', alias: 'champion' };

/** Forecast lines made by the real writer: one from the request's candles, one from the warehouse's. */
function forecastLines(): string[] {
  const btc = new PredictionLines(undefined, { dataset: 'btc', partitionPrefix: 'dataset=btc/' });
  const forecast = {
    forecast_open_time: '2026-11-20T11:00:00.000Z',
    horizon_hours: 1,
    price: 91234.5,
    log_return: 0.0012,
  };
  return [
    btc.formatForecast({
      ts: TS + 10_000,
      requestId: 'req-f1',
      model: btcModel,
      features: {
        open_time: '2026-11-20T10:00:00.000Z',
        open: 91000,
        high: 91500,
        low: 90800,
        close: 91125.25,
        volume: 12.5,
      },
      forecast,
    }),
    btc.formatForecast({
      ts: TS + 11_000,
      requestId: 'req-f2',
      model: btcModel,
      features: { open_time: '2026-11-20T10:00:00.000Z', close: 91125.25 },
      forecast: { ...forecast, log_return: -0.0004, price: 91088.8 },
    }),
  ];
}

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
  const forecasts = forecastLines();

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

  it('a forecast dataset’s lines conform: a forecast in place of probability and label', () => {
    for (const line of forecasts) {
      const record = JSON.parse(line);
      expect(validate(record), `${line} ${JSON.stringify(validate.errors)}`).toBe(true);
      expect(record).toMatchObject({ dataset: 'btc', served: true, customer_token: null });
      expect(record).not.toHaveProperty('probability');
    }
    // Neither or both answers is not a line.
    const both = { ...JSON.parse(lines[0] as string), forecast: JSON.parse(forecasts[0] as string).forecast };
    expect(validate(both)).toBe(false);
    const neither = JSON.parse(forecasts[0] as string);
    delete neither.forecast;
    expect(validate(neither)).toBe(false);
  });

  it.each([
    ['predictions.jsonl', FIXTURE, () => lines],
    ['forecasts.jsonl', FORECAST_FIXTURE, () => forecasts],
  ])(
    'the committed %s is what the writer makes today, so both languages read the same bytes',
    (_name, file, made) => {
      const text = made().join('');
      if (process.env.UPDATE_FIXTURES === '1' || !existsSync(file)) {
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, text);
      }
      expect(readFileSync(file, 'utf8')).toBe(text);
    },
  );

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
