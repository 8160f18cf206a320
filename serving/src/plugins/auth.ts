import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { type CredentialStore, createVerifier, type Principal, type Role } from '../auth/credentials.js';
import { createJwtVerifier, type JwtOptions } from '../auth/jwt.js';
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
    readonly statusCode: 401 | 403,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface AuthOptions {
  /** Basic-auth users; with neither these nor `jwt`, auth is off and every route is open. */
  credentials: CredentialStore | undefined;
  /** OAuth2 bearer tokens (JWT) from this issuer, beside Basic. */
  jwt?: JwtOptions;
}

/**
 * HTTP Basic (and optionally OAuth2 bearer) auth with roles, as an onRequest hook of each route that
 * names a role (register the plugin before the routes). Runs before rate limiting, so limits count
 * per principal. 401 (with WWW-Authenticate) without or with wrong credentials; 403 for a known
 * principal without the route's role. The Authorization header is never logged.
 */
export const authPlugin = fp<AuthOptions>(
  async (app, opts) => {
    app.decorateRequest('principal', undefined);
    if (!opts.credentials && !opts.jwt) return;
    const basic = opts.credentials ? createVerifier(opts.credentials) : undefined;
    const bearer = opts.jwt ? createJwtVerifier(opts.jwt) : undefined;
    const challenge = [
      ...(basic ? ['Basic realm="driftwood", charset="UTF-8"'] : []),
      ...(bearer ? ['Bearer realm="driftwood"'] : []),
    ].join(', ');
    const authenticate = async (header: string | undefined): Promise<Principal | undefined> => {
      const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
      return token !== undefined ? await bearer?.(token) : await basic?.(header);
    };
    /** The outcome for a principal (or none): undefined to go on, else the error to answer with. */
    const admit = (
      req: FastifyRequest,
      reply: FastifyReply,
      role: Role,
      principal: Principal | undefined,
    ) => {
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
        authenticate(header).then(
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
