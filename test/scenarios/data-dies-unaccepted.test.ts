import t from "tap";
import { lingerCloseBlock } from "../../src/model/queues.js";
import { timerChainExpectation, tolerance } from "../../src/model/tcp.js";
import { runScenario } from "../../src/runner/run-scenario.js";
import { scenario } from "../../src/scenarios/data-dies-unaccepted.js";

t.test(
  "data dies unaccepted: only an application-level ACK notices; write, close, SIOCOUTQ and SO_LINGER all succeed",
  async (t) => {
    const r = await runScenario(scenario, { trace: true });
    t.equal(r.verdict, "pass", r.reason ?? "passed");
    const check = (label: string) => r.checks.find((c) => c.label === label);
    // (a) plain write + close: nothing but success.
    t.equal(check("write (a) on kang")?.observed, "10000");
    t.equal(check("close (a) on kang")?.observed, "ok");
    // (b) SO_LINGER: close blocks until the receiving kernel's delayed ACK of the FIN, then succeeds.
    t.equal(check("close (b) on kang")?.observed, "ok");
    const linger = r.observations["close with SO_LINGER blocked"]?.value as number;
    const acked = lingerCloseBlock(5, true);
    t.ok(
      linger >= acked.minMs && linger <= acked.maxMs + tolerance(acked.maxMs),
      `close with SO_LINGER blocked ${linger} ms: the FIN's delayed ACK`,
    );
    // (c) SIOCOUTQ reaches 0: the receiving kernel ACKed everything.
    t.equal(check("SIOCOUTQ before close (c)")?.observed, "0 bytes");
    t.equal(check("close (c) on kang")?.observed, "ok");
    // Where the data was: four unaccepted children on kodos, then reset.
    t.equal(check("connections waiting in kodos's accept queue")?.observed, "4");
    t.equal(check("kodos's children after the listener closed")?.observed, "0");
    t.equal(check("kang's sockets for the four connections after the RSTs")?.observed, "none");
    // (d) the application-level acknowledgement is the only one that sees it.
    t.equal(check("read (d) on kang")?.observed, "ECONNRESET");
    t.equal(
      check("read (control) on kang")?.observed,
      "1 bytes",
      "the same protocol gets its ACK from an accepting receiver",
    );
    t.equal(check("bytes the accepting application read (control)")?.observed, "10000");
    // (b') SO_LINGER with no ACK at all: close still returns 0, after the linger time, data orphaned.
    t.equal(check("close (b') on amy")?.observed, "ok");
    const silent = r.observations["close with SO_LINGER {1, 1} and no ACK"]?.value as number;
    const whole = lingerCloseBlock(1, false);
    const e = timerChainExpectation([whole.minMs], whole.why);
    t.ok(silent >= whole.minMs && silent <= e.ms + e.toleranceMs, `close blocked ${silent} ms: the whole linger time`);
    t.equal(check("amy's socket after that close")?.observed, "FIN_WAIT1 10001 orphan");
    if (r.evidence.trace.available) {
      t.equal(
        check("kang's sockets that took the RST as an error")?.pass,
        true,
        "only the socket still open saw the RST",
      );
    }
  },
);
