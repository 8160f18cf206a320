import { type Logger, pino } from 'pino';

export type { Logger };

/** Structured JSON logs on stderr (stdout carries a step's JSON result). PII fields are redacted by path. */
export function createLogger(level: string, name = 'driftwood'): Logger {
  return pino(
    {
      name,
      level,
      redact: {
        paths: ['*.email', 'email', '*.password', 'password', 'authorization', '*.authorization'],
        censor: '[redacted]',
      },
    },
    pino.destination(2),
  );
}
