import { ApiError, request } from '../api.js';
import { badge, empty, errorBox, h, section, table } from '../dom.js';
import {
  actionLine,
  decisionLine,
  type ExperimentView,
  VARIANT_HEADERS,
  variantRows,
} from '../experiments.js';

/** The A/B experiments panel of the Monitoring page: the running one first, then the latest ended. */
export async function experimentsPanel(): Promise<HTMLElement> {
  let list: ExperimentView[];
  try {
    list = (await request<{ experiments: ExperimentView[] }>('/v1/experiments')).experiments;
  } catch (err) {
    // The rest of the page stands without it: the panel says what went wrong.
    return section(
      'A/B experiments',
      err instanceof ApiError && err.status === 404
        ? empty('This API serves no experiments.')
        : errorBox(err),
    );
  }
  if (list.length === 0)
    return section(
      'A/B experiments',
      empty('No experiment declared (PUT /v1/admin/experiments/<name>, see docs/experiments.md).'),
    );
  const shown = [
    ...list.filter((e) => e.status === 'running'),
    ...list.filter((e) => e.status !== 'running'),
  ].slice(0, 3);
  return section(
    'A/B experiments',
    ...shown.map((e) => {
      const d = decisionLine(e);
      const act = actionLine(e);
      return h(
        'div',
        { class: 'experiment', 'data-experiment': e.name },
        h('h3', {}, `${e.name} on ${e.dataset} `, badge(e.status, e.status === 'running' ? 'busy' : 'idle')),
        h(
          'p',
          {},
          `Since ${e.started_at.slice(0, 16).replace('T', ' ')} UTC · primary metric ${e.declaration.primary_metric} · α = ${e.declaration.alpha} · at least ${e.declaration.minimum_sample} labelled customers per variant`,
        ),
        h('p', { class: 'decision', role: 'status' }, badge('decision', d.tone), ' ', d.text),
        act &&
          h(
            'p',
            { class: 'action', 'data-action': e.action ?? 'none' },
            badge(act.badge, act.tone),
            ' ',
            act.text,
          ),
        table(
          VARIANT_HEADERS,
          variantRows(e),
          'Intervals: 95% per variant; the difference is the always-valid confidence sequence',
        ),
      );
    }),
  );
}
