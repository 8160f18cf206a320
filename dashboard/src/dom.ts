/** Tiny DOM helpers: text is always set as text (never HTML), so API values cannot inject markup. */

type Attrs = Record<string, string | number | boolean | undefined>;
type Child = Node | string | number | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children)
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export function section(title: string, ...children: Child[]): HTMLElement {
  const id = `h-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return h('section', { 'aria-labelledby': id, class: 'card' }, h('h2', { id }, title), ...children);
}

export function errorBox(err: unknown): HTMLElement {
  const message = err instanceof Error ? err.message : String(err);
  return h('p', { class: 'error', role: 'alert' }, message);
}

export function empty(text: string): HTMLElement {
  return h('p', { class: 'empty' }, text);
}

export function table(headers: string[], rows: Child[][], caption?: string): HTMLTableElement {
  return h(
    'table',
    {},
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, ...headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))),
  );
}

export const fmt = (n: number | undefined, digits = 3): string =>
  n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(digits);

export function age(iso: string | null | undefined): string {
  if (!iso) return '—';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

const SOURCE_WORDS = {
  not_configured: 'not configured',
  unreachable: 'unreachable',
  error: 'answered with an error',
} as const;

/**
 * The honest state of an outside source that gave no data: not configured (with the setting to
 * set), unreachable, or a reply we could not use — never placeholder figures.
 */
export function sourceState(
  name: string,
  s: { state: keyof typeof SOURCE_WORDS | 'ok'; source: string | null; message: string | null },
): HTMLElement {
  const word = s.state === 'ok' ? 'ok' : SOURCE_WORDS[s.state];
  return h(
    'p',
    { class: `source-state ${s.state}`, 'data-state': s.state, role: 'status' },
    h('strong', {}, `${name}: ${word}`),
    s.source ? ` (${s.source})` : '',
    s.message ? ` — ${s.message}` : '',
  );
}

/** A pill for a run's or a check's state, coloured by what it means. */
export function badge(text: string, tone: 'ok' | 'bad' | 'busy' | 'idle'): HTMLElement {
  return h('span', { class: `badge ${tone}` }, text);
}

export function runTone(state: string): 'ok' | 'bad' | 'busy' | 'idle' {
  if (state === 'success') return 'ok';
  if (state === 'failed') return 'bad';
  if (state === 'running' || state === 'queued') return 'busy';
  return 'idle';
}
