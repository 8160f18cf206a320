import { ApiError, type Curves, type Models, type PromoteResult, request } from '../api.js';
import { PLOT, pathData, toPixels } from '../curves.js';
import { badge, empty, errorBox, fmt, h, section, table } from '../dom.js';
import {
  curveCandidates,
  defaultPair,
  formatDelta,
  formatMetric,
  KEY_METRICS,
  keyMetrics,
  metricDiff,
  paramDiff,
} from '../figures.js';
import type { Page } from './page.js';

/** The gate's decision: moved or refused, its reason, every check, and the holdout comparison. */
function gateReport(r: PromoteResult, refused: boolean): HTMLElement {
  const e = r.evaluation;
  return h(
    'div',
    { id: 'promote-result', 'data-promoted': String(!refused) },
    h(
      'p',
      { class: refused ? 'error' : 'ok', role: refused ? 'alert' : 'status' },
      refused
        ? `Refused: version ${r.version} did not pass the gate; ${r.alias} stays on ${r.previous ?? 'none'}.`
        : `Promoted: ${r.alias} moved from ${r.previous ?? 'none'} to ${r.version}; the API serves ${r.served ?? 'none'}.`,
    ),
    h(
      'p',
      { class: 'muted' },
      `Holdout of ${e.holdoutRows} rows: ROC AUC ${fmt(e.candidateRocAuc ?? undefined, 4)} vs champion ${fmt(e.championRocAuc ?? undefined, 4)}`,
      e.interval
        ? ` (difference ${fmt(e.diff ?? undefined, 4)}, interval ${fmt(e.interval[0], 4)} to ${fmt(e.interval[1], 4)})`
        : '',
    ),
    r.checks.length
      ? h(
          'ul',
          { class: 'checks', id: 'promote-checks' },
          ...r.checks.map((c) =>
            h(
              'li',
              { 'data-passed': String(c.passed) },
              badge(c.passed ? 'pass' : 'fail', c.passed ? 'ok' : 'bad'),
              ' ',
              h('strong', {}, c.name),
              `: ${c.detail}`,
            ),
          ),
        )
      : h('p', {}, r.reason),
  );
}

/** Versions side by side, the promotion history from the audit trail, and (admins only) rollback and the gated promote. */
export const renderModels: Page = async (main, session) => {
  const isAdmin = session.roles.includes('admin');
  const models = await request<Models>('/v1/models');
  const status = h('div', { id: 'models-status', 'aria-live': 'polite' });
  const served = models.aliases[models.servedAlias];

  const act = async (body: Record<string, string>, question: string) => {
    if (!window.confirm(question)) return;
    status.replaceChildren(h('p', {}, 'Moving the alias…'));
    try {
      const r = await request<{ version: string; previous: string | null; served: string | null }>(
        '/v1/admin/rollback',
        { method: 'POST', body: { ...body, reason: `dashboard: ${session.user}` } },
      );
      await renderModelsInto(
        main,
        session,
        `${models.servedAlias} moved from ${r.previous ?? 'none'} to ${r.version}; the API serves ${r.served ?? 'none'}.`,
      );
    } catch (err) {
      status.replaceChildren(errorBox(err));
    }
  };

  const promote = async (version: string) => {
    const question = `Run the promotion gate for version ${version}? If it passes, version ${version} becomes ${models.servedAlias} (through staging and a smoke check); the move is audited.`;
    if (!window.confirm(question)) return;
    status.replaceChildren(h('p', {}, `Evaluating version ${version} against ${models.servedAlias}…`));
    try {
      const r = await request<PromoteResult>('/v1/admin/promote', { method: 'POST', body: { version } });
      await renderModelsInto(main, session, '');
      main.querySelector('#models-status')?.replaceChildren(gateReport(r, false));
    } catch (err) {
      const result =
        err instanceof ApiError ? (err.body as { result?: PromoteResult | null } | null)?.result : null;
      status.replaceChildren(result ? gateReport(result, true) : errorBox(err));
    }
  };

  const actions = (version: string) =>
    version === served
      ? ''
      : h(
          'span',
          { class: 'actions' },
          h(
            'button',
            { type: 'button', class: 'admin', 'data-promote': version, title: 'Through the promotion gate' },
            `Promote v${version}`,
          ),
          h(
            'button',
            { type: 'button', class: 'admin', 'data-version': version, title: 'Roll back, no gate' },
            `Serve v${version}`,
          ),
        );
  const columns = keyMetrics(models.versions);
  const versions = h(
    'table',
    { id: 'models-table', class: 'compact' },
    h('caption', {}, `${models.name}: the API serves '${models.servedAlias}' = version ${served ?? 'none'}`),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...[
          'Version',
          'Alias',
          'Created',
          ...columns.map((c) => c.label),
          'Why',
          ...(isAdmin ? ['Action'] : []),
        ].map((x, i) =>
          h('th', { scope: 'col', class: i >= 3 && i < 3 + columns.length ? 'num' : undefined }, x),
        ),
      ),
    ),
    h(
      'tbody',
      {},
      ...models.versions.map((v) =>
        h(
          'tr',
          {},
          h('td', {}, h('strong', {}, v.version)),
          h('td', {}, v.aliases.join(', ') || '—'),
          h('td', { title: v.created ?? '', class: 'nowrap' }, created(v.created)),
          ...columns.map((c) => h('td', { class: 'num' }, formatMetric(v.metrics[c.key]))),
          h('td', { class: 'why' }, clipped(v.tags[`driftwood.${models.servedAlias}_reason`] ?? '')),
          ...(isAdmin ? [h('td', {}, actions(v.version))] : []),
        ),
      ),
    ),
  );
  for (const b of versions.querySelectorAll<HTMLButtonElement>('button[data-version]'))
    b.addEventListener('click', () =>
      act(
        { version: b.dataset.version ?? '' },
        `Make version ${b.dataset.version} the ${models.servedAlias}? The move is audited.`,
      ),
    );

  for (const b of versions.querySelectorAll<HTMLButtonElement>('button[data-promote]'))
    b.addEventListener('click', () => promote(b.dataset.promote ?? ''));

  const controls: HTMLElement[] = [];
  if (isAdmin) {
    const back = h(
      'button',
      { type: 'button', class: 'admin', id: 'rollback' },
      `Roll back ${models.servedAlias}`,
    );
    back.addEventListener('click', () =>
      act({}, `Roll '${models.servedAlias}' back to the version that held it before the last move?`),
    );
    controls.push(h('p', {}, back, ' moves the alias to its previous holder (the target must load first).'));
  }

  const history = models.history.length
    ? table(
        ['When', 'Alias', 'Action', 'Version', 'Previous', 'By', 'Why'],
        models.history.map((e) => [e.at, e.alias, e.action, e.version, e.previous ?? '—', e.by, e.reason]),
      )
    : empty(
        'No alias move has been recorded by Driftwood yet (aliases set outside `driftwood promote` leave no trail).',
      );
  history.id = 'models-history';

  const plots = await curvesSection(models);
  const compare = compareSection(models);

  main.append(
    section('Versions', status, ...controls, versions),
    section('Promotion history', history),
    section('Holdout plots', plots),
    section('Compare versions', compare),
  );
};

