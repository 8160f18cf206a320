import type { DriftState, PipelineRun, SourceStatus } from '../../serving/src/routes/dashboard-types.js';

/** The API client: every call carries the signed-in user's Basic credentials; nothing is cached. */

const KEY = 'driftwood.auth';

export interface Session {
  user: string;
  roles: string[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The parsed error body (a refused promotion carries the gate's result). */
    readonly body: unknown = null,
  ) {
    super(message);
  }
}

export function credentials(): string | null {
  return sessionStorage.getItem(KEY);
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
}

export async function request<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const auth = credentials();
  if (auth) headers.authorization = `Basic ${auth}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method: init.method ?? 'GET',
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
    // The Authorization header is set by hand: 'omit' keeps the browser's own Basic prompt away on a 401.
    credentials: 'omit',
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (!res.ok) {
    let code = `http_${res.status}`;
    let message = res.statusText || `HTTP ${res.status}`;
    let parsed: unknown = null;
    try {
      const body = JSON.parse(text) as { error?: string; message?: string };
      code = body.error ?? code;
      message = body.message ?? message;
      parsed = body;
    } catch {
      // Not JSON (a proxy's page): keep the status line.
    }
    throw new ApiError(res.status, code, message, parsed);
  }
  return (res.headers.get('content-type') ?? '').includes('json') ? (JSON.parse(text) as T) : (text as T);
}

/** Checks the credentials against the API and keeps them for this tab only (sessionStorage). */
export async function signIn(user: string, password: string): Promise<Session> {
  const token = btoa(unescape(encodeURIComponent(`${user}:${password}`)));
  sessionStorage.setItem(KEY, token);
  try {
    return await request<Session>('/v1/whoami');
  } catch (err) {
    signOut();
    throw err;
  }
}

export const whoami = () => request<Session>('/v1/whoami');

export interface ModelRef {
  name: string;
  version: string;
  alias: string;
}

export interface Inputs {
  model: ModelRef;
  /** How the transform scaled: mean and std are the median and IQR when 'robust'. */
  scaling?: 'standard' | 'robust';
  /** Raw units; min and max are the training range (absent for older models). */
  numeric: { name: string; median: number; mean: number; std: number; min?: number; max?: number }[];
  categorical: { name: string; values: string[]; default: string }[];
}

export interface Prediction {
  probability: number;
  label: number;
  model: ModelRef;
}

export interface Explanation {
  probability: number;
  method: string;
  contributions: { feature: string; value: unknown; baseline: unknown; contribution: number }[];
  /** Fields the request left out: imputed with the default, so they have no contribution. */
  imputed?: string[];
}

export interface VersionRow {
  version: string;
  status: string;
  created: string | null;
  aliases: string[];
  runId: string | null;
  metrics: Record<string, number>;
  params: Record<string, string>;
  tags: Record<string, string>;
}

export interface AliasEvent {
  at: string;
  alias: string;
  version: string;
  previous: string | null;
  action: string;
  by: string;
  reason: string;
}

/** `GET /v1/models/:version/curves`: what `driftwood evaluate` logged (tasks/src/evaluate/curves.ts). */
export interface Curves {
  format: string;
  alias: string;
  holdout: { runId: string; rows: number; positives: number };
  series: {
    role: 'candidate' | 'champion';
    version: string;
    rocAuc: number | null;
    prAuc: number | null;
    roc: [number, number][];
    pr: [number, number][];
  }[];
}

export interface Models {
  name: string;
  servedAlias: string;
  aliases: Record<string, string>;
  versions: VersionRow[];
  history: AliasEvent[];
}

// The data routes' shapes, as the API builds them (types only: nothing of the API's code is bundled).
export type { DriftState, PipelineRun };

export interface PromoteResult {
  alias: string;
  version: string;
  previous: string | null;
  promoted: boolean;
  reason: string;
  checks: { name: string; passed: boolean; detail: string }[];
  evaluation: {
    holdoutRows: number;
    candidateRocAuc: number | null;
    championRocAuc: number | null;
    diff: number | null;
    interval: [number, number] | null;
  };
  served?: string | null;
}

export const pipelines = () => request<SourceStatus<PipelineRun[]>>('/v1/dashboard/pipelines?limit=10');
export const drift = () => request<SourceStatus<DriftState>>('/v1/dashboard/drift');
