import type { Session } from '../api.js';

/** A dashboard page: renders into the main element for the signed-in session. */
export type Page = (main: HTMLElement, session: Session) => Promise<void>;
