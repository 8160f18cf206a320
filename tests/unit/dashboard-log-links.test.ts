import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  escapeRegex,
  LOG_VARIABLES,
  LOGS_DASHBOARD_UID,
  logSearchUrl,
} from '../../dashboard/src/log-links.js';

const logsDashboard = JSON.parse(
  readFileSync(new URL('../../monitoring/grafana/dashboards/logs.json', import.meta.url), 'utf8'),
) as { uid: string; templating: { list: { name: string }[] }; panels: { targets?: { expr?: string }[] }[] };

describe('dashboard links to log searches (Grafana logs dashboard)', () => {
  it('points at the provisioned logs dashboard and variables it declares, matched as regexes', () => {
    expect(logsDashboard.uid).toBe(LOGS_DASHBOARD_UID);
    const declared = logsDashboard.templating.list.map((v) => v.name);
    for (const name of LOG_VARIABLES) expect(declared).toContain(name);
    const exprs = logsDashboard.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr ?? '');
    // The escaping below is right only because the panels match these variables with =~.
    expect(exprs.some((e) => e.includes('=~"$dag_run_id"'))).toBe(true);
    expect(exprs.some((e) => e.includes('=~"$model_version"'))).toBe(true);
  });

  it('fills a DAG run and its dataset, escaped so the run id matches itself only', () => {
    const runId = 'scheduled__2026-12-07T10:00:00+00:00';
    const url = new URL(
      logSearchUrl('https://grafana.example.com/', { dataset: 'churn', dagRunId: runId }) ?? '',
    );
    expect(url.pathname).toBe(`/d/${LOGS_DASHBOARD_UID}`);
    expect(url.searchParams.get('var-dataset')).toBe('churn');
    const pattern = new RegExp(`^${url.searchParams.get('var-dag_run_id')}$`);
    expect(pattern.test(runId)).toBe(true);
    // Unescaped, `+` would make the pattern miss the run and `.` match other runs.
    expect(pattern.test('scheduled__2026-12-07T10:00:00000:00')).toBe(false);
    expect(new RegExp(`^${runId}$`).test(runId)).toBe(false);
    expect(url.searchParams.has('var-model_version')).toBe(false);
  });

  it('fills a model version, and gives no link without Grafana', () => {
    const url = new URL(logSearchUrl('http://grafana:3000', { modelVersion: '12' }) ?? '');
    expect(url.searchParams.get('var-model_version')).toBe('12');
    expect(url.searchParams.get('from')).toBe('now-24h');
    expect(logSearchUrl(null, { modelVersion: '12' })).toBeNull();
    expect(escapeRegex('a.b*c')).toBe('a\\.b\\*c');
  });
});
