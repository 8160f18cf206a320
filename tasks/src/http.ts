import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { DriftwoodError, type ErrorCode } from './errors.js';

export interface HttpOptions {
  timeoutMs: number;
  retries: number;
  backoffMs: number;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Only idempotent requests are retried after a network error or a 429/5xx. */
  idempotent?: boolean;
  /** The error code used when the server cannot be reached. */
  unreachableCode?: ErrorCode;
  unreachableHint?: string;
}

const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);

/**
 * The one outbound HTTP client: a timeout on every request and retries with exponential backoff
 * and jitter on network errors and 429/5xx. Non-2xx replies are returned, not thrown, so that
 * callers can map the server's own error codes.
 */
export async function httpRequest(req: HttpRequest, opts: HttpOptions): Promise<HttpResponse> {
  const attempts = req.idempotent === false ? 1 : opts.retries + 1;
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const res = await request(req.url, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
      });
      const body = Buffer.from(await res.body.arrayBuffer());
      if (RETRY_STATUS.has(res.statusCode) && attempt < attempts) {
        await sleep(backoff(opts.backoffMs, attempt, res.headers['retry-after']));
        continue;
      }
      return { status: res.statusCode, headers: res.headers, body };
    } catch (err) {
      lastError = err;
      if (attempt < attempts) await sleep(backoff(opts.backoffMs, attempt, undefined));
    }
  }
  const reason = lastError instanceof Error ? lastError.message : String(lastError);
  const where = new URL(req.url).origin;
  throw new DriftwoodError(
    req.unreachableCode ?? 'HTTP_ERROR',
    `cannot reach ${where} (${reason})${req.unreachableHint ? `: ${req.unreachableHint}` : ''}`,
    { url: where },
    { cause: lastError },
  );
}

function backoff(baseMs: number, attempt: number, retryAfter: string | string[] | undefined): number {
  const header = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
  const seconds = header === undefined ? Number.NaN : Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, 30_000);
  const exp = baseMs * 2 ** (attempt - 1);
  return exp / 2 + Math.random() * (exp / 2);
}
