import {
  type ParquetReadOptions,
  parquetReadObjects as readObjectsWithCodecs,
  parquetRead as readWithCodecs,
} from 'hyparquet';
import { compressors } from 'hyparquet-compressors';

/**
 * hyparquet's readers with every Parquet codec: hyparquet decodes only uncompressed and Snappy
 * pages itself, while polars and DuckDB write ZSTD by default, Spark may write GZIP or LZ4, and the
 * DuckDB feature engine's own files are ZSTD. Every Parquet read in Driftwood goes through here.
 */
export function parquetRead(options: ParquetReadOptions): Promise<void> {
  return readWithCodecs({ compressors, ...options });
}

export function parquetReadObjects(
  options: Omit<ParquetReadOptions, 'onComplete'>,
): ReturnType<typeof readObjectsWithCodecs> {
  return readObjectsWithCodecs({ compressors, ...options });
}
