import { Rng } from '../../random.js';

/** The anomaly kinds the simulator can plant, each one a case the ingest contract handles. */
export const ANOMALY_KINDS = [
  'missing_column',
  'string_in_number',
  'blank_number',
  'unknown_category',
  'duplicated_file',
  'truncated_file',
] as const;
export type AnomalyKind = (typeof ANOMALY_KINDS)[number];

export interface PlantedAnomaly {
  key: string;
  kind: AnomalyKind;
}

/** Numeric and categorical columns per file name, where bad values are planted. */
const NUMERIC: Record<string, string> = { 'customers.csv': 'monthly_charges', 'events.csv': 'value' };
const CATEGORY: Record<string, [string, string]> = {
  'customers.csv': ['plan', 'gold'],
  'events.csv': ['event_type', 'click'],
};
const DROPPABLE: Record<string, string> = {
  'customers.csv': 'signup_at',
  'events.csv': 'event_time',
  'labels.csv': 'reported_at',
};

const splitLines = (body: string) => body.replace(/\n$/, '').split('\n');
const fileOf = (key: string) => key.slice(key.lastIndexOf('/') + 1);

/**
 * Plants anomalies in a share `rate` of the simulated files. Pure and deterministic: it draws from
 * its own generator (seeded from the simulation's seed), so with rate 0 the files are untouched and
 * the clean simulation's bytes never depend on this step. The simulator's files are plain CSV
 * without quoted commas, which is what lets rows be edited by splitting on commas.
 */
export function plantAnomalies(
  files: ReadonlyMap<string, string>,
  rate: number,
  seed: number,
): { files: Map<string, string>; planted: PlantedAnomaly[] } {
  const out = new Map(files);
  const planted: PlantedAnomaly[] = [];
  if (rate <= 0) return { files: out, planted };
  const rng = new Rng((seed ^ 0x5eed_a11) >>> 0);
  for (const key of [...files.keys()].sort()) {
    if (rng.next() >= rate) continue;
    const body = files.get(key) as string;
    const lines = splitLines(body);
    const header = (lines[0] ?? '').split(',');
    const name = fileOf(key);
    const kinds = ANOMALY_KINDS.filter((k) => {
      if (k === 'string_in_number' || k === 'blank_number')
        return NUMERIC[name] !== undefined && lines.length > 1;
      if (k === 'unknown_category') return CATEGORY[name] !== undefined && lines.length > 1;
      if (k === 'missing_column') return DROPPABLE[name] !== undefined;
      if (k === 'truncated_file') return lines.length > 2;
      return true;
    });
    const kind = rng.pick(kinds);
    const editCell = (column: string, value: string): void => {
      const col = header.indexOf(column);
      const row = rng.int(1, lines.length);
      const cells = (lines[row] as string).split(',');
      cells[col] = value;
      lines[row] = cells.join(',');
    };
    if (kind === 'string_in_number') editCell(NUMERIC[name] as string, 'n/a');
    else if (kind === 'blank_number') editCell(NUMERIC[name] as string, ' ');
    else if (kind === 'unknown_category') editCell(...(CATEGORY[name] as [string, string]));
    else if (kind === 'missing_column') {
      const col = header.indexOf(DROPPABLE[name] as string);
      for (let i = 0; i < lines.length; i++) {
        const cells = (lines[i] as string).split(',');
        cells.splice(col, 1);
        lines[i] = cells.join(',');
      }
    } else if (kind === 'truncated_file') {
      const last = lines[lines.length - 1] as string;
      lines[lines.length - 1] = last.slice(0, Math.max(1, Math.floor(last.length / 2)));
    } else {
      // The same bytes again under another key of the same hour, as a re-sent upload.
      out.set(`${key.slice(0, key.lastIndexOf('/'))}/resent/${name}`, body);
      planted.push({ key, kind });
      continue;
    }
    out.set(key, kind === 'truncated_file' ? lines.join('\n') : `${lines.join('\n')}\n`);
    planted.push({ key, kind });
  }
  return { files: out, planted };
}
