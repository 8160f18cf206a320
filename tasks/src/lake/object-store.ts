import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { DriftwoodError } from '../errors.js';
import { S3ObjectStore, type S3Settings } from './s3-store.js';
import type { ObjectInfo, ObjectStore } from './types.js';

export type { S3Settings } from './s3-store.js';

export type { ObjectInfo, ObjectStore } from './types.js';

export function openObjectStore(uri: string, s3: S3Settings = {}): ObjectStore {
  if (uri.startsWith('file://'))
    return new FileObjectStore(fileURLToPath(uri.replace(/^file:\/\/(?!\/)/, 'file:///')));
  if (uri.startsWith('s3://')) return new S3ObjectStore(uri, s3);
  throw new DriftwoodError(
    'CONFIG_INVALID',
    `setting DRIFTWOOD_LAKE_URI: unsupported scheme in '${uri}' (expected file:// or s3://)`,
  );
}

export function checkKey(key: string): string {
  if (key.startsWith('/') || key.split('/').includes('..') || key === '') {
    throw new DriftwoodError('USAGE', `object key '${key}' must be relative and must not contain '..'`);
  }
  return key;
}

/** Temporary files of a writer: `<name>.<pid>.<random>.tmp`, so a sweep can tell a dead writer's. */
const TMP_NAME = /\.(\d+)(?:\.[0-9a-f]+)?\.tmp$/;

/** Whether a process with this id runs on this host (EPERM: it does, as another user). */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

class FileObjectStore implements ObjectStore {
  readonly uri: string;
  /**
   * Where objects are written before the rename that publishes them: outside the lake (a killed
   * writer's partial copy of a raw file must not sit among the lake's files, unseen by listings),
   * beside it so the rename stays on one file system: `<lake>/../tmp/<lake name>` (with the default
   * lake, `<DRIFTWOOD_HOME>/tmp/lake`).
   */
  private readonly tmpDir: string;
  constructor(private readonly root: string) {
    this.uri = `file://${root}`;
    this.tmpDir = path.join(path.dirname(root), 'tmp', path.basename(root));
  }

  private async tmpFor(full: string): Promise<string> {
    await mkdir(this.tmpDir, { recursive: true });
    return path.join(
      this.tmpDir,
      `${path.basename(full)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
    );
  }

  /** Renames a finished temporary file into place; across file systems, through a copy in the target folder. */
  private async publish(tmp: string, full: string): Promise<void> {
    try {
      await rename(tmp, full);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') {
        await rm(tmp, { force: true });
        throw err;
      }
      const near = path.join(path.dirname(full), `.${path.basename(full)}.${process.pid}.tmp`);
      try {
        await copyFile(tmp, near);
        await rename(near, full);
      } finally {
        await rm(tmp, { force: true });
        await rm(near, { force: true });
      }
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.full(key), { force: true });
  }

  /**
   * Removes what killed writers left: their files in the temporary folder, and hidden
   * `.<name>.<pid>.tmp` files inside the lake (written there by earlier versions, or across file
   * systems). A file of a writer that is still running is left alone. Returns what was removed.
   */
  async sweepPartials(): Promise<{ path: string; bytes: number }[]> {
    const removed: { path: string; bytes: number }[] = [];
    const sweep = async (dir: string, hiddenOnly: boolean): Promise<void> => {
      const entries = await entriesOf(dir);
      for (const e of entries) {
        const full = path.join(dir, e.name);
        if (e.isDirectory()) await sweep(full, hiddenOnly);
        else if (e.isFile() && (!hiddenOnly || e.name.startsWith('.'))) {
          const pid = TMP_NAME.exec(e.name)?.[1];
          if (pid === undefined || processAlive(Number(pid))) continue;
          const size = (await stat(full).catch(() => undefined))?.size ?? 0;
          await rm(full, { force: true });
          removed.push({ path: full, bytes: size });
        }
      }
    };
    await sweep(this.tmpDir, false);
    await sweep(this.root, true);
    return removed;
  }

  private full(key: string): string {
    return path.join(this.root, checkKey(key));
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    const walk = async (dir: string): Promise<void> => {
      const entries = await entriesOf(dir);
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
    const tmp = await this.tmpFor(full);
    await writeFile(tmp, body);
    await this.publish(tmp, full);
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

  async getRange(key: string, start: number, end: number): Promise<Buffer> {
    const fh = await open(this.full(key), 'r');
    try {
      const buf = Buffer.alloc(Math.max(0, end - start));
      const { bytesRead } = await fh.read(buf, 0, buf.length, start);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }

  async putStream(key: string, body: Readable): Promise<ObjectInfo> {
    const full = this.full(key);
    await mkdir(path.dirname(full), { recursive: true });
    const tmp = await this.tmpFor(full);
    try {
      await pipeline(body, createWriteStream(tmp));
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    await this.publish(tmp, full);
    const s = await stat(full);
    return { key, size: s.size, etag: `${s.size}-${Math.floor(s.mtimeMs)}` };
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.full(key));
      return { key, size: s.size, etag: `${s.size}-${Math.floor(s.mtimeMs)}` };
    } catch {
      return undefined;
    }
  }
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A folder's entries; none when it does not exist (yet). */
async function entriesOf(dir: string): Promise<import('node:fs').Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
