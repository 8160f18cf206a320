import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import fp from 'fastify-plugin';

export interface GracefulCloseOptions {
  /** How often open connections are looked at while closing (ms); 100 by default. */
  sweepMs?: number;
  /** How long a connection must have been idle, while closing, before it is ended (ms); 2 s by default. */
  idleMs?: number;
  /** How long the listener stays open for the connections to drain before it closes (ms); idleMs + 2 s by default. */
  drainMs?: number;
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
 * - a connection is ended (FIN, not RST) only once the sweeps have seen it idle for `idleMs` (no
 *   response being written, not one byte read; time the process stood still does not count, and
 *   the last look is taken after the loop has read the sockets). A client between two requests of
 *   a busy loop is not idle that long, even on a loaded machine; a client idle for seconds is
 *   unlikely to be writing at that very instant, and a FIN lets it see the close rather than a
 *   reset. (Closing an idle keep-alive connection always leaves that sliver: RFC 9112 §9.3.1 has
 *   clients retry such requests.)
 * - the listener closes only once the connections are gone (at most `drainMs`): new connections
 *   meanwhile are answered 503 with `Connection: close`, not reset in the listener's backlog.
 * Registered before any route, so it sees every connection from the first.
 */
export const gracefulClosePlugin = fp<GracefulCloseOptions>(
  async (app, opts) => {
    const sweepMs = opts.sweepMs ?? 100;
    const idleMs = opts.idleMs ?? 2_000;
    const drainMs = opts.drainMs ?? idleMs + 2_000;
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
      const busy = (socket: HttpSocket) => {
        const res = socket._httpMessage;
        return (res != null && !res.writableEnded) || socket.readableLength > 0;
      };
      /** Each connection's bytes read when last seen active, and how long it has been seen idle. */
      const seen = new Map<HttpSocket, { bytesRead: number; idleMs: number }>();
      const judging = new Set<HttpSocket>();
      const end = (socket: HttpSocket) => {
        seen.delete(socket);
        sockets.delete(socket);
        socket.end();
        // A client that never closes its side is not waited for.
        setTimeout(() => socket.destroy(), 1_000).unref();
      };
      let lastSweep = Date.now();
      const sweep = () => {
        const now = Date.now();
        // Idle time is what the sweeps saw, not the wall clock: a process starved or paused for
        // seconds (a loaded machine) has not read what its clients wrote meanwhile, so a late sweep
        // adds at most two periods.
        const step = Math.min(now - lastSweep, 2 * sweepMs);
        lastSweep = now;
        for (const socket of sockets) {
          const last = seen.get(socket);
          if (busy(socket) || last === undefined || last.bytesRead !== socket.bytesRead) {
            seen.set(socket, { bytesRead: socket.bytesRead, idleMs: 0 });
            continue;
          }
          last.idleMs += step;
          if (last.idleMs < idleMs || judging.has(socket)) continue;
          // Timers run before the loop polls the sockets: what a client wrote during a pause is
          // not read yet. The last look is taken after the poll (setImmediate), not here.
          judging.add(socket);
          const bytesRead = socket.bytesRead;
          setImmediate(() => {
            judging.delete(socket);
            if (socket.destroyed) return;
            if (busy(socket) || socket.bytesRead !== bytesRead)
              seen.set(socket, { bytesRead: socket.bytesRead, idleMs: 0 });
            else end(socket);
          });
        }
      };
      // The listener stays open until the connections are gone (or drainMs): a client whose
      // connection was just told to close opens a new one at once, and a connection still in the
      // listener's backlog when it closes is reset by the kernel. Opened now, it is answered
      // 503 with `Connection: close` (return503OnClosing) instead.
      const started = Date.now();
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        done();
      };
      const timer = setInterval(() => {
        sweep();
        if (sockets.size === 0 || Date.now() - started >= drainMs) release();
      }, sweepMs).unref();
      sweep();
      server.once('close', () => clearInterval(timer));
      if (sockets.size === 0) release();
    });
  },
  { name: 'driftwood-graceful-close' },
);
