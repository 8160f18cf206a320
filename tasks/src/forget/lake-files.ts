import type { ObjectStore } from '../lake/object-store.js';
import { sha256 } from '../lake/object-store.js';
import type { Logger } from '../log.js';
import { planTextRewrite, type Subject, textFormat } from './plan.js';
import { emptyPlace, type PlaceReport } from './report.js';
import { SCORING_PREFIXES } from './scores.js';

/**
 * Prefixes of the lake that erasure handles elsewhere (immutable artifacts, batch scores) or must
 * keep (its own audit).
 */
const NOT_SCANNED = ['audit/', 'snapshots/', 'features/', ...SCORING_PREFIXES];

/**
 * The lake objects of the dataset that may hold its customers: its raw and quarantined files, and
 * the lake's other text (reports, prediction logs); other datasets' deliveries are theirs.
 */
function scanned(key: string, dataset: string): boolean {
  if (NOT_SCANNED.some((p) => key.startsWith(p))) return false;
  if (key.startsWith('raw/') || key.startsWith('quarantine/'))
    return key.startsWith(`raw/${dataset}/`) || key.startsWith(`quarantine/${dataset}/`);
  return true;
}

/** A rewritten raw file: the ledger follows it, so the next ingest does not read it again. */
export interface RewrittenRaw {
  key: string;
  sha256: string;
  etag: string;
  size: number;
  removed: number;
}

/**
 * Rewrites every text file of the lake that names the customer: raw deliveries (CSV, JSON Lines),
 * their quarantined copies, rejected rows (`*.rejected.jsonl`) and reason files, reports and
 * prediction logs kept in the lake. A file that cannot be read or rewritten is reported and the
 * rest go on; a malformed row never stops the file. Raw customer rows removed hand their PII values
 * (the email) to the subject first, so the quarantine's tokens of them are found too.
 */
export async function forgetLakeFiles(
  lake: ObjectStore,
  dataset: string,
  subject: Subject,
  deps: { log: Logger; learn?: (key: string, text: string) => void },
): Promise<{ raw: PlaceReport; quarantine: PlaceReport; other: PlaceReport; rewrittenRaw: RewrittenRaw[] }> {
  const out = {
    raw: emptyPlace(),
    quarantine: emptyPlace(),
    other: emptyPlace(),
    rewrittenRaw: [] as RewrittenRaw[],
  };
  const objects = (await lake.list('')).filter((o) => scanned(o.key, dataset));
  // Raw files first: their customer rows carry the email whose token the quarantine holds.
  objects.sort((a, b) => Number(!a.key.startsWith('raw/')) - Number(!b.key.startsWith('raw/')));
  for (const obj of objects) {
    const format = textFormat(obj.key);
    if (format === undefined) continue;
    const report = obj.key.startsWith('raw/')
      ? out.raw
      : obj.key.startsWith('quarantine/')
        ? out.quarantine
        : out.other;
    report.filesScanned++;
    if (format === 'parquet') {
      // No generic Parquet rewrite for deliveries of any schema: named for a rewrite by hand.
      report.problems.push({
        file: obj.key,
        problem: 'Parquet delivery not rewritten: check and rewrite it by hand',
      });
      continue;
    }
    try {
      const text = (await lake.get(obj.key)).toString('utf8');
      if (obj.key.startsWith('raw/')) deps.learn?.(obj.key, text);
      const plan = planTextRewrite(obj.key, text, subject);
      if (!plan) continue;
      if (plan.malformed > 0)
        report.problems.push({
          file: obj.key,
          problem: `${plan.malformed} malformed row(s) or line(s): read field by field, erased where they name the customer`,
        });
      if (!plan.changed) continue;
      const info = await lake.put(obj.key, plan.text);
      report.filesRewritten++;
      report.rowsRemoved += plan.removed;
      report.files.push(obj.key);
      if (obj.key.startsWith('raw/'))
        out.rewrittenRaw.push({
          key: obj.key,
          sha256: sha256(plan.text),
          etag: info.etag,
          size: info.size,
          removed: plan.removed,
        });
    } catch (err) {
      report.problems.push({
        file: obj.key,
        problem: `not rewritten: ${(err as Error).message}`,
        failed: true,
      });
      deps.log.warn(
        { key: obj.key, err: (err as Error).message },
        'forget: a lake file could not be rewritten',
      );
    }
  }
  return out;
}
