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

/** The audit trail from the registered model's tags, oldest first. */
export function parseAuditTags(tags: readonly { key: string; value: string }[]): AliasEvent[] {
  const events: AliasEvent[] = [];
  for (const t of tags) {
    if (!t.key.startsWith(AUDIT_TAG_PREFIX)) continue;
    try {
      events.push(JSON.parse(t.value) as AliasEvent);
    } catch {
      // A tag edited by hand into something else is not part of the trail.
    }
  }
  return events.sort((a, b) => a.at.localeCompare(b.at));
}

/** The tag key of an event: sortable by time, unique for a version moved twice in one millisecond. */
export function auditTagKey(e: AliasEvent): string {
  return `${AUDIT_TAG_PREFIX}${e.at.replace(/[:.]/g, '-')}.${e.alias}.${e.version}`;
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
