import { DriftwoodError } from '../errors.js';

/** Customer ids as the simulator and the sources write them; anything else is refused before I/O. */
const CUSTOMER_ID = /^[A-Za-z0-9_-]{1,32}$/;

export function checkCustomerId(id: string): string {
  if (!CUSTOMER_ID.test(id)) {
    throw new DriftwoodError(
      'USAGE',
      `--customer: expected a customer id of 1-32 letters, digits, '_' or '-', got '${id}'`,
    );
  }
  return id;
}

/**
 * The values that name one customer wherever they may be written: the id, the token the API logs
 * predictions under, the email's warehouse token and the raw email (found in the raw files).
 * Matching is by whole value, never by substring: `C1` does not match `C10`.
 */
export class Subject {
  private readonly values = new Set<string>();
  constructor(readonly id: string) {
    this.values.add(id);
  }
  add(value: unknown): void {
    if (typeof value === 'string' && value.trim() !== '') this.values.add(value);
  }
  has(value: unknown): boolean {
    return typeof value === 'string' && this.values.has(value);
  }
  /** Whether a value, or anything nested in it, is one of the subject's. */
  within(value: unknown): boolean {
    if (typeof value === 'string') return this.values.has(value);
    if (Array.isArray(value)) return value.some((v) => this.within(v));
    if (value !== null && typeof value === 'object') return Object.values(value).some((v) => this.within(v));
    return false;
  }
  /** A cheap first look at raw text: could it hold any of the values? */
  mayBeIn(text: string): boolean {
    for (const v of this.values) if (text.includes(v)) return true;
    return false;
  }
  /** Whether raw text holds one of the values as a whole token (not part of a longer word). */
  inText(text: string): boolean {
    for (const v of this.values) {
      let at = text.indexOf(v);
      while (at >= 0) {
        const before = text[at - 1];
        const after = text[at + v.length];
        if (
          (before === undefined || !/[\w@.+-]/.test(before)) &&
          (after === undefined || !/[\w@-]/.test(after))
        )
          return true;
        at = text.indexOf(v, at + 1);
      }
    }
    return false;
  }
}

/** What forgetting one customer does to one file: its new text, or nothing to change. */
export type FileRewrite =
  | { changed: false; malformed: number }
  | { changed: true; text: string; removed: number; kept: number; malformed: number };

interface CsvRecord {
  /** The record's text as it stands in the file, line break included, so kept rows stay byte for byte. */
  raw: string;
  fields: string[];
}

/**
 * Splits CSV text into records without judging them: a record with too few or too many fields is
 * kept as it is (a raw file may hold one; ingest quarantines it), so erasure never stops on it.
 * Returns undefined when a quote is never closed: the caller then reads the file line by line.
 */
export function splitCsvRecords(text: string): CsvRecord[] | undefined {
  const records: CsvRecord[] = [];
  let start = 0;
  let field = '';
  let fields: string[] = [];
  let inQuotes = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inQuotes) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else inQuotes = false;
      } else field += c;
    } else if (c === '"') inQuotes = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      fields.push(field);
      records.push({ raw: text.slice(start, i + 1), fields });
      start = i + 1;
      fields = [];
      field = '';
    } else field += c;
  }
  if (inQuotes) return undefined;
  if (start < text.length) {
    fields.push(field);
    records.push({ raw: text.slice(start), fields });
  }
  return records;
}

/**
 * Removes a customer's rows from one CSV file. Pure. A well-formed row goes when its `customer_id`
 * is the customer's; a malformed row (wrong field count) when any of its fields is one of the
 * subject's values, since its columns cannot be trusted. A file whose quotes never close is read
 * line by line. Files without a `customer_id` column hold no customer rows and are left alone.
 */
