import t from "tap";
import { firstPassPorts, portRangeSize, twReuse } from "../../src/model/queues.js";
import { tolerance } from "../../src/model/tcp.js";
import { runScenario } from "../../src/runner/run-scenario.js";
import { scenario } from "../../src/scenarios/time-wait-symmetry.js";

t.test(
  "TIME_WAIT symmetry: 2A keeps TIME_WAIT on the server and runs on; 2B fills the client's ports and fails",
  async (t) => {
    const r = await runScenario(scenario, { trace: true });
    t.equal(r.verdict, "pass", r.reason ?? "passed");
    const check = (label: string) => r.checks.find((c) => c.label === label);
    const obs = (key: string) => r.observations[key]?.value;
    const ports = portRangeSize(40_000, 40_099);
    // 2A: more iterations than ports, TIME_WAIT only on the server's side, within the even half.
    t.equal(obs("2A, tcp_tw_reuse=0: iterations"), 2 * ports + 1);
    t.equal(obs("2A, tcp_tw_reuse=0: TIME_WAIT client side"), 0);
    const twA = obs("2A, tcp_tw_reuse=0: TIME_WAIT server side") as number;
    t.ok(
      twA > 0 && twA <= firstPassPorts(40_000, 40_099).count,
      `${twA} server-side TIME_WAITs, at most half the range`,
    );
    // 2B without reuse: one connection per port, then EADDRNOTAVAIL at once; the TIME_WAITs are the client's.
    t.equal(obs("2B, tcp_tw_reuse=0: iterations"), ports);
    t.equal(check("2B, tcp_tw_reuse=0: how the loop ended")?.observed, "EADDRNOTAVAIL");
    t.equal(obs("2B, tcp_tw_reuse=0: TIME_WAIT client side"), ports);
    t.equal(obs("2B, tcp_tw_reuse=0: TIME_WAIT server side"), 0);
    t.equal(check("2B, tcp_tw_reuse=0: connect 1500 ms after the first TIME_WAIT")?.observed, "EADDRNOTAVAIL");
    // tcp_tw_reuse 1, and 2 on 127.0.0.1: still stops (the loop outruns the delay), reuses after 1 s.
    const delayMs = twReuse(1, true).afterMs;
    for (const v of ["2B, tcp_tw_reuse=1", "2B, tcp_tw_reuse=2"]) {
      t.equal(obs(`${v}: iterations`), ports, `${v}: stopped after the range`);
      const ms = obs(`${v}: first reuse after the first TIME_WAIT`) as number;
      const refused = obs(`${v}: last refused connect() made after the first TIME_WAIT`) as number;
      // The kernel compares millisecond stamps: at most 1 ms early as we see it.
      t.ok(ms >= delayMs - 1, `${v}: first reuse ${ms} ms after the first TIME_WAIT, not before ${delayMs} ms`);
      const late = delayMs + tolerance(delayMs);
      t.ok(refused <= late, `${v}: a connect() made at ${refused} ms was still refused; none later than ${late} ms`);
    }
    // tcp_tw_reuse=2 over the host's own address (through lo, but not a loopback address): no reuse.
    t.equal(
      check("2B, tcp_tw_reuse=2, own address: connect 1500 ms after the first TIME_WAIT")?.observed,
      "EADDRNOTAVAIL",
    );
    // A small tcp_max_tw_buckets: 2B runs on, with the TIME_WAIT count pinned at the limit.
    t.equal(obs("2B, tcp_max_tw_buckets=50: iterations"), 2 * ports + 1);
    t.equal(obs("2B, tcp_max_tw_buckets=50: TIME_WAIT client side"), 50);
  },
);
