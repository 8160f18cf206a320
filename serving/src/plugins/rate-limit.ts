import type { onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { hooksOf } from './route-hooks.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false exempts a route from the rate limit (health checks). */
    rateLimit?: false;
  }
}

interface Window {
  count: number;
  /** When the window ends (ms since the epoch). */
  resetAt: number;
}

/**
 * Fixed windows per key (a credential, a token subject or an IP) in one Map. A key's window is
 * (re)inserted when it starts, so the Map is in order of window end: the sweep stops at the first
 * live window, and when `maxKeys` is reached the oldest window is forgotten (that key starts afresh).
 */
export class RateLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    readonly max: number,
    readonly windowMs: number,
    private readonly maxKeys = 10_000,
  ) {}

  /** Counts one request of `key` at `now`; the window it was counted in (over the limit when count > max). */
  hit(key: string, now: number): Window {
    let w = this.windows.get(key);
    if (w === undefined || w.resetAt <= now) {
      if (w !== undefined) this.windows.delete(key);
      else if (this.windows.size >= this.maxKeys)
        this.windows.delete(this.windows.keys().next().value as string);
      w = { count: 0, resetAt: now + this.windowMs };
      this.windows.set(key, w);
    }
    w.count++;
    return w;
  }

  /** Forgets windows that have ended. */
  sweep(now: number): void {
    for (const [key, w] of this.windows) {
      if (w.resetAt > now) return;
      this.windows.delete(key);
    }
  }

  get size(): number {
    return this.windows.size;
  }
}

class RateLimitError extends Error {
  readonly statusCode = 429;
  readonly code = 'rate_limited';
}

export interface RateLimitOptions {
  /** Requests per window per key. */
  max: number;
  windowMs: number;
  maxKeys?: number;
}

/**
 * Rate limit per credential (or token subject; per IP for requests without one), counted in an
 * onRequest hook of each route that runs after auth's, so it sees the principal and an over-limit
 * client's body is never parsed. Every limited answer says where its key stands in one header, the
 * IETF draft's `RateLimit: limit=6000, remaining=5999, reset=42` (reset in seconds; draft-07 syntax,
 * one header line instead of three `X-RateLimit-*`); over the limit it is 429 `rate_limited` with
 * `Retry-After` and `RateLimit-Policy: 6000;w=60`. Routes with `config.rateLimit: false` are not
 * counted.
 */
export const rateLimitPlugin = fp<RateLimitOptions>(
  async (app, opts) => {
    const limiter = new RateLimiter(opts.max, opts.windowMs, opts.maxKeys);
    const limit = String(opts.max);
    const per = opts.windowMs / 1000;
    const policy = `${limit};w=${per}`;
    const sweeper = setInterval(() => limiter.sweep(Date.now()), opts.windowMs);
    sweeper.unref();
    app.addHook('onClose', async () => clearInterval(sweeper));
    const limitRequest: onRequestHookHandler = function limitRequest(req, reply, done) {
      const p = req.principal;
      const now = Date.now();
      const w = limiter.hit(p ? `${p.kind}:${p.user}` : `ip:${req.ip}`, now);
      const reset = Math.max(1, Math.ceil((w.resetAt - now) / 1000));
      const remaining = w.count >= opts.max ? 0 : opts.max - w.count;
      reply.header('ratelimit', `limit=${limit}, remaining=${remaining}, reset=${reset}`);
      if (w.count <= opts.max) return done();
      reply.header('ratelimit-policy', policy);
      reply.header('retry-after', String(reset));
      done(new RateLimitError(`rate limit exceeded: ${limit} requests per ${per} s; retry in ${reset} s`));
    };
    // A route-level hook after auth's (onRoute hooks run in registration order), on every route
    // registered afterwards unless it opts out; unknown URLs (404) are not counted.
    app.addHook('onRoute', (route) => {
      if (route.config?.rateLimit !== false) route.onRequest = [...hooksOf(route.onRequest), limitRequest];
    });
  },
  { name: 'driftwood-rate-limit', dependencies: ['driftwood-auth'] },
);
