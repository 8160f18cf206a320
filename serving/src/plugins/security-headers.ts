import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Helmet 8's default headers, less its Content-Security-Policy. They do not depend on the request,
 * so they are built once here rather than by helmet's middleware on every request.
 */
const COMMON: Readonly<Record<string, string>> = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'SAMEORIGIN',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0',
};

/** Helmet 8's default policy, for the pages a browser renders (/docs, /ui). */
export const HTML_CSP =
  "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';" +
  "frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';" +
  "script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests";

/** A JSON answer loads nothing and is never framed: the strictest policy there is. */
export const JSON_CSP = "default-src 'none'; frame-ancestors 'none'";

export const HTML_HEADERS = Object.freeze({ 'content-security-policy': HTML_CSP, ...COMMON });
export const JSON_HEADERS = Object.freeze({ 'content-security-policy': JSON_CSP, ...COMMON });

/** Whether a URL is one of the HTML areas (Swagger UI under /docs, the dashboard under /ui). */
export function isHtmlPath(url: string): boolean {
  const area = (prefix: string) =>
    url.startsWith(prefix) &&
    (url.length === prefix.length || url[prefix.length] === '/' || url[prefix.length] === '?');
  return area('/docs') || area('/ui');
}

/**
 * Security headers on every response that passes onRequest, 404s and errors included: helmet's
 * defaults everywhere, with helmet's CSP on the HTML areas and a deny-all CSP on JSON routes.
 * A route may still set its own CSP (Swagger UI's static files do).
 */
export const securityHeadersPlugin = fp(
  async (app) => {
    app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
      reply.headers(isHtmlPath(req.url) ? HTML_HEADERS : JSON_HEADERS);
      done();
    });
  },
  { name: 'driftwood-security-headers' },
);
