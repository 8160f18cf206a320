import { tokenise } from '@driftwood/tasks';
import { loggableFeatures, partitionOf } from './log.js';
import { batchRows, bodyRow, cuttable, DEFAULT_ID_COLUMN, type RowText, rowText } from './row-text.js';

/** One forecast to log (`POST …/forecast`). */
export interface ServedForecast {
  ts: number;
  requestId: string;
  model: { name: string; version: string; alias: string };
  /** The last input row the forecast continues (the newest candle). */
  features: Record<string, number | string | null>;
  forecast: {
    forecast_open_time: string;
    horizon_hours: number;
    price: number;
    log_return: number;
  };
}

/** One prediction to log, as the request path has it. */
export interface ServedPrediction {
  ts: number;
  requestId: string;
  /** Only name, version and alias are logged; the same object for every prediction of a version. */
  model: { name: string; version: string; alias: string };
  served: boolean;
  probability: number;
  label: number;
  /** The validated row. */
  row: Record<string, unknown>;
  /**
   * The request body's JSON text the row came from: the row itself (index -1) or `rows[index]` of a
   * batch of `rows` rows (the count guards the cut: a batch cut into another count is not used).
   */
  source?: { body: string; index: number; rows?: number };
  /** The A/B experiment and variant that answered, written as `experiment` and `variant`. */
  experiment?: { name: string; variant: string };
}

/** Customer tokens remembered at most, then forgotten all at once. */
const MAX_TOKENS = 50_000;

/**
 * Formats prediction log lines (`PredictionRecord`, one JSON object and a newline) on the request
 * path. It is cheap enough there: a row's features are cut from the body's text (`row-text.ts`:
 * a fraction of what `JSON.stringify` of the parsed row costs), the customer token is remembered
 * per customer and the timestamp per millisecond. Bodies that cannot be cut (an escape, a line
 * break, a nested value) are serialised from the parsed row instead, to the same record.
 */
export class PredictionLines {
  private lastMs = Number.NaN;
  private second = Number.NaN;
  /** `YYYY-MM-DDTHH:MM:SS.` of the current second. */
  private isoSecond = '';
  private iso = '';
  /** `[dataset=<name>/]dt=YYYY-MM-DD/hr=HH` of the last line formatted. */
  partition = '';
  /** `,"dataset":"<name>"` or nothing, written after the timestamp. */
  private readonly datasetJson: string;
  private readonly partitionPrefix: string;
  /** The row's id column: tokenised into `customer_token`, never logged as a feature. */
  private readonly idColumn: string;
  private readonly tokens = new Map<string, string>();
  private readonly models = new WeakMap<object, string>();
  /** The batch body last seen and its rows' starts and ends, so a batch is scanned once. */
  private batchBody: string | undefined;
  private batchRows: number[] | undefined;

  /**
   * `dataset` is written in every line; `partitionPrefix` (`dataset=<name>/`, or nothing for the
   * default dataset, whose log stays where the drift sidecar reads it) goes before `dt=…/hr=…`.
   */
  constructor(
    private readonly piiKey: string | undefined,
    opts: { dataset?: string; partitionPrefix?: string; idColumn?: string } = {},
  ) {
    this.idColumn = opts.idColumn ?? DEFAULT_ID_COLUMN;
    this.datasetJson = opts.dataset === undefined ? '' : `,"dataset":${JSON.stringify(opts.dataset)}`;
    this.partitionPrefix = opts.partitionPrefix ?? '';
  }

  /**
   * The line of one forecast: the last input row (a candle) as its features and the forecast in
   * place of a probability. Rare next to classification traffic, so serialised plainly.
   */
  formatForecast(p: ServedForecast): string {
    this.stamp(p.ts);
    return `{"ts":"${this.iso}"${this.datasetJson},"request_id":${JSON.stringify(p.requestId)},"model":${this.modelJson(p.model)},"served":true,"customer_token":null,"features":${JSON.stringify(p.features)},"forecast":${JSON.stringify(p.forecast)}}\n`;
  }

  /** Sets `iso` and `partition` for a time: toISOString once a second, then only the milliseconds. */
  private stamp(ts: number): void {
    if (ts === this.lastMs) return;
    this.lastMs = ts;
    const second = Math.floor(ts / 1000);
    if (second !== this.second) {
      this.second = second;
      this.isoSecond = new Date(second * 1000).toISOString().slice(0, 20);
      this.partition = this.partitionPrefix + partitionOf(second * 1000);
    }
    this.iso = `${this.isoSecond}${String(ts - second * 1000).padStart(3, '0')}Z`;
  }

  /** The line of one prediction, newline included; `partition` is then the line's partition. */
  format(p: ServedPrediction): string {
    this.stamp(p.ts);
    const r = (p.source && this.fromText(p.source)) ?? {
      features: JSON.stringify(loggableFeatures(p.row, this.idColumn)),
      customerId: p.row[this.idColumn],
    };
    const token = typeof r.customerId === 'string' && this.piiKey ? `"${this.token(r.customerId)}"` : 'null';
    return `{"ts":"${this.iso}"${this.datasetJson},"request_id":${JSON.stringify(p.requestId)},"model":${this.modelJson(p.model)},"served":${p.served},"customer_token":${token},"features":${r.features},"probability":${JSON.stringify(p.probability)},"label":${JSON.stringify(p.label)}${p.experiment ? `,"experiment":${JSON.stringify(p.experiment.name)},"variant":${JSON.stringify(p.experiment.variant)}` : ''}}\n`;
  }

  private fromText({
    body,
    index,
    rows: count,
  }: NonNullable<ServedPrediction['source']>): RowText | undefined {
    if (!cuttable(body)) return undefined;
    if (index < 0) {
      const row = bodyRow(body);
      return row === undefined ? undefined : rowText(row, this.idColumn);
    }
    if (body !== this.batchBody) {
      this.batchBody = body;
      this.batchRows = batchRows(body);
    }
    const rows = this.batchRows;
    return rows && rows.length === 2 * (count ?? Number.NaN) && 2 * index + 1 < rows.length
      ? rowText(body.slice(rows[2 * index], rows[2 * index + 1]), this.idColumn)
      : undefined;
  }

  private token(id: string): string {
    let t = this.tokens.get(id);
    if (t === undefined) {
      if (this.tokens.size >= MAX_TOKENS) this.tokens.clear();
      t = tokenise(id, this.piiKey as string);
      this.tokens.set(id, t);
    }
    return t;
  }

  private modelJson(model: ServedPrediction['model']): string {
    let json = this.models.get(model);
    if (json === undefined) {
      json = JSON.stringify({ name: model.name, version: model.version, alias: model.alias });
      this.models.set(model, json);
    }
    return json;
  }
}
