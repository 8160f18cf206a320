import { PassThrough, type Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { DriftwoodError } from '../errors.js';
import type { ObjectInfo, ObjectStore } from './types.js';

/** Where the bucket lives. Unset fields fall back to the AWS SDK's own chain (AWS_REGION, profiles, roles). */
export interface S3Settings {
  /** A custom endpoint for MinIO, moto or another S3-compatible store, e.g. http://127.0.0.1:9000. */
  endpoint?: string;
  region?: string;
  /** `bucket` in the path instead of the host name: what MinIO and moto expect. */
  forcePathStyle?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** Multipart parts: S3 requires ≥ 5 MiB for every part but the last; this bounds memory per upload. */
const PART_BYTES = 8 * 1024 * 1024;

const stripQuotes = (etag: string | undefined): string => (etag ?? '').replace(/^"|"$/g, '');

/**
 * The lake on S3 through the AWS SDK v3. `s3://bucket/prefix` maps lake keys under `prefix/`.
 * The SDK is imported on first use so commands that never touch S3 do not pay for loading it.
 */
export class S3ObjectStore implements ObjectStore {
  readonly uri: string;
  private readonly bucket: string;
  private readonly prefix: string;
  private client?: Promise<{ s3: S3Client; sdk: typeof import('@aws-sdk/client-s3') }>;

  constructor(
    uri: string,
    private readonly settings: S3Settings,
  ) {
    const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(uri);
    if (!m)
      throw new DriftwoodError(
        'CONFIG_INVALID',
        `setting DRIFTWOOD_LAKE_URI: expected s3://<bucket>[/<prefix>], got '${uri}'`,
      );
    this.bucket = m[1] as string;
    this.prefix = (m[2] ?? '').replace(/\/+$/, '');
    this.uri = uri.replace(/\/+$/, '');
  }

  private sdk() {
    this.client ??= import('@aws-sdk/client-s3').then((sdk) => ({
      sdk,
      s3: new sdk.S3Client({
        ...(this.settings.endpoint ? { endpoint: this.settings.endpoint } : {}),
        ...(this.settings.region ? { region: this.settings.region } : {}),
        ...(this.settings.credentials ? { credentials: this.settings.credentials } : {}),
        forcePathStyle: this.settings.forcePathStyle ?? false,
        // Checksums on every request are opt-in for S3-compatible stores that do not support them.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      }),
    }));
    return this.client;
  }

  private full(key: string): string {
    if (key.startsWith('/') || key.split('/').includes('..') || key === '')
      throw new DriftwoodError('USAGE', `object key '${key}' must be relative and must not contain '..'`);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  private relative(fullKey: string): string {
    return this.prefix ? fullKey.slice(this.prefix.length + 1) : fullKey;
  }

  private wrap(op: string, key: string, err: unknown): DriftwoodError {
    const e = err as { name?: string; message?: string };
    return new DriftwoodError(
      'HTTP_ERROR',
      `S3 ${op} s3://${this.bucket}/${key} failed: ${e.name ?? 'Error'}: ${e.message ?? String(err)}`,
      {},
      { cause: err },
    );
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const { s3, sdk } = await this.sdk();
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      let page: import('@aws-sdk/client-s3').ListObjectsV2CommandOutput;
      try {
        page = await s3.send(
          new sdk.ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.prefix ? `${this.prefix}/${prefix}` : prefix,
            ContinuationToken: token,
          }),
        );
      } catch (err) {
        throw this.wrap('list', prefix, err);
      }
      for (const o of page.Contents ?? []) {
        if (!o.Key) continue;
        const key = this.relative(o.Key);
        if (key.split('/').some((part) => part.startsWith('.'))) continue;
        out.push({ key, size: o.Size ?? 0, etag: stripQuotes(o.ETag) });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async get(key: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of this.stream(key)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  stream(key: string): Readable {
    const out = new PassThrough();
    this.sdk()
      .then(({ s3, sdk }) => s3.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.full(key) })))
      .then((res) => {
        const body = res.Body as Readable | undefined;
        if (!body) throw new Error('empty body');
        body.on('error', (err) => out.destroy(this.wrap('get', key, err)));
        body.pipe(out);
      })
      .catch((err) => out.destroy(this.wrap('get', key, err)));
    return out;
  }

  async getRange(key: string, start: number, end: number): Promise<Buffer> {
    if (end <= start) return Buffer.alloc(0);
    const { s3, sdk } = await this.sdk();
    try {
      const res = await s3.send(
        new sdk.GetObjectCommand({
          Bucket: this.bucket,
          Key: this.full(key),
          Range: `bytes=${start}-${end - 1}`,
        }),
      );
      return Buffer.from(
        await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
      );
    } catch (err) {
      throw this.wrap('get range', key, err);
    }
  }

  async put(key: string, body: Buffer | string): Promise<ObjectInfo> {
    const { s3, sdk } = await this.sdk();
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    try {
      const res = await s3.send(
        new sdk.PutObjectCommand({
          Bucket: this.bucket,
          Key: this.full(key),
          Body: bytes,
          ContentLength: bytes.length,
        }),
      );
      return { key, size: bytes.length, etag: stripQuotes(res.ETag) };
    } catch (err) {
      throw this.wrap('put', key, err);
    }
  }

  async delete(key: string): Promise<void> {
    const { s3, sdk } = await this.sdk();
    try {
      await s3.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: this.full(key) }));
    } catch (err) {
      throw this.wrap('delete', key, err);
    }
  }

  /**
   * Streams a body of unknown length: a small one is one PUT; a large one a multipart upload of
   * PART_BYTES parts, aborted on failure so no half object is ever visible.
   */
  async putStream(key: string, body: Readable): Promise<ObjectInfo> {
    const { s3, sdk } = await this.sdk();
    const Key = this.full(key);
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let uploadId: string | undefined;
    const parts: { ETag: string; PartNumber: number }[] = [];
    let size = 0;
    const flush = async (): Promise<void> => {
      const part = Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      if (!uploadId) {
        const created = await s3.send(new sdk.CreateMultipartUploadCommand({ Bucket: this.bucket, Key }));
        uploadId = created.UploadId;
      }
      const PartNumber = parts.length + 1;
      const res = await s3.send(
        new sdk.UploadPartCommand({ Bucket: this.bucket, Key, UploadId: uploadId, PartNumber, Body: part }),
      );
      parts.push({ ETag: res.ETag ?? '', PartNumber });
    };
    try {
      for await (const chunk of body) {
        const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        pending.push(b);
        pendingBytes += b.length;
        size += b.length;
        if (pendingBytes >= PART_BYTES) await flush();
      }
      if (!uploadId) return await this.put(key, Buffer.concat(pending));
      if (pendingBytes > 0) await flush();
      const done = await s3.send(
        new sdk.CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
      return { key, size, etag: stripQuotes(done.ETag) };
    } catch (err) {
      if (uploadId)
        await s3
          .send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: uploadId }))
          .catch(() => undefined);
      throw err instanceof DriftwoodError ? err : this.wrap('put', key, err);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const { s3, sdk } = await this.sdk();
    try {
      const res = await s3.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.full(key) }));
      return { key, size: res.ContentLength ?? 0, etag: stripQuotes(res.ETag) };
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404) return undefined;
      throw this.wrap('head', key, err);
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.head(key)) !== undefined;
  }
}
