import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import fp from 'fastify-plugin';

export interface GracefulCloseOptions {
  /** How often open connections are looked at while closing (ms); 100 by default. */
  sweepMs?: number;
  /** How long a connection must have been idle, while closing, before it is ended (ms); 2 s by default. */
  idleMs?: number;
}

/** The response a connection is writing, as Node's http server keeps it on the socket. */
type HttpSocket = Socket & {
  _httpMessage?: {
    headersSent: boolean;
    writableEnded: boolean;
    setHeader(n: string, v: string): void;
  } | null;
};

/**
 * Closes keep-alive connections without losing a request. Node's `server.close()` destroys every
 * connection it sees as idle at that instant, including one whose client has already written its
 * next request that the event loop has not read yet: that request is reset. Here, on close:
 * - no connection is destroyed at once (`closeIdleConnections` is replaced for the closing server);
 * - a response not yet started says `Connection: close`, and Fastify answers any request that
 *   arrives from now on with 503 and `Connection: close` (`return503OnClosing`), so a client is
 *   always told before its connection goes;
 * - a connection is ended (FIN, not RST) only once the sweeps have seen it idle for `idleMs`: no
 *   response being written and not one byte read, in time the process was running to see it. A client between two requests of a busy loop is not idle that
 *   long, even on a loaded machine (at 100 ms, starved closed-loop clients lost requests); a client
 *   idle for seconds is unlikely to be writing at that very instant, and a FIN lets it see the
 *   close rather than a reset. (Closing an idle keep-alive connection always leaves that sliver:
 *   RFC 9112 §9.3.1 has clients retry such requests.)
 * Registered before any route, so it sees every connection from the first.
 */
export const gracefulClosePlugin = fp<GracefulCloseOptions>(
  async (app, opts) => {
    const sweepMs = opts.sweepMs ?? 100;
    const idleMs = opts.idleMs ?? 2_000;
    const sockets = new Set<HttpSocket>();
    app.server.on('connection', (socket: HttpSocket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    app.addHook('preClose', (done) => {
      const server: Server = app.server;
      if (!server.listening) return done();
      server.closeIdleConnections = () => undefined;
      for (const socket of sockets) {
        const res = socket._httpMessage;
        if (res && !res.headersSent) res.setHeader('connection', 'close');
      }
      /** Each connection's bytes read when last seen active, and how long it has been seen idle. */
      const seen = new Map<HttpSocket, { bytesRead: number; idleMs: number }>();
      let lastSweep = Date.now();
      const sweep = () => {
        const now = Date.now();
        const gap = now - lastSweep;
        lastSweep = now;
        // Idle time is what the sweeps saw, not the wall clock: a process starved or paused for
        // seconds (a loaded machine) has not read what its clients wrote meanwhile, and a late
        // sweep runs before the loop polls the sockets. So a late sweep adds at most two periods
        // and ends nothing; the next one comes after the loop has read what arrived.
        const late = gap > 2 * sweepMs;
        const step = Math.min(gap, 2 * sweepMs);
        for (const socket of sockets) {
          const res = socket._httpMessage;
          const busy = (res != null && !res.writableEnded) || socket.readableLength > 0;
          const last = seen.get(socket);
          if (busy || last === undefined || last.bytesRead !== socket.bytesRead)
            seen.set(socket, { bytesRead: socket.bytesRead, idleMs: 0 });
          else {
            last.idleMs += step;
            if (late || last.idleMs < idleMs) continue;
            seen.delete(socket);
            sockets.delete(socket);
            socket.end();
            // A client that never closes its side is not waited for.
            setTimeout(() => socket.destroy(), 1_000).unref();
          }
        }
      };
      const timer = setInterval(sweep, sweepMs).unref();
      sweep();
      server.once('close', () => clearInterval(timer));
      done();
    });
  },
  { name: 'driftwood-graceful-close' },
);
