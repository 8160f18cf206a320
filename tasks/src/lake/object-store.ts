import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { DriftwoodError } from '../errors.js';

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
}

export function openObjectStore(uri: string): ObjectStore {
  if (uri.startsWith('file://'))
    return new FileObjectStore(fileURLToPath(uri.replace(/^file:\/\/(?!\/)/, 'file:///')));
  throw new DriftwoodError(
    'CONFIG_INVALID',
    `setting DRIFTWOOD_LAKE_URI: unsupported scheme in '${uri}' (expected file://)`,
  );
}

function checkKey(key: string): string {
  if (key.startsWith('/') || key.split('/').includes('..') || key === '') {
    throw new DriftwoodError('USAGE', `object key '${key}' must be relative and must not contain '..'`);
  }
  return key;
}

class FileObjectStore implements ObjectStore {
  readonly uri: string;
  constructor(private readonly root: string) {
    this.uri = `file://${root}`;
  }

  private full(key: string): string {
    return path.join(this.root, checkKey(key));
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const e of entries) {
        const full = path.join(dir, e.name);
        if (e.isDirectory()) await walk(full);
        else if (e.isFile() && !e.name.startsWith('.')) {
          const key = path.relative(this.root, full).split(path.sep).join('/');
          if (!key.startsWith(prefix)) continue;
          const s = await stat(full);
          out.push({ key, size: s.size, etag: `${s.size}-${Math.floor(s.mtimeMs)}` });
        }
      }
    };
    // Start from the deepest folder the prefix names, so listing a partition does not walk the lake.
    const dirPart = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    await walk(path.join(this.root, dirPart));
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  get(key: string): Promise<Buffer> {
    return readFile(this.full(key));
  }

  stream(key: string): Readable {
    return createReadStream(this.full(key));
  }

  /** Writes through a temporary file and a rename, so readers never see half an object. */
  async put(key: string, body: Buffer | string): Promise<ObjectInfo> {
    const full = this.full(key);
    await mkdir(path.dirname(full), { recursive: true });
    const tmp = path.join(path.dirname(full), `.${path.basename(full)}.${process.pid}.tmp`);
    await writeFile(tmp, body);
    await rename(tmp, full);
    const s = await stat(full);
    return { key, size: s.size, etag: `${s.size}-${Math.floor(s.mtimeMs)}` };
  }

  async exists(key: string): Promise<boolean> {
    try {
      await stat(this.full(key));
      return true;
    } catch {
      return false;
    }
  }
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}
