/** One record read from a raw file: its 1-based row number in the file, and its values or what broke it. */
export interface RawRow {
  /** CSV: the line the record starts on (the header is line 1); JSON Lines: the line; Parquet: 1-based row. */
  row: number;
  values?: Record<string, unknown>;
  /** A record that could not be split into the header's columns (for example a truncated last line). */
  error?: string;
}

/** A file opened for reading: its columns, whether its values are untyped text, and its rows as a stream. */
export interface RowSource {
  columns: string[];
  /** CSV cells are text, so "42" is a well-formed number there; in JSON Lines or Parquet it is a type anomaly. */
  textual: boolean;
  rows: AsyncIterable<RawRow>;
  /**
   * CSV only: the same rows as text records, a chunk at a time, blank lines left out (see csvRow for
   * the row of a record). Read either this or `rows`, not both: they share one stream.
   */
  textBatches?: AsyncIterable<TextBatch>;
}

/** The records of one chunk of CSV text: each record's fields and the line it starts on. */
export interface TextBatch {
  lines: number[];
  records: string[][];
}

/** A file that cannot be read at all (not CSV, broken JSON, not Parquet); carries the row where it broke. */
export class ReaderError extends Error {
  constructor(
    message: string,
    readonly row: number | null,
  ) {
    super(row === null ? message : `row ${row}: ${message}`);
    this.name = 'ReaderError';
  }
}

export type FileFormat = 'csv' | 'jsonl' | 'parquet';

export function formatOfKey(key: string): FileFormat | undefined {
  if (key.endsWith('.csv')) return 'csv';
  if (key.endsWith('.jsonl') || key.endsWith('.ndjson')) return 'jsonl';
  if (key.endsWith('.parquet')) return 'parquet';
  return undefined;
}
