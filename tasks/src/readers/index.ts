import type { Readable } from 'node:stream';
import { readCsv } from './csv.js';
import { readJsonLines } from './jsonl.js';
import { type RangeSource, readParquet } from './parquet.js';
import { type FileFormat, ReaderError, type RowSource } from './types.js';

export { csvRecordBatches, csvRecords, csvRow, readCsv } from './csv.js';
export { readJsonLines } from './jsonl.js';
export { asyncBufferOf, type RangeSource, readParquet } from './parquet.js';
export * from './types.js';

/** Opens a file of any supported format as a stream of rows. */
export function openRows(
  format: FileFormat,
  src: { stream: () => Readable } & RangeSource,
): Promise<RowSource> {
  if (format === 'csv') return readCsv(src.stream());
  if (format === 'jsonl') return readJsonLines(src.stream());
  if (format === 'parquet') return readParquet(src);
  throw new ReaderError(`unsupported format '${format as string}'`, null);
}
