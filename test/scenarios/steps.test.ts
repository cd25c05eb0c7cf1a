// The shared steps' own evidence: when a row left the table, and a host's TcpExt counters.
import t from "tap";
import { rowGone, SPARSE_LOOK_MS, tcpExtCounter } from "../../src/scenarios/steps.js";
import { withLab } from "../helpers/lab.js";

t.test("rowGone brackets a departure from the caller's last sighting to the look that missed it", async (t) => {
  const lab = await withLab(t, { name: "rowgone" });
  const kodos = await lab.addHost("kodos");
  const now = () => lab.transcript.nowUs();
  const listening = (port: number) => (r: { state: string; local: { port: number } }) =>
    r.state === "LISTEN" && r.local.port === port;

  // Gone before the first look: the bracket opens where the caller last saw it, not at the call.
  const early = await kodos.listen(8081);
  const seenUs = now();
  await early.close();
  const closedUs = now();
  await new Promise((r) => setTimeout(r, 300));
  const g1 = await rowGone(kodos, listening(8081), 2000, now, { seenUs });
  t.ok(g1.cleared);
  t.ok(Math.abs(g1.atUs - g1.uncertaintyUs - seenUs) < 1, "from the last sighting");
  t.ok(g1.atUs + g1.uncertaintyUs >= closedUs, "to the look that missed it, after the close");
  t.ok(
    g1.uncertaintyUs >= (300 / 2) * 1000,
    `half the 300 ms before the look is in the uncertainty: ${g1.uncertaintyUs} µs`,
  );

  // Gone while watched sparsely: the close lies in the bracket, which is one sparse gap wide at most.
  const late = await kodos.listen(8082);
  const startUs = now();
  const watching = rowGone(kodos, listening(8082), 5000, now, { seenUs: startUs, sparseUntilUs: startUs + 10e6 });
  await new Promise((r) => setTimeout(r, 700));
  const fromUs = now();
  await late.close();
  const toUs = now();
  const g2 = await watching;
  t.ok(g2.cleared);
  t.ok(g2.atUs - g2.uncertaintyUs <= toUs && g2.atUs + g2.uncertaintyUs >= fromUs, "the close lies in the bracket");
  t.ok(g2.atUs - g2.uncertaintyUs > startUs, "looks before the close narrowed it");
  // Half of one sparse gap plus the looks either side of it (each well under 150 ms here).
  t.ok(g2.uncertaintyUs < (SPARSE_LOOK_MS + 300) * 1000, `one sparse gap and a look at most: ${g2.uncertaintyUs} µs`);

  // Never gone: bounded, and says so.
  await kodos.listen(8083);
  const g3 = await rowGone(kodos, listening(8083), 100, now, { seenUs: now() });
  t.notOk(g3.cleared);
});

t.test("tcpExtCounter reads the host's own namespace and names a counter it lacks", async (t) => {
  const lab = await withLab(t, { name: "tcpext" });
  const [kang, kodos] = await Promise.all([lab.addHost("kang"), lab.addHost("kodos")]);
  const l = await kodos.listen(8080, { backlog: 0 });
  const before = await tcpExtCounter(kodos, "ListenOverflows");
  t.equal(before, 0, "a new host has dropped nothing");
  // listen(0) holds one connection: the second's SYN meets a full queue.
  await kang.connect(kodos.ipv4, 8080, { timeoutMs: 1000 });
  const stuck = await kang.socket();
  await stuck.connect(kodos.ipv4, 8080).catch(() => {});
  const after = await (async () => {
    for (const deadline = Date.now() + 2000; ; ) {
      const n = await tcpExtCounter(kodos, "ListenOverflows");
      if (n > 0 || Date.now() > deadline) return n;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  t.equal(after, 1, "kodos counted the SYN it dropped");
  t.equal(await tcpExtCounter(kang, "ListenOverflows"), 0, "kang, another namespace, counted nothing");
  await t.rejects(tcpExtCounter(kodos, "NoSuchCounter"), /TcpExt NoSuchCounter on kodos: .*no such counter/);
  await l.close();
});
