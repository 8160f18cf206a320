import { ApiError, type Explanation, type Inputs, type Prediction, request } from '../api.js';
import { errorBox, h, section } from '../dom.js';
import { formatRange, formatValue, typicalRange } from '../figures.js';
import type { Page } from './page.js';

/** The form is generated from the served model's input fields (`GET /v1/inputs`). */
export const renderPredict: Page = async (main) => {
  const inputs = await request<Inputs>('/v1/inputs');
  const fields: HTMLElement[] = [
    h(
      'p',
      { class: 'muted' },
      `Model ${inputs.model.name} v${inputs.model.version} (${inputs.model.alias}). Empty numeric fields are imputed with the training median.`,
    ),
  ];
  fields.push(
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'f-customer_id' }, 'customer_id (optional)'),
      h('input', { id: 'f-customer_id', name: 'customer_id', maxlength: 64 }),
    ),
  );
  for (const n of inputs.numeric) {
    const r = typicalRange(n, inputs.scaling);
    fields.push(
      h(
        'div',
        { class: 'field' },
        h('label', { for: `f-${n.name}` }, n.name),
        h('input', {
          id: `f-${n.name}`,
          name: n.name,
          inputmode: 'decimal',
          placeholder: `median ${formatValue(n.median, r.whole)}`,
          'aria-describedby': `d-${n.name}`,
        }),
        h(
          'small',
          { id: `d-${n.name}` },
          `typical ${formatRange(r.low, r.high, r.whole)}`,
          n.min !== undefined && n.max !== undefined
            ? ` (trained on ${formatRange(n.min, n.max, r.whole)})`
            : '',
        ),
      ),
    );
  }
  for (const c of inputs.categorical) {
    const select = h('select', { id: `f-${c.name}`, name: c.name });
    for (const v of c.values) select.append(h('option', { value: v, selected: v === c.default }, v));
    select.append(h('option', { value: '' }, '(other / unseen value)'));
    fields.push(h('div', { class: 'field' }, h('label', { for: `f-${c.name}` }, c.name), select));
  }
  const form = h(
    'form',
    { id: 'predict-form', novalidate: true },
    ...fields,
    h('button', { type: 'submit' }, 'Predict'),
  );
  const result = h('div', { id: 'predict-result', 'aria-live': 'polite' });
  main.append(section('Customer', form), section('Answer', result));

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    // Values go to the API as typed (numbers when they parse): the API's validation is the one that counts.
    const body: Record<string, unknown> = {};
    for (const el of form.querySelectorAll<HTMLInputElement | HTMLSelectElement>('input, select')) {
      const v = el.value.trim();
      if (v === '') {
        if (el instanceof HTMLSelectElement) body[el.name] = 'unseen';
        continue;
      }
      const isNumeric = inputs.numeric.some((n) => n.name === el.name);
      body[el.name] = isNumeric && v !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
    }
    result.replaceChildren(h('p', {}, 'Scoring…'));
    try {
      const [p, x] = await Promise.all([
        request<Prediction>('/v1/predict', { method: 'POST', body }),
        request<Explanation>('/v1/explain', { method: 'POST', body }),
      ]);
      result.replaceChildren(answer(p, x));
    } catch (err) {
      result.replaceChildren(
        err instanceof ApiError && err.status === 400
          ? h(
              'p',
              { class: 'error', role: 'alert', id: 'predict-error' },
              `The API refused the input: ${err.message}`,
            )
          : errorBox(err),
      );
    }
  });
};

function answer(p: Prediction, x: Explanation): HTMLElement {
  const max = Math.max(1e-9, ...x.contributions.map((c) => Math.abs(c.contribution)));
  const bars = x.contributions.map((c) => {
    const width = `${(Math.abs(c.contribution) / max) * 50}%`;
    const up = c.contribution >= 0;
    return h(
      'li',
      { class: 'contrib' },
      h('span', { class: 'name' }, `${c.feature} = ${String(c.value)}`),
      h(
        'span',
        { class: 'track', 'aria-hidden': 'true' },
        h('span', { class: up ? 'bar up' : 'bar down', style: `width:${width}` }),
      ),
      h('span', { class: 'num' }, `${up ? '+' : '−'}${Math.abs(c.contribution).toFixed(3)}`),
    );
  });
  return h(
    'div',
    {},
    h(
      'p',
      { class: 'big', id: 'predict-probability' },
      `Probability ${(p.probability * 100).toFixed(1)} % — ${p.label === 1 ? 'positive (1)' : 'negative (0)'}`,
    ),
    h(
      'p',
      { id: 'predict-model' },
      `Answered by ${p.model.name} version ${p.model.version} (${p.model.alias})`,
    ),
    h('h3', {}, 'What pushed it up (+) or down (−)'),
    h('p', { class: 'muted' }, `Method: ${x.method}.`),
    h('ol', { class: 'contribs', id: 'predict-contributions' }, ...bars),
    x.imputed?.length
      ? h(
          'p',
          { class: 'imputed', id: 'predict-imputed' },
          `Left empty, so imputed with the training default and moving nothing: ${x.imputed.join(', ')}.`,
        )
      : '',
  );
}
