import { fileURLToPath } from 'node:url';
import { type Logger, pino, type TransportTargetOptions } from 'pino';
import type { LokiTarget } from './log-loki.js';

export type { Logger };

/** Where log lines also go besides stderr: a Loki, with the labels of the process that logs. */
export interface LogShipping {
  loki: { url: string; batchSeconds: number; timeoutMs: number };
  /** Low-cardinality stream labels: `service` (`api` or the step's name) and, for a step, `dataset`. */
  labels: { service: string; dataset?: string };
}

const REDACT = {
  paths: ['*.email', 'email', '*.password', 'password', 'authorization', '*.authorization'],
  censor: '[redacted]',
};

/**
 * Structured JSON logs on stderr (stdout carries a step's JSON result). PII fields are redacted by path.
 * With `shipping`, the same lines (redacted before they leave this thread) also go to Loki from a
 * worker thread, batched, so a slow or absent Loki never holds up the process that logs.
 */
export function createLogger(level: string, name = 'driftwood', shipping?: LogShipping): Logger {
  if (shipping === undefined) return pino({ name, level, redact: REDACT }, pino.destination(2));
  const loki: LokiTarget = { ...shipping.loki, labels: shipping.labels };
  const targets: TransportTargetOptions[] = [
    { target: 'pino/file', level, options: { destination: 2 } },
    { target: fileURLToPath(new URL('./log-loki.js', import.meta.url)), level, options: { ...loki } },
  ];
  const transport = pino.transport({ targets });
  return pino({ name, level, redact: REDACT }, transport);
}