async function renderModelsInto(main: HTMLElement, session: Parameters<Page>[1], message: string) {
  const title = main.querySelector('h1');
  main.replaceChildren(...(title ? [title] : []));
  await renderModels(main, session);
  main.querySelector('#models-status')?.replaceChildren(h('p', { class: 'ok', role: 'status' }, message));
}

/** A gate's reason lists every check: the cell shows its start, the whole text on hover. */
function clipped(text: string, max = 70): HTMLElement | string {
  return text.length <= max ? text : h('span', { title: text }, `${text.slice(0, max - 1)}…`);
}

/** When a version was registered, in UTC to the minute (the full timestamp on hover). */
function created(iso: string | null): string {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : '—';
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(
  tag: string,
  attrs: Record<string, string | number>,
  ...children: (Node | string)[]
): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

const COLOURS = { candidate: '#1f6feb', champion: '#c2410c' } as const;

/**
 * One chart with every series of an evaluation drawn over the other: axes, a reference line (the
 * diagonal for ROC, the positive rate for PR) and a legend naming each version and its AUC.
 */
function overlay(
  id: string,
  title: string,
  axes: [string, string],
  curves: Curves,
  pick: (s: Curves['series'][number]) => { points: [number, number][]; auc: number | null },
  reference: [number, number][],
): HTMLElement {
  const { width, height, pad } = PLOT;
  const grid: SVGElement[] = [];
  for (const t of [0, 0.5, 1]) {
    const [x0, y0] = toPixels([t, 0]);
    const [x1, y1] = toPixels([0, t]);
    grid.push(svg('line', { x1: x0, y1: y0, x2: x0, y2: pad, class: 'grid' }));
    grid.push(svg('line', { x1: pad, y1, x2: width - pad, y2: y1, class: 'grid' }));
    grid.push(svg('text', { x: x0, y: height - pad + 14, 'text-anchor': 'middle' }, String(t)));
    grid.push(svg('text', { x: x1 - 6, y: y1 + 4, 'text-anchor': 'end' }, String(t)));
  }
  const series = curves.series.map((s) =>
    svg('path', {
      d: pathData(pick(s).points),
      class: 'series',
      stroke: COLOURS[s.role],
      'data-version': s.version,
      'data-role': s.role,
    }),
  );
  const chart = svg(
    'svg',
    { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title, id },
    svg('title', {}, title),
    ...grid,
    svg('path', { d: pathData(reference), class: 'reference' }),
    ...series,
    svg('text', { x: width / 2, y: height - 6, 'text-anchor': 'middle' }, axes[0]),
    svg(
      'text',
      { x: 12, y: height / 2, 'text-anchor': 'middle', transform: `rotate(-90 12 ${height / 2})` },
      axes[1],
    ),
  );
  const legend = h(
    'ul',
    { class: 'legend' },
    ...curves.series.map((s) =>
      h(
        'li',
        {},
        h('span', { class: 'swatch', style: `background:${COLOURS[s.role]}` }),
        `v${s.version} (${s.role === 'candidate' ? 'challenger' : curves.alias}) · AUC ${formatMetric(pick(s).auc)}`,
      ),
    ),
  );
  return h('figure', { class: 'curve' }, chart, h('figcaption', {}, title), legend);
}

/**
 * The challenger's ROC and PR curves drawn over the champion's, both scored on the challenger's
 * holdout by `driftwood evaluate` (the points come as data, not as one picture per version).
 */
async function curvesSection(models: Models): Promise<HTMLElement> {
  const box = h('div', { id: 'models-plots' });
  const tried = curveCandidates(
    models.versions.map((v) => v.version),
    models.aliases,
    models.servedAlias,
  );
  let curves: Curves | null = null;
  for (const version of tried) {
    curves = await request<Curves>(`/v1/models/${version}/curves`).catch((err: unknown) => {
      if (err instanceof ApiError && err.status === 404) return null;
      throw err;
    });
    if (curves) break;
  }
  if (!curves) {
    box.append(
      empty(
        tried.length
          ? `No evaluation curves for version ${tried.join(' or ')} yet: 'driftwood evaluate --version <n>' scores a version and the ${models.servedAlias} on one holdout and logs the points.`
          : 'No version to draw.',
      ),
    );
    return box;
  }
  const rate = curves.holdout.rows ? curves.holdout.positives / curves.holdout.rows : 0;
  const who = curves.series.map((s) => `v${s.version}`).join(' vs ');
  box.append(
    h(
      'p',
      { class: 'muted' },
      `${who} on the holdout of version ${curves.series[0]?.version ?? '?'} (${curves.holdout.rows} rows, ${curves.holdout.positives} positive).`,
    ),
    h(
      'div',
      { class: 'plots' },
      overlay(
        'chart-roc',
        `ROC: ${who}`,
        ['false positive rate', 'true positive rate'],
        curves,
        (s) => ({ points: s.roc, auc: s.rocAuc }),
        [
          [0, 0],
          [1, 1],
        ],
      ),
      overlay(
        'chart-pr',
        `Precision–recall: ${who}`,
        ['recall', 'precision'],
        curves,
        (s) => ({ points: s.pr, auc: s.prAuc }),
        [
          [0, rate],
          [1, rate],
        ],
      ),
    ),
  );
  return box;
}

/** Pick two versions: their metrics side by side with B − A, and the parameters that differ. */
function compareSection(models: Models): HTMLElement {
  const ids = models.versions.map((v) => v.version);
  const pair = defaultPair(ids, models.aliases, models.servedAlias);
  if (!pair) return empty('One version only: nothing to compare yet.');
  const label = (v: Models['versions'][number]) =>
    `v${v.version}${v.aliases.length ? ` (${v.aliases.join(', ')})` : ''}`;
  const picker = (id: string, selected: string) =>
    h(
      'select',
      { id },
      ...models.versions.map((v) =>
        h('option', { value: v.version, selected: v.version === selected }, label(v)),
      ),
    );
  const a = picker('diff-a', pair[0]);
  const b = picker('diff-b', pair[1]);
  const out = h('div', { id: 'models-diff' });
  const draw = () => {
    const va = models.versions.find((v) => v.version === a.value);
    const vb = models.versions.find((v) => v.version === b.value);
    if (!va || !vb) return;
    const rows = metricDiff(va.metrics, vb.metrics);
    const isKey = (k: string) => KEY_METRICS.some((m) => m.key === k);
    const metricTable = (list: typeof rows, id: string) => {
      const t = table(
        ['Metric', `v${va.version}`, `v${vb.version}`, `Δ (v${vb.version} − v${va.version})`],
        list.map((r) => [r.label, formatMetric(r.a), formatMetric(r.b), formatDelta(r.delta)]),
      );
      t.id = id;
      t.classList.add('compact');
      return t;
    };
    const key = rows.filter((r) => isKey(r.key));
    const rest = rows.filter((r) => !isKey(r.key));
    const params = paramDiff(va.params ?? {}, vb.params ?? {});
    const paramTable = params.length
      ? table(
          ['Parameter', `v${va.version}`, `v${vb.version}`],
          params.map((p) => [p.key, p.a ?? '—', p.b ?? '—']),
        )
      : empty(`v${va.version} and v${vb.version} were trained with the same parameters.`);
    paramTable.id = 'diff-params';
    out.replaceChildren(
      key.length ? metricTable(key, 'diff-metrics') : empty('Neither version logged a key metric.'),
      rest.length
        ? h(
            'details',
            {},
            h('summary', {}, `Other metrics (${rest.length})`),
            metricTable(rest, 'diff-other'),
          )
        : '',
      h('h3', {}, 'Parameters that differ'),
      paramTable,
    );
  };
  a.addEventListener('change', draw);
  b.addEventListener('change', draw);
  draw();
  return h(
    'div',
    {},
    h(
      'p',
      { class: 'pickers' },
      h('label', { for: 'diff-a' }, 'A '),
      a,
      ' ',
      h('label', { for: 'diff-b' }, 'B '),
      b,
    ),
    out,
  );
}
