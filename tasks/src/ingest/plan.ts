import type { ObjectInfo } from '../lake/object-store.js';
import { hourOfKey } from '../time.js';

export interface LedgerEntry {
  object_key: string;
  etag: string;
  sha256: string;
  status: 'loaded' | 'quarantined' | 'duplicate';
}

export interface IngestPlan {
  /** Objects to read, oldest partition first (so missed hours load in order). */
  load: ObjectInfo[];
  /** Already in the ledger with the same etag: nothing to do. */
  skip: ObjectInfo[];
}

const KIND_ORDER: Record<string, number> = { 'customers.csv': 0, 'events.csv': 1, 'labels.csv': 2 };

/** Decides which lake objects an ingest run must read. Pure: no I/O, unit-tested with plain data. */
export function planIngest(
  objects: readonly ObjectInfo[],
  ledger: ReadonlyMap<string, LedgerEntry>,
  interval?: { start: number; end: number },
  /** Rank of a file name within an hour (the contract's table order): parents before children. */
  fileOrder: (fileName: string) => number = (f) => KIND_ORDER[f] ?? 9,
): IngestPlan {
  const inInterval = objects.filter((o) => {
    const hour = hourOfKey(o.key);
    if (hour === undefined) return false;
    return interval === undefined || (hour >= interval.start && hour < interval.end);
  });
  const sorted = [...inInterval].sort((a, b) => {
    const ha = hourOfKey(a.key) as number;
    const hb = hourOfKey(b.key) as number;
    if (ha !== hb) return ha - hb;
    const ka = fileOrder(a.key.slice(a.key.lastIndexOf('/') + 1));
    const kb = fileOrder(b.key.slice(b.key.lastIndexOf('/') + 1));
    return ka - kb || (a.key < b.key ? -1 : 1);
  });
  const load: ObjectInfo[] = [];
  const skip: ObjectInfo[] = [];
  for (const o of sorted) {
    const seen = ledger.get(o.key);
    if (seen && seen.etag === o.etag) skip.push(o);
    else load.push(o);
  }
  return { load, skip };
}
