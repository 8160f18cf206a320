import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';
import { type Principal, ROLES, type Role } from './credentials.js';

export interface JwtOptions {
  issuer: string;
  jwksUrl: string;
  audience?: string;
  /** The claim holding the roles: an array, or a space-separated string like OAuth2 `scope`. */
  rolesClaim?: string;
}

/** The API's roles a token grants: any of `predict`/`admin` in the claim, nothing else. */
export function rolesFromClaim(payload: JWTPayload, claim: string): Set<Role> {
  const raw = payload[claim];
  const values = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(/\s+/) : [];
  return new Set(values.filter((v): v is Role => (ROLES as readonly string[]).includes(String(v))));
}

/**
 * Verifies OAuth2 bearer tokens (JWT) against the issuer's JWKS (fetched and cached by jose, refreshed
 * when a token names an unknown key): signature with an asymmetric algorithm only (no `none`, no
 * HMAC with a public key), issuer, audience when set, and expiry. Returns undefined when any fails.
 */
export function createJwtVerifier(opts: JwtOptions) {
  const jwks = createRemoteJWKSet(new URL(opts.jwksUrl));
  const claim = opts.rolesClaim ?? 'roles';
  return async (token: string): Promise<Principal | undefined> => {
    try {
      const { payload } = await jwtVerify(token, jwks, {
        issuer: opts.issuer,
        ...(opts.audience ? { audience: opts.audience } : {}),
        algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'],
        requiredClaims: ['sub', 'exp'],
      });
      return { kind: 'jwt', user: payload.sub as string, roles: rolesFromClaim(payload, claim) };
    } catch {
      return undefined;
    }
  };
}
