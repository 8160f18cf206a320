import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import fp from 'fastify-plugin';

/**
 * The pages a browser renders (/docs, /ui) get helmet 8's default set, CSP included. They do not
 * depend on the request, so they are built once here rather than by helmet's middleware on every
 * request.
 */
const BROWSER: Readonly<Record<string, string>> = {
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

export const HTML_HEADERS = Object.freeze({ 'content-security-policy': HTML_CSP, ...BROWSER });

/**
 * The API's answers are read by programs, not rendered: the OWASP REST Security Cheat Sheet's set.
 * Helmet's other headers (COOP, CORP, Origin-Agent-Cluster, X-DNS-Prefetch-Control, …) govern how a
 * browser treats a document and its subresources, which a JSON answer is not; each header line also
 * costs the server and every client a parse per response.
 */
export const JSON_HEADERS = Object.freeze({
  'cache-control': 'no-store',
  'content-security-policy': JSON_CSP,
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
});

/** Whether a URL is one of the HTML areas (Swagger UI under /docs, the dashboard under /ui). */
export function isHtmlPath(url: string): boolean {
  const area = (prefix: string) =>
    url.startsWith(prefix) &&
    (url.length === prefix.length || url[prefix.length] === '/' || url[prefix.length] === '?');
  return area('/docs') || area('/ui');
}

/**
 * Security headers on every response that passes onRequest, 404s and errors included: helmet's
 * defaults on the HTML areas, the REST set on everything else. A route may still set its own
 * Cache-Control or CSP (Swagger UI's static files, the dashboard's assets and drift report do).
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
