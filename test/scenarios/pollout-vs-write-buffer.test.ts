import t from "tap";
import { fillSendBuffer, SKB_OVERHEAD_BYTES } from "../../src/model/queues.js";
import { runScenario } from "../../src/runner/run-scenario.js";
import { scenario } from "../../src/scenarios/pollout-vs-write-buffer.js";

t.test(
  "POLLOUT vs write buffer: 1A fills SO_SNDBUF, 1B stops at two thirds, TCP_NOTSENT_LOWAT halves 1B",
  async (t) => {
    const r = await runScenario(scenario, { trace: true });
    t.equal(r.verdict, "pass", r.reason ?? "passed");
    const check = (label: string) => r.checks.find((c) => c.label === label);
    const bytes = (name: string) => r.observations[`${name}: bytes queued`]?.value as number;
    const sndbuf = r.observations["1A: sk_sndbuf"]?.value as number;
    const goal = r.observations["1A: size goal (model)"]?.value as number;
    t.equal(sndbuf, 262_144, "SO_SNDBUF 131072 doubled");
    const overhead = r.observations["skb overhead in sk_wmem_queued (measured: 1 byte queued, ss -m w - 1)"]?.value;
    t.equal(overhead, SKB_OVERHEAD_BYTES, "one byte queued makes sk_wmem_queued 833 on the host's build");
    t.equal(goal, 65_160, "45 segments of 1448: the GSO limit");
    // 1A: EAGAIN once sk_wmem_queued reached sk_sndbuf at an skb boundary: four full skbs.
    t.equal(bytes("1A"), 4 * goal);
    t.equal(check("1A: sk_wmem_queued at the stop (ss -m w)")?.observed, String(4 * goal + 4 * SKB_OVERHEAD_BYTES));
    t.match(check("1A: what each send returned")?.observed ?? "", /,EAGAIN$/);
    // 1B: stops when sk_wmem_queued passes two thirds of sk_sndbuf.
    t.equal(bytes("1B"), 11 * 16_384);
    const w = Number(check("1B: sk_wmem_queued at the stop (ss -m w)")?.observed);
    t.ok(
      w * 3 > sndbuf * 2 && (w - 16_384) * 3 <= sndbuf * 2,
      `1B stopped at sk_wmem_queued ${w}, just past 2/3 of ${sndbuf}`,
    );
    t.equal(r.observations["1B / 1A"]?.value, 0.691);
    // SIOCOUTQ and SIOCOUTQNSD: the window is closed, so everything queued is unsent.
    t.equal(check("1A: SIOCOUTQNSD at the stop")?.observed, `${bytes("1A")} bytes`);
    t.equal(check("1B: SIOCOUTQ at the stop")?.observed, `${bytes("1B")} bytes`);
    // TCP_NOTSENT_LOWAT 131072: send goes to the first skb boundary past the mark, poll to half of it.
    t.equal(bytes("1A with TCP_NOTSENT_LOWAT"), 3 * goal);
    t.equal(bytes("1B with TCP_NOTSENT_LOWAT"), 131_072 / 2);
    t.equal(check("1B with TCP_NOTSENT_LOWAT: stopped with a third of the buffer still free")?.pass, true);
    // The model agrees with itself on a different buffer: a wrong rule would move these.
    t.equal(
      fillSendBuffer({
        program: "while-POLLOUT",
        sndbuf: 262_144,
        chunk: 16_384,
        sizeGoal: 65_160,
        skbOverhead: SKB_OVERHEAD_BYTES,
      }).bytes,
      bytes("1B"),
    );
  },
);
