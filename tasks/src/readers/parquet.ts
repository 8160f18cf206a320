import { type AsyncBuffer, parquetMetadataAsync, parquetSchema } from 'hyparquet';
import { parquetReadObjects } from '../parquet.js';
import { type RawRow, ReaderError, type RowSource } from './types.js';

/** Byte ranges of one object: Parquet keeps its schema in a footer, so it is read by range, not in order. */
export interface RangeSource {
  size: number;
  range(start: number, end: number): Promise<Buffer>;
}

export function asyncBufferOf(src: RangeSource): AsyncBuffer {
  return {
    byteLength: src.size,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const b = await src.range(start, end ?? src.size);
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    },
  };
}

/**
 * Opens a Parquet object and reads it one row group at a time, so memory follows the row group
 * size, not the file size. Values keep their Parquet types (numbers, bigints, Dates, strings).
 */
export async function readParquet(src: RangeSource): Promise<RowSource> {
  const file = asyncBufferOf(src);
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (err) {
    throw new ReaderError(`not a Parquet file (${(err as Error).message})`, null);
  }
  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  async function* rows(): AsyncGenerator<RawRow> {
    let rowStart = 0;
    for (const group of metadata.row_groups) {
      const count = Number(group.num_rows);
      let objects: Record<string, unknown>[];
      try {
        objects = await parquetReadObjects({ file, metadata, rowStart, rowEnd: rowStart + count });
      } catch (err) {
        throw new ReaderError(`unreadable row group (${(err as Error).message})`, rowStart + 1);
      }
      for (let i = 0; i < objects.length; i++) yield { row: rowStart + i + 1, values: objects[i] };
      rowStart += count;
    }
  }
  return { columns, textual: false, rows: rows() };
}
