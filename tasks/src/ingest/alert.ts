import { DriftwoodError } from '../errors.js';
import { type HttpOptions, httpRequest } from '../http.js';
import type { FileReport } from './load.js';

/** Files whose share of corrected or quarantined rows passes the contract's threshold. Pure. */
export function decideAlerts(files: readonly FileReport[], threshold: number): FileReport[] {
  return files.filter((f) => f.status === 'quarantined' || (f.rowsRead > 0 && f.anomalyShare > threshold));
}

/** A Slack incoming-webhook message (`text` plus `blocks`), naming each file, its share and rules. */
export function alertMessage(
  dataset: string,
  threshold: number,
  files: readonly FileReport[],
): Record<string, unknown> {
  const line = (f: FileReport): string => {
    const rules = Object.entries(f.anomalies)
      .map(([rule, n]) => `${rule}: ${n}`)
      .join(', ');
    const share = `${(f.anomalyShare * 100).toFixed(1)}%`;
    return f.status === 'quarantined'
      ? `• \`${f.key}\` quarantined: ${f.reason ?? 'rejected'}`
      : `• \`${f.key}\` ${share} of ${f.rowsRead} rows corrected or quarantined (${rules})`;
  };
  const text = `Driftwood ingest (${dataset}): ${files.length} file(s) over the anomaly threshold of ${(threshold * 100).toFixed(1)}%`;
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `*${text}*` } },
      { type: 'section', text: { type: 'mrkdwn', text: files.slice(0, 20).map(line).join('\n') } },
    ],
  };
}

/** Posts the message; a webhook that refuses it is an error (the data is loaded; the run is retried). */
export async function postAlert(
  url: string,
  message: Record<string, unknown>,
  http: HttpOptions,
): Promise<void> {
  const res = await httpRequest(
    {
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(message),
      unreachableCode: 'HTTP_ERROR',
      unreachableHint: 'check DRIFTWOOD_INGEST_ALERT_WEBHOOK',
    },
    http,
  );
  if (res.status < 200 || res.status >= 300)
    throw new DriftwoodError(
      'HTTP_ERROR',
      `ingest alert webhook answered ${res.status}: ${res.body.toString().slice(0, 200)}`,
    );
}
