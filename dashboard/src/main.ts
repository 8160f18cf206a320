import { ApiError, credentials, type Session, signIn, signOut, whoami } from './api.js';
import { errorBox, h } from './dom.js';
import { renderArchitecture } from './pages/architecture.js';
import { renderModels } from './pages/models.js';
import { renderOverview } from './pages/overview.js';
import type { Page } from './pages/page.js';
import { renderPredict } from './pages/predict.js';

const PAGES: Record<string, { title: string; render: Page }> = {
  overview: { title: 'Overview', render: renderOverview },
  predict: { title: 'Predict', render: renderPredict },
  models: { title: 'Models', render: renderModels },
  // chart.js is most of the bundle: loaded only when a page with charts opens.
  monitoring: {
    title: 'Monitoring',
    render: async (m, s) => (await import('./pages/monitoring.js')).renderMonitoring(m, s),
  },
  forecast: {
    title: 'Forecast',
    render: async (m, s) => (await import('./pages/forecast.js')).renderForecast(m, s),
  },
  architecture: { title: 'Architecture', render: renderArchitecture },
};

const main = document.getElementById('main') as HTMLElement;
const nav = document.getElementById('nav') as HTMLElement;
const who = document.getElementById('who') as HTMLElement;
const logout = document.getElementById('logout') as HTMLButtonElement;
let session: Session | null = null;

function showLogin(message?: string): void {
  nav.hidden = true;
  logout.hidden = true;
  who.textContent = '';
  const user = h('input', { id: 'login-user', name: 'user', autocomplete: 'username', required: true });
  const password = h('input', {
    id: 'login-password',
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const status = h('p', { role: 'alert', class: 'error' }, message ?? '');
  const form = h(
    'form',
    { class: 'card login', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Sign in to Driftwood'),
    h('label', { for: 'login-user' }, 'User'),
    user,
    h('label', { for: 'login-password' }, 'Password'),
    password,
    h('button', { type: 'submit' }, 'Sign in'),
    status,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    status.textContent = '';
    try {
      session = await signIn(user.value, password.value);
      route();
    } catch (err) {
      // An API without credentials configured says so (and how to set them): show its words.
      status.textContent =
        err instanceof ApiError && err.status === 401 && err.code !== 'auth_not_configured'
          ? 'Wrong user or password.'
          : (err as Error).message;
    }
  });
  main.replaceChildren(form);
  user.focus();
}

async function route(): Promise<void> {
  if (!credentials()) return showLogin();
  if (!session) {
    try {
      session = await whoami();
    } catch {
      signOut();
      return showLogin('Your session has ended; sign in again.');
    }
  }
  nav.hidden = false;
  logout.hidden = false;
  who.textContent = `${session.user} (${session.roles.join(', ')})`;
  const name = location.hash.replace(/^#\//, '') || 'overview';
  const page = PAGES[name] ?? PAGES.overview;
  if (!page) return;
  for (const a of nav.querySelectorAll('a'))
    a.toggleAttribute('aria-current', a.getAttribute('href') === `#/${name}`);
  document.title = `${page.title} · Driftwood`;
  main.replaceChildren(h('h1', {}, page.title));
  main.dataset.page = name;
  main.setAttribute('aria-busy', 'true');
  try {
    await page.render(main, session);
  } catch (err) {
    main.append(errorBox(err));
  } finally {
    main.setAttribute('aria-busy', 'false');
    main.dataset.ready = name;
  }
}

logout.addEventListener('click', () => {
  signOut();
  session = null;
  location.hash = '#/overview';
  showLogin();
});
window.addEventListener('hashchange', () => void route());
void route();
