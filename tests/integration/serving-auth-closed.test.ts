import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { buildApp } from '../../serving/src/app.js';
import { parseCredentials } from '../../serving/src/auth/credentials.js';
import { mlflowClient, ROOT, tempHome, uniqueName } from '../support/env.js';

const predictBody = { plan: 'basic', region: 'north', sessions_30d: 1 };

/**
 * With no credentials and no token issuer configured, the API fails closed: every route that needs
 * a role answers 401 `auth_not_configured` naming the settings; health stays open. Only an explicit
 * DRIFTWOOD_API_AUTH=none (`openAccess`) opens it.
 */
describe('the API without credentials', () => {
  const app = (openAccess?: boolean) =>
    buildApp({
      mlflow: mlflowClient(inject('mlflowUri')),
      modelName: uniqueName('closed'),
      alias: 'champion',
      pollMs: 0,
      ...(openAccess === undefined ? {} : { openAccess }),
    });

  it('refuses every role route with 401 naming the settings, and keeps health open', async () => {
    const closed = await app();
    try {
      for (const [method, url] of [
        ['POST', '/v1/predict'],
        ['GET', '/v1/model'],
        ['GET', '/v1/datasets'],
        ['POST', '/v1/admin/promote'],
        ['GET', '/v1/monitoring/predictions'],
      ] as const) {
        const res = await closed.inject({
          method,
          url,
          ...(method === 'POST' ? { payload: predictBody } : {}),
        });
        expect(res.statusCode, `${method} ${url}`).toBe(401);
        expect(res.json().error).toBe('auth_not_configured');
        expect(res.json().message).toContain('DRIFTWOOD_API_CREDENTIALS');
        expect(res.json().message).toContain('DRIFTWOOD_API_AUTH=none');
      }
      expect((await closed.inject('/health/live')).statusCode).toBe(200);
    } finally {
      await closed.close();
    }
  });

  it('opens only when asked to (DRIFTWOOD_API_AUTH=none)', async () => {
    const open = await app(true);
    try {
      // No champion in this registry: past auth, the route answers for itself (503), not 401.
      const res = await open.inject({ method: 'POST', url: '/v1/predict', payload: predictBody });
      expect(res.statusCode).toBe(503);
    } finally {
      await open.close();
    }
  });

  it('scripts/api-users.sh makes an admin and a predict user once, whose passwords log in', async () => {
    const home = tempHome('driftwood-api-users-');
    const run = () =>
      execFileSync(path.join(ROOT, 'scripts', 'api-users.sh'), {
        env: { ...process.env, DRIFTWOOD_HOME: home },
        encoding: 'utf8',
      }).trim();
    const file = run();
    const first = readFileSync(file, 'utf8');
    expect(run()).toBe(file);
    expect(readFileSync(file, 'utf8')).toBe(first);
    const passwords = Object.fromEntries(
      readFileSync(path.join(home, 'secrets', 'api-passwords'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]),
    );
    expect(Object.keys(passwords).sort()).toEqual(['admin', 'predict']);
    const api = await buildApp({
      mlflow: mlflowClient(inject('mlflowUri')),
      modelName: uniqueName('users'),
      alias: 'champion',
      pollMs: 0,
      credentials: parseCredentials(first),
    });
    try {
      const as = (user: string) => `Basic ${Buffer.from(`${user}:${passwords[user]}`).toString('base64')}`;
      // An admin route: the admin gets past auth (200, no sidecar configured), predict is forbidden.
      const drift = (user: string) =>
        api.inject({ url: '/v1/dashboard/drift', headers: { authorization: as(user) } });
      expect((await drift('admin')).statusCode).toBe(200);
      expect((await drift('predict')).statusCode).toBe(403);
      expect((await drift('nobody')).statusCode).toBe(401);
    } finally {
      await api.close();
    }
  });
});
