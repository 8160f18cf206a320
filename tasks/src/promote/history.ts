/** One alias move, as recorded in the registered model's audit trail. */
export interface AliasEvent {
  at: string;
  alias: string;
  version: string;
  /** The version the alias held just before this move (read under the alias lock). */
  previous: string | null;
  /** `external`: a move made outside driftwood, noticed by the re-read after one of its own. */
  action: 'promote' | 'rollback' | 'external';
  by: string;
  reason: string;
}

export const AUDIT_TAG_PREFIX = 'driftwood.audit.';

/** How long an audit tag's summary may be: one line in MLflow's tag table. */
export const AUDIT_SUMMARY_MAX = 120;

const VERBS: Record<AliasEvent['action'], string> = {
  promote: 'promoted',
  rollback: 'rolled back',
  external: 'moved outside driftwood',
};

const one = (s: string, max: number): string => {
  const line = s.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
};

/**
 * An event as its registered-model tag shows it: one short line a person reads in MLflow's tag
 * table — `promoted champion to v4 from v3 by alice: ROC AUC 0.8400 > 0.8100 (+0.0300)`. The key
 * holds the time; the whole event (its full reason) is `auditArtifactPath` on the version's run.
 * Pure; `parseAuditTags` reads it back.
 */
export function auditTagText(e: AliasEvent, summary = e.reason): string {
  const v = (x: string | null) => (x === null || x === 'none' ? 'none' : `v${x}`);
  return `${VERBS[e.action]} ${e.alias} to ${v(e.version)} from ${v(e.previous)} by ${one(e.by, 40)}: ${one(summary, AUDIT_SUMMARY_MAX)}`;
}

const TEXT =
  /^(promoted|rolled back|moved outside driftwood) (\S+) to (none|v\S+) from (none|v\S+) by (.+?): (.*)$/s;
const KEY_TIME = /^(\d{4}-\d\d-\d\d)T(\d\d)-(\d\d)-(\d\d)-(\d{3})Z\./;

/** One audit tag back as an event: the short text (time from the key) or the JSON of older trails. */
export function parseAuditTag(t: { key: string; value: string }): AliasEvent | undefined {
  if (!t.key.startsWith(AUDIT_TAG_PREFIX)) return undefined;
  const value = t.value.trim();
  if (value.startsWith('{')) {
    try {
      return JSON.parse(value) as AliasEvent;
    } catch {
      return undefined;
    }
  }
  const m = TEXT.exec(value);
  const k = KEY_TIME.exec(t.key.slice(AUDIT_TAG_PREFIX.length));
  if (!m || !k) return undefined;
  const action = (Object.keys(VERBS) as AliasEvent['action'][]).find((a) => VERBS[a] === m[1]);
  const version = (x: string) => (x === 'none' ? null : x.slice(1));
  if (!action) return undefined;
  return {
    at: `${k[1]}T${k[2]}:${k[3]}:${k[4]}.${k[5]}Z`,
    alias: m[2] as string,
    version: version(m[3] as string) ?? 'none',
    previous: version(m[4] as string),
    action,
    by: m[5] as string,
    reason: m[6] as string,
  };
}

/** The audit trail from the registered model's tags, oldest first. */
export function parseAuditTags(tags: readonly { key: string; value: string }[]): AliasEvent[] {
  // A tag edited by hand into something else is not part of the trail.
  const events = tags.map(parseAuditTag).filter((e): e is AliasEvent => e !== undefined);
  return events.sort((a, b) => a.at.localeCompare(b.at));
}

/** The tag key of an event: sortable by time, unique for a version moved twice in one millisecond. */
export function auditTagKey(e: AliasEvent): string {
  return `${AUDIT_TAG_PREFIX}${e.at.replace(/[:.]/g, '-')}.${e.alias}.${e.version}`;
}

/** Where on the moved version's run the whole event is kept, as JSON. */
export function auditArtifactPath(e: AliasEvent): string {
  return `audit/${auditTagKey(e).slice(AUDIT_TAG_PREFIX.length)}.json`;
}

/** Which version held `alias` at time `t` (ISO or ms), answered from the trail; null if none. Pure. */
export function versionAt(events: readonly AliasEvent[], alias: string, t: number | string): string | null {
  const at = typeof t === 'number' ? t : Date.parse(t);
  let current: string | null = null;
  for (const e of events) {
    if (e.alias !== alias) continue;
    if (Date.parse(e.at) > at) break;
    current = e.version;
  }
  return current;
}

/**
 * Where a rollback goes: the version that held the alias before the last move. Pure. Rolling back
 * twice undoes the rollback.
 */
export function planRollback(
  events: readonly AliasEvent[],
  alias: string,
  current: string | null,
): { to: string; from: string | null } | { to: null; reason: string } {
  const moves = events.filter((e) => e.alias === alias);
  const last = moves[moves.length - 1];
  if (!last) return { to: null, reason: `the audit trail has no move of '${alias}'` };
  if (last.version !== current)
    return {
      to: null,
      reason: `'${alias}' is version ${current ?? 'none'} but the trail's last move set version ${last.version}: it was moved outside driftwood; pass --version`,
    };
  if (last.previous === null)
    return { to: null, reason: `version ${last.version} was the first '${alias}': nothing to roll back to` };
  return { to: last.previous, from: current };
}
