import { image, type Models, request } from '../api.js';
import { age, empty, errorBox, fmt, h, section, table } from '../dom.js';
import type { Page } from '../main.js';

/** Versions side by side, the promotion history from the audit trail, and (admins only) rollback. */
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

  const rows = models.versions.map((v) => [
    h('strong', {}, v.version),
    v.aliases.join(', ') || '—',
    age(v.created),
    ...metricKeys.map((k) => fmt(v.metrics[k])),
    v.tags[`driftwood.${models.servedAlias}_reason`] ?? '',
    isAdmin && v.version !== served
      ? h('button', { type: 'button', class: 'admin', 'data-version': v.version }, `Serve v${v.version}`)
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
    section('Versions', status, ...controls, versions),
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
