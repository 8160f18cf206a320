import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { Counter } from 'prom-client';
import {
  type AttemptGate,
  type CredentialStore,
  createVerifier,
  type Principal,
  type Role,
  type Throttled,
} from '../auth/credentials.js';
import { createJwtVerifier, type JwtOptions } from '../auth/jwt.js';
import { LoginThrottle } from '../auth/login-throttle.js';
import { hooksOf } from './route-hooks.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The role a route needs; a route without one is open (health checks, docs). */
    role?: Role;
  }
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}

class AuthError extends Error {
  constructor(
    readonly statusCode: 401 | 403 | 429,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface AuthOptions {
  /**
   * Basic-auth users. With neither these nor `jwt`, every route that needs a role answers 401
   * `auth_not_configured` — unless `openAccess` says the operator chose an open API.
   */
  credentials: CredentialStore | undefined;
  /** No credentials and no tokens on purpose: every route is open (DRIFTWOOD_API_AUTH=none). */
  openAccess?: boolean;
  /** OAuth2 bearer tokens (JWT) from this issuer, beside Basic. */
  jwt?: JwtOptions;
  /** Failed Basic logins per user name, and per address, in a minute before 429; 10 by default. */
  maxFailedLogins?: number;
}

const FAILED_LOGIN_WINDOW_MS = 60_000;

/**
 * HTTP Basic (and optionally OAuth2 bearer) auth with roles, as an onRequest hook of each route that
 * names a role (register the plugin before the routes). Runs before rate limiting, so limits count
 * per principal. 401 (with WWW-Authenticate) without or with wrong credentials; 403 for a known
 * principal without the route's role. The Authorization header is never logged.
 *
 * Failed Basic logins are limited per user name and per address (`maxFailedLogins` a minute each):
 * past it, a header not verified before answers 429 `too_many_failed_logins` with `Retry-After`,
 * without running scrypt; a header verified before (cached) still passes, so a client already in
 * keeps working while someone guesses its password. Successes do not count.
 */
export const authPlugin = fp<AuthOptions>(
  async (app, opts) => {
    app.decorateRequest('principal', undefined);
    if (!opts.credentials && !opts.jwt) {
      if (opts.openAccess) return;
      // Fails closed: an API nobody configured credentials for is not an open API.
      const refuse: onRequestHookHandler = (_req, _reply, done) =>
        done(
          new AuthError(
            401,
            'auth_not_configured',
            'this API has no credentials configured: set DRIFTWOOD_API_CREDENTIALS (or DRIFTWOOD_API_JWT_ISSUER), or DRIFTWOOD_API_AUTH=none for an open API',
          ),
        );
      app.addHook('onRoute', (route) => {
        if (route.config?.role) route.onRequest = [...hooksOf(route.onRequest), refuse];
      });
      return;
    }
    const registers = app.hasDecorator('metrics') ? [app.metrics.registry] : [];
    const checks = new Counter({
      name: 'driftwood_auth_password_checks_total',
      help: 'Basic passwords checked with scrypt (not answered from the cache), by outcome',
      labelNames: ['outcome'],
      registers,
    });
    const throttled = new Counter({
      name: 'driftwood_auth_throttled_total',
      help: 'Basic logins answered 429 because their user or address failed too often of late',
      registers,
    });
    const basic = opts.credentials
      ? createVerifier(opts.credentials, { onCheck: (ok) => checks.inc({ outcome: ok ? 'ok' : 'failed' }) })
      : undefined;
    const bearer = opts.jwt ? createJwtVerifier(opts.jwt) : undefined;
    const failures = new LoginThrottle(opts.maxFailedLogins ?? 10, FAILED_LOGIN_WINDOW_MS);
    const sweeper = setInterval(() => failures.sweep(Date.now()), FAILED_LOGIN_WINDOW_MS);
    sweeper.unref();
    app.addHook('onClose', async () => clearInterval(sweeper));
    // User names are at most 64 characters: a longer one (unknown anyway) must not make keys that
    // hold kilobytes each, 10 000 of them.
    const keysOf = (user: string, address: string) => [`user:${user.slice(0, 65)}`, `ip:${address}`];
    /** The gate of one request's Basic check: its user name and its address each have an allowance. */
    const gateFor = (address: string): AttemptGate => ({
      begin: (user) => {
        const refused = failures.begin(keysOf(user, address), Date.now());
        if (refused) throttled.inc();
        return refused && { throttled: true, retryAfter: refused.retryAfter };
      },
      end: (user, ok) => {
        if (ok) failures.succeeded(keysOf(user, address), Date.now());
      },
    });
    const challenge = [
      ...(basic ? ['Basic realm="driftwood", charset="UTF-8"'] : []),
      ...(bearer ? ['Bearer realm="driftwood"'] : []),
    ].join(', ');
    const authenticate = async (
      header: string | undefined,
      address: string,
    ): Promise<Principal | Throttled | undefined> => {
      const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
      return token !== undefined ? await bearer?.(token) : await basic?.(header, gateFor(address));
    };
    /** The outcome for a principal (or none): undefined to go on, else the error to answer with. */
    const admit = (
      req: FastifyRequest,
      reply: FastifyReply,
      role: Role,
      principal: Principal | Throttled | undefined,
    ) => {
      if (principal && 'throttled' in principal) {
        reply.header('retry-after', String(principal.retryAfter));
        return new AuthError(
          429,
          'too_many_failed_logins',
          `too many failed logins for this user or address; retry in ${principal.retryAfter} s`,
        );
      }
      if (!principal) {
        reply.header('www-authenticate', challenge);
        return new AuthError(
          401,
          'unauthorized',
          'valid credentials are required (HTTP Basic or a bearer token)',
        );
      }
      req.principal = principal;
      if (!principal.roles.has(role))
        return new AuthError(403, 'forbidden', `'${principal.user}' lacks the '${role}' role for this route`);
      return undefined;
    };
    // A route-level callback hook, added only to routes that need a role (the role is bound once, not
    // read from the route's options per request). A Basic credential verified moments ago is admitted
    // synchronously, without a promise or a trip through the microtask queue; anything else takes the
    // async path.
    const gate = (role: Role): onRequestHookHandler =>
      function authenticateRequest(req, reply, done) {
        const header = req.headers.authorization;
        const known = basic?.cached(header, req.raw.socket);
        if (known) return done(admit(req, reply, role, known));
        authenticate(header, req.ip).then(
          (principal) => done(admit(req, reply, role, principal)),
          (err: Error) => done(err),
        );
      };
    app.addHook('onRoute', (route) => {
      const role = route.config?.role;
      if (role) route.onRequest = [...hooksOf(route.onRequest), gate(role)];
    });
  },
  { name: 'driftwood-auth' },
);
