import { parquetWriteBuffer } from 'hyparquet-writer';
import { DriftwoodError } from '../errors.js';
import type { RawFeatures } from '../features/rows.js';
import { parquetReadObjects } from '../parquet.js';

/** One entity's score as both engines write it to the lake and the warehouse. */
export interface ScoreRow {
  entityToken: string;
  score: number;
  label: 0 | 1;
  modelName: string;
  modelVersion: string;
  /** Epoch ms (UTC), as the warehouse stores times. */
  asOf: number;
}

/** An entity's raw inputs, its id already tokenised: what the Spark engine scores. */
export interface InputRow {
  entityToken: string;
  features: RawFeatures;
}

const toArrayBuffer = (b: Buffer): ArrayBuffer =>
  b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

/** The scores partition's columns; Spark's job (python/driftwood_spark_scoring) writes the same ones. */
export function scoresParquet(rows: readonly ScoreRow[]): Buffer {
  return Buffer.from(
    parquetWriteBuffer({
      columnData: [
        { name: 'entity_token', data: rows.map((r) => r.entityToken), type: 'STRING', nullable: false },
        { name: 'score', data: Float64Array.from(rows, (r) => r.score), type: 'DOUBLE', nullable: false },
        { name: 'label', data: Int32Array.from(rows, (r) => r.label), type: 'INT32', nullable: false },
        { name: 'model_name', data: rows.map((r) => r.modelName), type: 'STRING', nullable: false },
        { name: 'model_version', data: rows.map((r) => r.modelVersion), type: 'STRING', nullable: false },
        { name: 'as_of', data: rows.map((r) => BigInt(r.asOf)), type: 'INT64', nullable: false },
      ],
    }),
  );
}

/** Reads a scores file of either engine; a file without the columns is refused, naming it. */
export async function readScoresParquet(key: string, body: Buffer): Promise<ScoreRow[]> {
  const objects = (await parquetReadObjects({ file: toArrayBuffer(body) })) as Record<string, unknown>[];
  return objects.map((o, i) => {
    const label = Number(o.label);
    const score = Number(o.score);
    if (typeof o.entity_token !== 'string' || !Number.isFinite(score) || (label !== 0 && label !== 1))
      throw new DriftwoodError(
        'SCHEMA_MISMATCH',
        `${key}: row ${i + 1} is not a score (expected entity_token, score, label 0/1; got ${JSON.stringify(o, (_, v) => (typeof v === 'bigint' ? Number(v) : v))})`,
      );
    return {
      entityToken: o.entity_token,
      score,
      label,
      modelName: String(o.model_name),
      modelVersion: String(o.model_version),
      asOf: Number(o.as_of),
    };
  });
}

/** The Spark engine's input: the token and one column per raw input, numbers as doubles (nullable). */
export function inputParquet(
  rows: readonly InputRow[],
  numeric: readonly string[],
  categorical: readonly string[],
): Buffer {
  const number = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
  const text = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
  return Buffer.from(
    parquetWriteBuffer({
      columnData: [
        { name: 'entity_token', data: rows.map((r) => r.entityToken), type: 'STRING', nullable: false },
        ...numeric.map((name) => ({
          name,
          data: rows.map((r) => number(r.features[name])),
          type: 'DOUBLE' as const,
        })),
        ...categorical.map((name) => ({
          name,
          data: rows.map((r) => text(r.features[name])),
          type: 'STRING' as const,
        })),
      ],
    }),
  );
}
