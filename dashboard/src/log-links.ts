/**
 * Links from what the dashboard shows (a model version, a DAG run) to the provisioned Grafana logs
 * dashboard (monitoring/grafana/dashboards/logs.json) with its variables filled in: the API's lines of
 * that version, or the steps' lines of that run. The dashboard's queries match the variables as
 * regular expressions (`=~`), so the values are escaped to match themselves only.
 */

/** The logs dashboard's uid and the variables it declares (a test checks them against the JSON). */
export const LOGS_DASHBOARD_UID = 'driftwood-logs';
export const LOG_VARIABLES = ['dataset', 'dag_run_id', 'model_version'] as const;

export interface LogSearch {
  dataset?: string;
  dagRunId?: string;
  modelVersion?: string;
}

/** RE2 (LogQL) metacharacters: a run id such as `scheduled__2026-12-07T10:00:00+00:00` holds `+` and `.`. */
export const escapeRegex = (s: string): string => s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');

/** The Grafana URL of the logs dashboard over the last day, filtered to the search; null without Grafana. */
export function logSearchUrl(grafana: string | null, search: LogSearch): string | null {
  if (!grafana) return null;
  const params = new URLSearchParams({ from: 'now-24h', to: 'now' });
  if (search.dataset) params.set('var-dataset', search.dataset);
  if (search.dagRunId) params.set('var-dag_run_id', escapeRegex(search.dagRunId));
  if (search.modelVersion) params.set('var-model_version', escapeRegex(search.modelVersion));
  return `${grafana.replace(/\/+$/, '')}/d/${LOGS_DASHBOARD_UID}?${params.toString()}`;
}
