// The queue model's kernel-dependent rules: the SYN schedule before and after linear timeouts, and
// when connect() may take over a TIME_WAIT with and without tcp_tw_reuse_delay.
import t from "tap";
import {
  connectWithRangeInTimeWait,
  delackMaxMs,
  lingerCloseBlock,
  nearest,
  nextAttemptCandidates,
  nextWholeSecondMs,
  synRetransmissions,
  twReuseWindow,
} from "../../src/model/queues.js";

t.test("SYN retransmissions: linear first with tcp_syn_linear_timeouts (6.5+), doubling from 1 s before", async (t) => {
  const linear = synRetransmissions(6, 4);
  t.same(linear.retransmitAtMs, [1000, 2000, 3000, 4000, 5000, 7000, 11_000, 19_000, 35_000, 67_000]);
  t.equal(linear.failAtMs, 131_000);
  // Kernels without the sysctl (Debian's 6.1): 1, 3, 7, 15, 31, 63 s, ETIMEDOUT at 127 s.
  const doubling = synRetransmissions(6, 0);
  t.same(doubling.retransmitAtMs, [1000, 3000, 7000, 15_000, 31_000, 63_000]);
  t.equal(doubling.failAtMs, 127_000);
});

t.test("TIME_WAIT take-over with tcp_tw_reuse_delay (6.14+): strictly after the delay from the entry", async (t) => {
  const w = twReuseWindow({ reuse: 2, loopbackAddress: true, delayMs: 1000, fromMs: 5_000.2, toMs: 5_000.9 });
  t.equal(w.earliestMs, 6_000.2);
  t.equal(w.latestMs, 6_001.9);
  const never = twReuseWindow({ reuse: 2, loopbackAddress: false, delayMs: 1000, fromMs: 5000, toMs: 5001 });
  t.equal(never.earliestMs, Number.POSITIVE_INFINITY, "tcp_tw_reuse=2 without a loopback address");
  t.equal(
    twReuseWindow({ reuse: 0, loopbackAddress: true, delayMs: undefined, fromMs: 0, toMs: 1 }).latestMs,
    Infinity,
  );
});

t.test("TIME_WAIT take-over before 6.14: the next whole second of the monotonic clock", async (t) => {
  t.equal(nextWholeSecondMs(12_345.6), 13_000);
  t.equal(nextWholeSecondMs(13_000), 14_000);
  // A FIN at 12.345 s: taken over from 13 s (a jiffy of tick lag late at most), 655 ms later.
  const w = twReuseWindow({ reuse: 1, loopbackAddress: false, delayMs: undefined, fromMs: 12_345, toMs: 12_346 });
  t.equal(w.earliestMs, 13_000);
  t.equal(w.latestMs, 13_004);
  // A FIN at 12.998 s: 2 ms later already.
  const late = twReuseWindow({ reuse: 1, loopbackAddress: false, delayMs: undefined, fromMs: 12_998, toMs: 12_999 });
  t.equal(late.earliestMs, 13_000);
  // A FIN within a jiffy of 13 s may still carry second 12 (ktime_get_seconds lags by up to a tick).
  const edge = twReuseWindow({ reuse: 1, loopbackAddress: false, delayMs: undefined, fromMs: 13_001, toMs: 13_002 });
  t.equal(edge.earliestMs, 13_000);
  t.equal(edge.latestMs, 14_004);
});

t.test("a connect() with the whole range in TIME_WAIT goes on only by taking over the oldest", async (t) => {
  const w = { earliestMs: 13_000, latestMs: 13_004, why: "" };
  t.equal(connectWithRangeInTimeWait(w, { startMs: 12_500, endMs: 12_501 }), "fails");
  t.equal(connectWithRangeInTimeWait(w, { startMs: 13_004, endMs: 13_005 }), "succeeds");
  t.equal(connectWithRangeInTimeWait(w, { startMs: 12_999, endMs: 13_001 }), "either");
});

t.test("the longest delayed ACK: 200 ms before 6.7, the minimum RTO less a jiffy after", async (t) => {
  t.equal(delackMaxMs(false), 200);
  t.equal(delackMaxMs(true), 196, "49 jiffies at HZ=250");
  t.equal(delackMaxMs(true, 20), 16);
  t.equal(lingerCloseBlock(1, true, delackMaxMs(true)).maxMs, 196);
});

t.test(
  "the first retransmission after a bracketed moment: it or the next where a timer may land either side",
  async (t) => {
    const late = () => 60;
    // An accept between 3049 and 3055 ms: the 3 s retransmission may fire up to 60 ms late, so it or the 4 s one.
    t.same(nextAttemptCandidates([1000, 2000, 3000, 4000, 5000], 3049, 3055, late), [3000, 4000]);
    t.equal(nearest([3000, 4000], 3070), 3000);
    // Well clear of any retransmission: just the next one.
    t.same(nextAttemptCandidates([1000, 2000, 3000, 4000, 5000], 3500, 3510, late), [4000]);
  },
);
