import { AgentClient } from "../../src/lab/agent-client.js";
import { Netns, Transcript } from "../../src/sys/index.js";
const ns = Netns.create();
const tr = new Transcript();
const t0 = Date.now();
const a = await AgentClient.spawn(ns.path, "kodos", tr);
const b = await AgentClient.spawn(ns.path, "kang", tr);
console.log("spawned in", Date.now() - t0, await a.hello(), a.pid);
const l = await (await (await a.socket()).bind("127.0.0.1", 0)).listen(4);
console.log(l === (await a.socket()), l.fd);
const port = (await l.localAddress()).port;
const c = await b.socket();
await c.connectAsync("127.0.0.1", port, { timeoutMs: 2000 });
const s = await l.acceptAsync({ timeoutMs: 2000 });
await c.write(Buffer.from([0xff, 0, 0xfe, 0x80]));
console.log(await s.readAsync(100, { timeoutMs: 1000 }));
console.log((await s.tcpInfo()).stateName);
await c.shutdown("SHUT_WR");
console.log(await s.poll(0x2001, 1000));
try { await a.call(s, "destroy"); } catch (e) { console.log(e); }
try { await s.readAsync(10, {timeoutMs: 100}); } catch (e) { console.log(e); }
console.log(tr.format());
await a.close(); await b.close();
console.log(await a.exited, await b.exited);
ns.close();
