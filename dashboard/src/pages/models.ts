import { ApiError, image, type Models, type PromoteResult, request } from '../api.js';
import { age, badge, empty, errorBox, fmt, h, section, table } from '../dom.js';
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
  const metricKeys = [...new Set(models.versions.flatMap((v) => Object.keys(v.metrics)))].sort();
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

  const rows = models.versions.map((v) => [
    h('strong', {}, v.version),
    v.aliases.join(', ') || '—',
    age(v.created),
    ...metricKeys.map((k) => fmt(v.metrics[k])),
    clipped(v.tags[`driftwood.${models.servedAlias}_reason`] ?? ''),
    isAdmin && v.version !== served
      ? h(
          'span',
          {},
          h(
            'button',
            {
              type: 'button',
              class: 'admin',
              'data-promote': v.version,
              title: 'Through the promotion gate',
            },
            `Promote v${v.version}`,
          ),
          ' ',
          h(
            'button',
            { type: 'button', class: 'admin', 'data-version': v.version, title: 'Roll back, no gate' },
            `Serve v${v.version}`,
          ),
        )
      : '',
  ]);
  const versions = table(
    ['Version', 'Aliases', 'Age', ...metricKeys, 'Why', isAdmin ? 'Action' : ''],
    rows,
    `${models.name}: the API serves '${models.servedAlias}' = version ${served ?? 'none'}`,
  );
  versions.id = 'models-table';
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

  // ROC and PR plots of the newest versions, side by side (from each version's MLflow run).
  const shown = models.versions.slice(0, 3);
  const plots = h('div', { class: 'plots', id: 'models-plots' });
  const loaded = await Promise.all(
    shown.flatMap((v) =>
      (['roc', 'pr'] as const).map(async (plot) => ({
        v: v.version,
        plot,
        src: await image(`/v1/models/${v.version}/plots/${plot}`),
      })),
    ),
  );
  for (const p of loaded)
    if (p.src)
      plots.append(
        h(
          'figure',
          {},
          h('img', { src: p.src, alt: `${p.plot.toUpperCase()} curve of version ${p.v} on its holdout` }),
          h('figcaption', {}, `v${p.v} ${p.plot.toUpperCase()}`),
        ),
      );
  if (!plots.childElementCount) plots.append(empty('No ROC/PR plot was logged with these versions.'));

  main.append(
    // Only the wide table scrolls sideways: the gate's decision above it stays in view.
    section('Versions', status, ...controls, h('div', { class: 'scroll' }, versions)),
    section('Promotion history', history),
    section('Holdout plots', plots),
  );
};

async function renderModelsInto(main: HTMLElement, session: Parameters<Page>[1], message: string) {
  const title = main.querySelector('h1');
  main.replaceChildren(...(title ? [title] : []));
  await renderModels(main, session);
  main.querySelector('#models-status')?.replaceChildren(h('p', { class: 'ok', role: 'status' }, message));
}

/** A gate's reason lists every check: the cell shows its start, the whole text on hover. */
function clipped(text: string, max = 90): HTMLElement | string {
  return text.length <= max ? text : h('span', { title: text }, `${text.slice(0, max - 1)}…`);
}
