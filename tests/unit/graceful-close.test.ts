import net from 'node:net';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { gracefulClosePlugin } from '../../serving/src/plugins/graceful-close.js';

const request = 'GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n';

/** Keeps the event loop busy for `ms`, as a starved or paused process would be. */
function standStill(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until);
}

/** A keep-alive client on a raw socket: what it has read, and whether the server ended it. */
async function connect(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const state = { text: '', ended: false };
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    state.text += chunk;
  });
  socket.on('end', () => {
    state.ended = true;
  });
  const answers = () => state.text.split('HTTP/1.1 ').length - 1;
  const waitFor = async (check: () => boolean) => {
    while (!check()) await new Promise((r) => setTimeout(r, 10));
  };
  return { socket, state, answers, waitFor };
}

/**
 * The close sweep ends a keep-alive connection once it has been idle for `idleMs`. A process that
 * stood still for longer than that (a starved worker on a loaded machine) has not read what its
 * clients wrote meanwhile, and its first timer after the pause runs before it reads the sockets: a
 * sweep that counted the wall clock ended those connections with a request unread, which the client
 * saw as a reset. Client and server share this process here, so the pause is exact.
 */
describe('graceful close across a pause of the process', () => {
  let close: (() => Promise<unknown>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  async function start() {
    const app = Fastify();
    await app.register(gracefulClosePlugin, { sweepMs: 20, idleMs: 200 });
    app.get('/ping', async () => ({ ok: true }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address() as net.AddressInfo;
    return { app, port: address.port };
  }

  it('answers a request written during the pause instead of ending its connection', async () => {
    const { app, port } = await start();
    const client = await connect(port);
    client.socket.write(request);
    await client.waitFor(() => client.answers() === 1);
    const closed = app.close();
    close = () => closed;
    // Seen idle for a while by the sweeps, but not for idleMs.
    await new Promise((r) => setTimeout(r, 60));
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        // The request reaches the server's socket at once; the process then stands still for
        // longer than idleMs, and the sweep due meanwhile runs before the socket is read.
        client.socket.write(request);
        standStill(600);
        resolve();
      }, 0),
    );
    await client.waitFor(() => client.state.ended);
    expect(client.answers()).toBe(2);
    expect(client.state.text).toMatch(/HTTP\/1\.1 503[\s\S]*connection: close/i);
    await closed;
  });

  it('answers a connection opened while the others drain with 503 and Connection: close', async () => {
    const { app, port } = await start();
    const open = await connect(port);
    open.socket.write(request);
    await open.waitFor(() => open.answers() === 1);
    const closed = app.close();
    close = () => closed;
    // A client told to close opens a new connection at once: the listener still takes it.
    const late = await connect(port);
    late.socket.write(request);
    await late.waitFor(() => late.state.ended);
    expect(late.answers()).toBe(1);
    expect(late.state.text).toMatch(/^HTTP\/1\.1 503[\s\S]*connection: close/i);
    await open.waitFor(() => open.state.ended);
    open.socket.end();
    await closed;
    // Drained, the listener is closed: a connection now is refused.
    const refused = await new Promise<string>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => resolve('connected'));
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    expect(refused).toBe('ECONNREFUSED');
  });

  it('still ends a connection the sweeps saw idle for idleMs', async () => {
    const { app, port } = await start();
    const client = await connect(port);
    client.socket.write(request);
    await client.waitFor(() => client.answers() === 1);
    const closed = app.close();
    close = () => closed;
    await client.waitFor(() => client.state.ended);
    client.socket.end();
    await closed;
    expect(client.answers()).toBe(1);
  });
});
