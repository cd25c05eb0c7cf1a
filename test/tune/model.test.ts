// tune's own model: the SYN schedule this kernel runs (measured in labs, see the schedules below),
// the RTO of a LAN connection, and the defaults that scale with memory.
import t from "tap";
import { defaultSettings, lanRtoMs, memoryScaledDefault, resolveSettings, synGiveUp } from "../../src/tune/model.js";

t.test("SYN give-up: a time limit, checked at each firing of a linear-then-doubling timer", async (t) => {
  // Measured on Linux 6.18 (tracepoint tcp_retransmit_skb, then SYN_SENT -> CLOSE), ms from the first SYN:
  // syn_retries=2, linear 4: 1018 2042 3066 4090 5114, ETIMEDOUT at 7130.
  const a = synGiveUp({ synRetries: 2, linearTimeouts: 4 });
  t.same(a.schedule, [1000, 2000, 3000, 4000, 5000, 7000]);
  t.equal(a.retransmissions, 5, "five SYN retransmissions, though syn_retries=2");
  // syn_retries=2, linear 0: 1018 3034, ETIMEDOUT at 7194.
  t.same(synGiveUp({ synRetries: 2, linearTimeouts: 0 }).schedule, [1000, 3000, 7000]);
  // syn_retries=1, linear 4: 1018 2042, ETIMEDOUT at 3066.
  t.same(synGiveUp({ synRetries: 1, linearTimeouts: 4 }).schedule, [1000, 2000, 3000]);
  // syn_retries=5, linear 2: 1018 2042 3066 5082 9242 17434 33562, the next at 65.6 s.
  const d = synGiveUp({ synRetries: 5, linearTimeouts: 2 });
  t.same(d.schedule, [1000, 2000, 3000, 5000, 9000, 17000, 33000, 65000]);
  t.equal(d.limitMs, 63_000);
  // tcp_rto_max_ms=1000 caps the SYN timer too, and tcp_model_timeout turns linear past 1 s: 1 + 3 × 1 s.
  t.same(synGiveUp({ synRetries: 3, linearTimeouts: 0, rtoMaxMs: 1000 }).schedule, [1000, 2000, 3000, 4000]);
  // The defaults: 131 s, the first firing past the 127 s limit.
  t.equal(synGiveUp({ synRetries: 6, linearTimeouts: 4 }).deathMs, 131_000);
  t.equal(synGiveUp({ synRetries: 6 }).deathMs, 131_000, "tcp_syn_linear_timeouts defaults to 4");
  t.equal(synGiveUp({ synRetries: 6, linearTimeouts: 0 }).deathMs, 127_000, "kernels before 6.5: 127 s");
});

t.test("a LAN connection's RTO: the floor plus the RTT, rounded up to a jiffy", async (t) => {
  t.equal(lanRtoMs(), 204, "TCP_INFO shows rto 204000 on the lab's veth links");
  t.equal(lanRtoMs(50), 52);
});

t.test("defaults: compiled in, scaled to memory, or hard-coded where the sysctl is missing", async (t) => {
  t.equal(memoryScaledDefault("net.ipv4.tcp_max_tw_buckets", 262144), 131072);
  t.equal(memoryScaledDefault("net.ipv4.tcp_max_syn_backlog", 262144), 2048);
  t.equal(memoryScaledDefault("net.ipv4.tcp_max_syn_backlog", 4096), 128);
  const all = { has: () => true, ehashEntries: 262144 };
  const d = defaultSettings(all);
  t.match(d, { retries2: 15, rtoMaxMs: 120_000, synLinearTimeouts: 4, somaxconn: 4096, maxTwBuckets: 131072 });
  const older = defaultSettings({ has: (k) => !k.endsWith("tcp_syn_linear_timeouts") && !k.endsWith("rto_max_ms") });
  t.match(older, { synLinearTimeouts: 0, rtoMaxMs: 120_000, maxTwBuckets: undefined });
  const s = resolveSettings({ "net.ipv4.ip_local_port_range": "1024 65535", "net.ipv4.tcp_retries2": "8" }, all);
  t.match(s, { portLow: 1024, portHigh: 65535, retries2: 8, keepaliveTimeS: 7200 });
});

t.test("tcp_tw_reuse_delay: its value where the kernel has it (6.14+), the whole-second rule before", async (t) => {
  t.equal(defaultSettings({ has: () => true }).twReuseDelayMs, 1000);
  t.equal(defaultSettings({ has: (k) => !k.endsWith("tcp_tw_reuse_delay") }).twReuseDelayMs, undefined);
});
