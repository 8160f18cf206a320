import { createServer, type Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { hashPassword, parseCredentials } from '../../serving/src/auth/credentials.js';
import { mlflowClient, uniqueName } from '../support/env.js';
import { registerTestModel, sampleCustomer } from '../support/serving-model.js';

const JWKS_PORT = 7292;
const ISSUER = 'https://id.driftwood.test';
const AUDIENCE = 'driftwood-api';

/**
 * OAuth2 bearer tokens beside Basic auth. No identity provider runs here, so the test plays one:
 * it makes an RSA key pair, publishes the public key as a JWKS over HTTP (the API fetches it with
 * jose like any issuer's), and signs tokens with the private key.
 */
describe('bearer tokens (JWT) from a configured issuer', () => {
  let app: FastifyInstance;
  let jwks: Server;
  let sign: (
    claims: Record<string, unknown>,
    opts?: { exp?: string; iss?: string; aud?: string },
  ) => Promise<string>;
  let signWithOtherKey: (claims: Record<string, unknown>) => Promise<string>;

  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const other = await generateKeyPair('RS256');
    const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    jwks = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(JWKS_PORT, '127.0.0.1', r));
    const build = (claims: Record<string, unknown>, opts: { exp?: string; iss?: string; aud?: string }) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setSubject('svc-scoring')
        .setIssuer(opts.iss ?? ISSUER)
        .setAudience(opts.aud ?? AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(opts.exp ?? '5m');
    sign = (claims, opts = {}) => build(claims, opts).sign(privateKey);
    signWithOtherKey = (claims) => build(claims, {}).sign(other.privateKey);

    const mlflow = mlflowClient(inject('mlflowUri'));
    const modelName = uniqueName('churn-jwt');
    await registerTestModel(mlflow, {
      modelName,
      experiment: uniqueName('exp-jwt'),
      seed: 71,
      alias: 'champion',
    });
    app = await buildApp({
      mlflow,
      modelName,
      alias: 'champion',
      credentials: parseCredentials(
        `ops:admin:${await hashPassword('ops-password-123', { N: 1024, r: 8, p: 1 })}`,
      ),
      jwt: { issuer: ISSUER, jwksUrl: `http://127.0.0.1:${JWKS_PORT}/jwks`, audience: AUDIENCE },
    });
    await app.ready();
  });

  afterAll(async () => {
    await app?.close();
    await new Promise((r) => jwks?.close(r));
  });

  const call = (url: string, authorization: string) =>
    app.inject({
      method: url === '/v1/model' ? 'GET' : 'POST',
      url,
      ...(url === '/v1/model' ? {} : { payload: url === '/v1/admin/reload' ? {} : sampleCustomer }),
      headers: { authorization },
    });

  it('a valid token with the predict role predicts; without the admin role it gets 403 on admin routes', async () => {
    const token = await sign({ roles: ['predict'] });
    expect((await call('/v1/predict', `Bearer ${token}`)).statusCode).toBe(200);
    expect((await call('/v1/model', `Bearer ${token}`)).statusCode).toBe(200);
    const admin = await call('/v1/admin/reload', `Bearer ${token}`);
    expect(admin.statusCode).toBe(403);
    expect(admin.json().message).toBe("'svc-scoring' lacks the 'admin' role for this route");
  });

  it('roles may come as an OAuth2-style space-separated string; unknown roles grant nothing', async () => {
    expect(
      (await call('/v1/admin/reload', `Bearer ${await sign({ roles: 'admin predict' })}`)).statusCode,
    ).toBe(200);
    expect((await call('/v1/predict', `Bearer ${await sign({ roles: ['superuser'] })}`)).statusCode).toBe(
      403,
    );
  });

  it.each([
    ['expired', () => sign({ roles: ['predict'] }, { exp: '-1m' })],
    ['from another issuer', () => sign({ roles: ['predict'] }, { iss: 'https://evil.example' })],
    ['for another audience', () => sign({ roles: ['predict'] }, { aud: 'someone-else' })],
    ['signed by a key the issuer does not publish', () => signWithOtherKey({ roles: ['predict'] })],
    [
      'unsigned (alg none)',
      async () => {
        const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
        const exp = Math.floor(Date.now() / 1000) + 300;
        return `${b64({ alg: 'none' })}.${b64({ sub: 'x', iss: ISSUER, aud: AUDIENCE, exp, roles: ['predict'] })}.`;
      },
    ],
    ['not a JWT at all', async () => 'abc.def'],
  ])('a token %s gets 401', async (_what, token) => {
    const res = await call('/v1/predict', `Bearer ${await token()}`);
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toContain('Bearer realm="driftwood"');
  });

  it('Basic auth keeps working beside bearer tokens', async () => {
    const basic = `Basic ${Buffer.from('ops:ops-password-123').toString('base64')}`;
    expect((await call('/v1/admin/reload', basic)).statusCode).toBe(200);
    expect((await call('/v1/predict', basic)).statusCode).toBe(403);
  });
});
