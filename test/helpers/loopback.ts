// A fresh network namespace per test, with a connected pair on its loopback.
import type { Test } from "tap";
import { Netns, Socket, type SocketOptions, Transcript } from "../../src/sys/index.js";

/** What a test gets: the namespace, a listener, and both ends of one connection. */
export interface Loopback {
  ns: Netns;
  transcript: Transcript;
  listener: Socket;
  client: Socket;
  server: Socket;
  port: number;
  address: string;
  open(options?: Partial<SocketOptions>): Socket;
}

/** Builds a namespace whose sockets are all closed, and the namespace released, when the test ends. */
export async function loopback(t: Test, family: "IPv4" | "IPv6" = "IPv4"): Promise<Loopback> {
  const ns = Netns.create();
  const transcript = new Transcript();
  const sockets: Socket[] = [];
  const open = (options: Partial<SocketOptions> = {}) => {
    const s = Socket.create({ netns: ns, family, transcript, ...options });
    sockets.push(s);
    return s;
  };
  t.teardown(() => {
    for (const s of sockets) if (!s.closed) s.close();
    ns.close();
  });
  const address = family === "IPv6" ? "::1" : "127.0.0.1";
  const listener = open({ host: "kodos" }).bind(address, 0).listen(4);
  const port = listener.localAddress().port;
  const client = open({ host: "kang" });
  await client.connectAsync(address, port, { timeoutMs: 2000 });
  const server = await listener.acceptAsync({ timeoutMs: 2000 });
  sockets.push(server);
  return { ns, transcript, listener, client, server, port, address, open };
}
