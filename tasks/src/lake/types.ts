import type { Readable } from 'node:stream';

/** One object as a listing or a write reports it. */
export interface ObjectInfo {
  key: string;
  size: number;
  /** A change tag: equal etags mean equal content for the same key. */
  etag: string;
}

/** The lake: one small interface over a folder (the embedded default) or an S3-compatible bucket. */
export interface ObjectStore {
  readonly uri: string;
  list(prefix: string): Promise<ObjectInfo[]>;
  get(key: string): Promise<Buffer>;
  stream(key: string): Readable;
  put(key: string, body: Buffer | string): Promise<ObjectInfo>;
  exists(key: string): Promise<boolean>;
  /** Bytes [start, end) of an object: Parquet is read footer first, by range. */
  getRange(key: string, start: number, end: number): Promise<Buffer>;
  /** Writes a stream of unknown length with bounded memory; the object appears whole or not at all. */
  putStream(key: string, body: Readable): Promise<ObjectInfo>;
  /** The object's size and etag, or undefined when it does not exist. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Removes an object (nothing when it does not exist); erasure replaces immutable files with it. */
  delete?(key: string): Promise<void>;
  /**
   * Removes partial writes that killed writers left behind (a folder lake's temporary files); a
   * store without any (S3: an aborted multipart upload is never visible) has no such method.
   */
  sweepPartials?(): Promise<{ path: string; bytes: number }[]>;
}

/** Opens the lake: `file:///path` (a folder) or `s3://bucket/prefix` (AWS, MinIO or any S3-compatible store). */
