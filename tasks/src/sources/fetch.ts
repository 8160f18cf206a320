import { DriftwoodError } from '../errors.js';
import { type HttpOptions, httpRequest } from '../http.js';
import { checkKey, type ObjectStore } from '../lake/object-store.js';
import { formatOf, type PayloadFormat } from './candles.js';

export interface Payload {
  kind: 'http' | 'lake';
  /** Where it came from, safe to record: a URL without its query (which may carry an API key), or a lake key. */
  location: string;
  body: Buffer;
  format: PayloadFormat;
}

const isUrl = (source: string): boolean => /^https?:\/\//i.test(source);

/**
 * The request URL for an interval. `{start}` / `{end}` (ISO) and `{start_ms}` / `{end_ms}` (epoch
 * milliseconds) in the source are filled in; a source without placeholders gets `start` and `end`
 * query parameters.
 */
export function candleUrl(source: string, interval: { start: number; end: number }): string {
  const iso = (t: number) => new Date(t).toISOString().replace('.000Z', 'Z');
  const fills: Record<string, string> = {
    '{start}': encodeURIComponent(iso(interval.start)),
    '{end}': encodeURIComponent(iso(interval.end)),
    '{start_ms}': String(interval.start),
    '{end_ms}': String(interval.end),
  };
  if (Object.keys(fills).some((p) => source.includes(p)))
    return source.replace(/\{(start|end)(_ms)?\}/g, (p) => fills[p] ?? p);
  const url = new URL(source);
  url.searchParams.set('start', iso(interval.start));
  url.searchParams.set('end', iso(interval.end));
  return url.toString();
}

/** Fetches the candles of an interval over HTTP (timeout and retries on 429/5xx), or reads a file dropped in the lake. */
export async function fetchPayload(
  source: string,
  interval: { start: number; end: number },
  deps: { lake: ObjectStore; http: HttpOptions },
): Promise<Payload> {
  if (isUrl(source)) {
    const url = candleUrl(source, interval);
    const where = new URL(url);
    const location = `${where.origin}${where.pathname}`;
    const res = await httpRequest(
      {
        method: 'GET',
        url,
        headers: { accept: 'application/json, text/csv;q=0.9' },
        idempotent: true,
        unreachableCode: 'HTTP_ERROR',
        unreachableHint: 'check --source and that the price source is up',
      },
      deps.http,
    );
    if (res.status < 200 || res.status >= 300)
      throw new DriftwoodError(
        'HTTP_ERROR',
        `price source ${location} answered HTTP ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`,
        { status: res.status, url: location },
      );
    const type = res.headers['content-type'];
    return {
      kind: 'http',
      location,
      body: res.body,
      format: formatOf(res.body, {
        name: where.pathname,
        contentType: Array.isArray(type) ? type[0] : type,
      }),
    };
  }
  const key = checkKey(source);
  if (key.startsWith('raw/'))
    throw new DriftwoodError(
      'USAGE',
      `--source ${key}: drop price files outside raw/ (e.g. incoming/<dataset>/), where ingest does not look`,
    );
  if (!(await deps.lake.exists(key)))
    throw new DriftwoodError('DATA_MISSING', `--source: no object '${key}' in the lake ${deps.lake.uri}`, {
      key,
    });
  const body = await deps.lake.get(key);
  return { kind: 'lake', location: key, body, format: formatOf(body, { name: key }) };
}
