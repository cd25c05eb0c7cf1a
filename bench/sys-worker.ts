// Runs inside a namespace (started through nsenter, as the Python side is) and prints its figures.
import { Netns, Socket } from "../src/sys/index.js";

function getsockoptNs(n: number): number {
  const s = Socket.create();
  for (let i = 0; i < 10_000; i++) s.getOption("TCP_NODELAY");
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) s.getOption("TCP_NODELAY");
  const t1 = process.hrtime.bigint();
  s.close();
  return Number(t1 - t0) / n;
}

// connect, accept, close the server side first, close the client: the seed 004 (004_41db9c39b506eeca.txt) program 2A loop.
async function connectAcceptCloseNs(n: number, netns?: Netns): Promise<number> {
  const at = netns ? { netns } : {};
  const listener = Socket.create(at).bind("127.0.0.1", 0).listen(16);
  const { port } = listener.localAddress();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const c = Socket.create(at);
    await c.connectAsync("127.0.0.1", port, { timeoutMs: 2000 });
    const sc = await listener.acceptAsync({ timeoutMs: 2000 });
    sc.close();
    c.close();
  }
  const t1 = process.hrtime.bigint();
  listener.close();
  return Number(t1 - t0) / n;
}

const [calls = 200_000, loops = 5_000] = process.argv.slice(2).map(Number);
const other = Netns.create();
const result = {
  getsockopt: getsockoptNs(calls),
  connectAcceptClose: await connectAcceptCloseNs(loops),
  connectAcceptCloseAt: await connectAcceptCloseNs(loops, other),
};
other.close();
console.log(JSON.stringify(result));
