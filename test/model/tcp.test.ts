// The retransmission death where the timer wheel decides which firing gives up.
import t from "tap";
import { deathTaken, retransmissionDeath } from "../../src/model/tcp.js";

t.test(
  "retries2=3 with a 212 ms RTO: the fourth RTO firing is 32 ms short of the limit, within the wheel's rounding",
  async (t) => {
    const d = retransmissionDeath({ rtoMs: 212, retries2: 3 });
    t.same(d.schedule, [200, 412, 836, 1684, 3380, 6772], "a loss probe at 200 ms, then the RTO from it");
    t.equal(d.retransmissions, 5);
    // Firings at 836, 1684, 3380 each up to 32 ms late (level 1 of the wheel): 2968 + up to 96 ms may reach 3000.
    t.same(d.early, { deathMs: 3380, retransmissions: 4, intervals: [200, 212, 424, 848, 1696] });
    t.equal(deathTaken(d, 4).deathMs, 3380);
    t.equal(deathTaken(d, 5).deathMs, 6772);
  },
);

t.test("no early branch where the margin exceeds the rounding, nor with TCP_USER_TIMEOUT", async (t) => {
  t.equal(retransmissionDeath({ rtoMs: 204, retries2: 3 }).early, undefined, "2856 + 96 < 3000");
  t.equal(retransmissionDeath({ rtoMs: 212, retries2: 3, userTimeoutMs: 1500 }).early, undefined);
});