export function planCsvRewrite(text: string, subject: Subject): FileRewrite {
  if (!subject.mayBeIn(text)) return { changed: false, malformed: 0 };
  const records = splitCsvRecords(text);
  if (records === undefined) return planLineRewrite(text, subject);
  const [header, ...body] = records;
  if (!header) return { changed: false, malformed: 0 };
  const at = header.fields.map((h) => h.trim()).indexOf('customer_id');
  if (at < 0) return { changed: false, malformed: 0 };
  let removed = 0;
  let malformed = 0;
  const kept: string[] = [header.raw];
  for (const r of body) {
    const blank = r.fields.length === 1 && r.fields[0]?.trim() === '';
    const wellFormed = r.fields.length === header.fields.length;
    if (!blank && !wellFormed) malformed++;
    const hit = wellFormed ? subject.has(r.fields[at]) : r.fields.some((f) => subject.has(f.trim()));
    if (hit) removed++;
    else kept.push(r.raw);
  }
  if (removed === 0) return { changed: false, malformed };
  return { changed: true, text: kept.join(''), removed, kept: body.length - removed, malformed };
}

/** The last resort for text that cannot be split into records: lines naming the subject go. */
function planLineRewrite(text: string, subject: Subject): FileRewrite {
  const lines = text.split(/(?<=\n)/);
  const kept = lines.filter((l) => !subject.inText(l));
  const removed = lines.length - kept.length;
  if (removed === 0) return { changed: false, malformed: 1 };
  return { changed: true, text: kept.join(''), removed, kept: kept.length, malformed: 1 };
}

/**
 * Removes the lines that name the subject from a JSON Lines file: raw rows keyed by `customer_id`,
 * quarantined rows (the id inside `values`, the email token, a malformed row's `fields`), or the
 * API's prediction log (`customer_token`). A value anywhere in the line counts. A line that is not
 * JSON is kept unless it holds one of the values as a whole token. Pure.
 */
export function planJsonlRewrite(text: string, subject: Subject): FileRewrite {
  if (!subject.mayBeIn(text)) return { changed: false, malformed: 0 };
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  let malformed = 0;
  const kept = lines.filter((l) => {
    try {
      return !subject.within(JSON.parse(l));
    } catch {
      malformed++;
      return !subject.inText(l);
    }
  });
  if (kept.length === lines.length) return { changed: false, malformed };
  return {
    changed: true,
    text: kept.map((l) => `${l}\n`).join(''),
    removed: lines.length - kept.length,
    kept: kept.length,
    malformed,
  };
}

/**
 * Removes the subject from a JSON document: an element of an array that holds one of the subject's
 * values (a row of a holdout, a problem of a reason file, a snapshot row) goes whole; a value held
 * directly by an object is replaced by null. Pure; returns the new value and how many went.
 */
export function scrubJson(value: unknown, subject: Subject): { value: unknown; removed: number } {
  let removed = 0;
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) {
      const out: unknown[] = [];
      for (const x of v) {
        if (subject.within(x)) removed++;
        else out.push(walk(x));
      }
      return out;
    }
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        if (subject.has(x)) {
          removed++;
          out[k] = null;
        } else out[k] = walk(x);
      }
      return out;
    }
    return v;
  };
  return { value: walk(value), removed };
}

/** A JSON file without the subject, or nothing to change; text that is not JSON falls back to lines. */
export function planJsonRewrite(text: string, subject: Subject): FileRewrite {
  if (!subject.mayBeIn(text)) return { changed: false, malformed: 0 };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return planLineRewrite(text, subject);
  }
  const { value, removed } = scrubJson(parsed, subject);
  if (removed === 0) return { changed: false, malformed: 0 };
  const pretty = /^\{\s*\n/.test(text);
  return {
    changed: true,
    text: `${JSON.stringify(value, null, pretty ? 2 : undefined)}${text.endsWith('\n') ? '\n' : ''}`,
    removed,
    kept: 0,
    malformed: 0,
  };
}

/** How a lake or artifact file is read for erasure, by its name. */
export function textFormat(name: string): 'csv' | 'jsonl' | 'json' | 'parquet' | undefined {
  if (name.endsWith('.csv')) return 'csv';
  if (name.endsWith('.jsonl') || name.endsWith('.ndjson')) return 'jsonl';
  if (name.endsWith('.json')) return 'json';
  if (name.endsWith('.parquet')) return 'parquet';
  return undefined;
}

/** Text rewrite of a file of a format, by its name. */
export function planTextRewrite(name: string, text: string, subject: Subject): FileRewrite | undefined {
  const format = textFormat(name);
  if (format === 'csv') return planCsvRewrite(text, subject);
  if (format === 'jsonl') return planJsonlRewrite(text, subject);
  if (format === 'json') return planJsonRewrite(text, subject);
  return undefined;
}
