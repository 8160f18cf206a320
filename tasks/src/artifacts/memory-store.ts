import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { DriftwoodError } from '../errors.js';
import { checkKey, type ObjectInfo, type ObjectStore } from '../lake/object-store.js';

/**
 * A lake held in memory, for library callers that train without one (tests, notebooks): the
 * features step writes there and training reads it back through the very same checks as from a
 * real lake, so there is one code path whatever the store.
 */
export function memoryObjectStore(): ObjectStore {
  const objects = new Map<string, Buffer>();
  const info = (key: string, body: Buffer): ObjectInfo => ({
    key,
    size: body.length,
    etag: createHash('md5').update(body).digest('hex'),
  });
  const get = async (key: string): Promise<Buffer> => {
    const body = objects.get(checkKey(key));
    if (!body) throw new DriftwoodError('DATA_MISSING', `object '${key}' not found in the in-memory lake`);
    return body;
  };
  return {
    uri: 'memory://',
    list: async (prefix) =>
      [...objects.entries()]
        .filter(([k]) => k.startsWith(prefix))
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => info(k, v)),
    get,
    stream: (key) =>
      Readable.from(
        (async function* () {
          yield await get(key);
        })(),
      ),
    put: async (key, body) => {
      const bytes = Buffer.from(body);
      objects.set(checkKey(key), bytes);
      return info(key, bytes);
    },
    exists: async (key) => objects.has(checkKey(key)),
    getRange: async (key, start, end) => (await get(key)).subarray(start, end),
    putStream: async (key, body) => {
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(Buffer.from(c as Buffer));
      const bytes = Buffer.concat(chunks);
      objects.set(checkKey(key), bytes);
      return info(key, bytes);
    },
    head: async (key) => {
      const body = objects.get(checkKey(key));
      return body ? info(key, body) : undefined;
    },
  };
}
