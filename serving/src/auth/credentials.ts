import { hash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { DriftwoodError } from '@driftwood/tasks';

export const ROLES = ['predict', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** A stored password hash: `scrypt$N$r$p$<salt base64>$<hash base64>` (node:crypto scrypt). */
export interface PasswordHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

/** Who a request is, once authenticated: a Basic credential or a verified bearer token's subject. */
export interface Principal {
  kind: 'basic' | 'jwt';
  user: string;
  roles: ReadonlySet<Role>;
}

export interface Credential extends Principal {
  kind: 'basic';
  hash: PasswordHash;
}

export type CredentialStore = ReadonlyMap<string, Credential>;

// OWASP's scrypt minimum is N=2^17 with r=8 for interactive logins; a service credential checked on
// every request is cached after its first success, so 2^15 keeps the first check near 50 ms here.
const DEFAULT_COST = { N: 2 ** 15, r: 8, p: 1 };
const KEY_LENGTH = 32;

function scryptAsync(password: string, salt: Buffer, cost: { N: number; r: number; p: number }) {
  return new Promise<Buffer>((resolve, reject) => {
    scrypt(password, salt, KEY_LENGTH, { ...cost, maxmem: 256 * cost.N * cost.r * cost.p }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

export async function hashPassword(password: string, cost = DEFAULT_COST): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(password, salt, cost);
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export function parsePasswordHash(text: string): PasswordHash | undefined {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(text);
  if (!m) return undefined;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // N must be a power of two above 1; bounds keep a hostile file from asking for gigabytes.
  if (N < 2 || N > 2 ** 20 || (N & (N - 1)) !== 0 || r < 1 || r > 32 || p < 1 || p > 16) return undefined;
  const hash = Buffer.from(m[5] as string, 'base64');
  if (hash.length !== KEY_LENGTH) return undefined;
  return { N, r, p, salt: Buffer.from(m[4] as string, 'base64'), hash };
}

/**
 * Parses `user:role[,role]:scrypt$…` lines (blank lines and `#` comments ignored). An error names
 * the line and what is wrong with it, never the line's content, which holds a hash.
 */
export function parseCredentials(text: string, setting = 'DRIFTWOOD_API_CREDENTIALS'): CredentialStore {
  const store = new Map<string, Credential>();
  const lines = text.split(/\r?\n|;/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const bad = (what: string): never => {
      throw new DriftwoodError('CONFIG_INVALID', `setting ${setting}: entry ${i + 1} ${what}`, { setting });
    };
    const [user, roleList, hashText, ...rest] = line.split(':');
    if (rest.length > 0 || hashText === undefined) bad('must be user:role[,role]:scrypt$N$r$p$salt$hash');
    if (!/^[\w.@-]{1,64}$/.test(user as string)) bad('has a user name that is not 1-64 of [A-Za-z0-9_.@-]');
    const roles = new Set<Role>();
    for (const role of (roleList as string).split(',')) {
      if (!(ROLES as readonly string[]).includes(role))
        bad(`has role '${role}', expected ${ROLES.join(' or ')}`);
      roles.add(role as Role);
    }
    const hash = parsePasswordHash(hashText as string);
    if (!hash) bad('has no valid scrypt hash (make one with `node serving/dist/bin/hash-password.js`)');
    if (store.has(user as string)) bad(`repeats user '${user}'`);
    store.set(user as string, { kind: 'basic', user: user as string, roles, hash: hash as PasswordHash });
  });
  return store;
}

/** Splits an `Authorization: Basic …` header; undefined when it is absent or malformed. */
export function parseBasicHeader(header: string | undefined): { user: string; password: string } | undefined {
  if (!header) return undefined;
  const m = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header.trim());
  if (!m) return undefined;
  const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

// An unknown user still costs one scrypt, so response time does not tell which user names exist.
const DUMMY: PasswordHash = { ...DEFAULT_COST, salt: Buffer.alloc(16), hash: Buffer.alloc(KEY_LENGTH) };

/** A check refused before it ran, because its user or address failed too often of late. */
export interface Throttled {
  throttled: true;
  /** Seconds until a check may run again. */
  retryAfter: number;
}

/** Lets a new password check start, or refuses it; told how each started check ended. */
export interface AttemptGate {
  begin(user: string): Throttled | undefined;
  end(user: string, ok: boolean): void;
}

/** Checks an `Authorization: Basic …` header; undefined when it is absent, malformed or wrong. */
export interface BasicVerifier {
  /**
   * With `gate`, a check that would run scrypt asks it first; one that joins a check of the very
   * same header already running does not (it is not another attempt).
   */
  (header: string | undefined): Promise<Credential | undefined>;
  (header: string | undefined, gate: AttemptGate): Promise<Credential | Throttled | undefined>;
  /**
   * The credential this very header was verified as in the last `cacheMs`, without scrypt; else
   * undefined. With `connection` (the request's socket), a header equal to the one the same
   * connection sent last skips the keyed hash as well.
   */
  cached(header: string | undefined, connection?: object): Credential | undefined;
}

/**
 * Checks Basic credentials in constant time. scrypt is deliberately slow, so a success is remembered
 * for `cacheMs` (at most `maxCached` headers, the oldest forgotten first); failures always pay scrypt.
 * Concurrent checks of the same header share one scrypt (a cold cache under a burst of one client's
 * requests runs it once, not once per request). The cache is keyed by a SHA-256 of the header under
 * a random per-process key, never the password: a lookup costs one hash, and as the key is secret,
 * how long a lookup takes says nothing about any stored credential. `onCheck` is told of each scrypt.
 */
export function createVerifier(
  store: CredentialStore,
  options: { cacheMs?: number; maxCached?: number; onCheck?: (ok: boolean) => void } = {},
): BasicVerifier {
  const cacheMs = options.cacheMs ?? 5 * 60_000;
  const maxCached = options.maxCached ?? 1000;
  const cache = new Map<string, { credential: Credential; until: number }>();
  /** Checks running, by cache key: a second request with the same header waits for the first. */
  const running = new Map<string, Promise<Credential | undefined>>();
  // SHA-256(key ‖ header) with a random per-process key, in one native call (no Hash object).
  const secret = randomBytes(32).toString('base64');
  const cacheKey = (header: string) => hash('sha256', secret + header, 'base64');
  const hitFor = (key: string): Credential | undefined => {
    const hit = cache.get(key);
    if (!hit) return undefined;
    if (hit.until > Date.now()) return hit.credential;
    cache.delete(key);
    return undefined;
  };
  const check = async (key: string, user: string, password: string): Promise<Credential | undefined> => {
    const credential = store.get(user);
    const expected = credential?.hash ?? DUMMY;
    const actual = await scryptAsync(password, expected.salt, expected);
    const ok = timingSafeEqual(actual, expected.hash) && credential !== undefined;
    options.onCheck?.(ok);
    if (!ok) return undefined;
    if (cache.size >= maxCached) cache.delete(cache.keys().next().value as string);
    cache.set(key, { credential, until: Date.now() + cacheMs });
    return credential;
  };
  const verify = async (
    header: string | undefined,
    gate?: AttemptGate,
  ): Promise<Credential | Throttled | undefined> => {
    const parsed = parseBasicHeader(header);
    if (!parsed) return undefined;
    const key = cacheKey(header as string);
    const hit = hitFor(key);
    if (hit) return hit;
    const joined = running.get(key);
    if (joined) return joined;
    const refused = gate?.begin(parsed.user);
    if (refused) return refused;
    const pending = check(key, parsed.user, parsed.password);
    running.set(key, pending);
    try {
      const credential = await pending;
      gate?.end(parsed.user, credential !== undefined);
      return credential;
    } finally {
      running.delete(key);
    }
  };
  // A keep-alive client sends the same header on every request of its connection. The connection
  // remembers its last header and that header's cache key: comparing the two strings involves no
  // one else's secret, and the entry goes with the socket.
  const lastOf = new WeakMap<object, { header: string; key: string }>();
  const cached = (header: string | undefined, connection?: object): Credential | undefined => {
    if (header === undefined || cache.size === 0) return undefined;
    const last = connection === undefined ? undefined : lastOf.get(connection);
    if (last !== undefined && last.header === header) return hitFor(last.key);
    const key = cacheKey(header);
    const hit = hitFor(key);
    if (hit && connection !== undefined) lastOf.set(connection, { header, key });
    return hit;
  };
  return Object.assign(verify, { cached }) as BasicVerifier;
}
