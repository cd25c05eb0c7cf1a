// The netns lab on the real kernel: hosts, sysctls, and every fault with what the other hosts observe.
import { execFileSync } from "node:child_process";
import t from "tap";
import { readPcap, startCapture } from "../../../src/evidence/capture.js";
import { SysctlError } from "../../../src/lab/sysctl.js";
import { run } from "../../../src/proc/exec.js";
import { POLLIN, POLLRDHUP, WaitTimeoutError } from "../../../src/sys/index.js";
import { withLab, withNetnsLab } from "../../helpers/lab.js";
import { waitUntil } from "../../helpers/wait.js";

const rootLinks = () => execFileSync("ip", ["-o", "link"], { encoding: "utf8" });

t.test("hosts get lab addresses, a fixed MAC, sysctls read back; the root namespace is untouched", async (t) => {
  const before = rootLinks();
  const lab = await withNetnsLab(t, { name: "basics" });
  const kang = await lab.addHost("kang", { sysctls: { "net.ipv4.tcp_retries2": 5, "net.ipv4.tcp_fin_timeout": "7" } });
  const kodos = await lab.addHost("kodos");
  t.match(kang.ipv4, /^198\.(18|19)\.\d+\.\d+$/);
  t.match(kang.ipv6, /^fd00:/);
  t.match(kang.mac, /^02:5b:/);
  t.not(kang.ipv4, kodos.ipv4);
  t.same(kang.sysctls, { "net.ipv4.tcp_retries2": "5", "net.ipv4.tcp_fin_timeout": "7" });
  t.equal(await kang.sysctl("net.ipv4.tcp_retries2"), "5", "the kernel of kang has it");
  t.equal(await kodos.sysctl("net.ipv4.tcp_retries2"), "15", "kodos keeps the namespace default");
  const link = execFileSync(
    "nsenter",
    [`--net=${(kang as unknown as { netnsPath: string }).netnsPath}`, "ip", "-o", "link", "show", "eth0"],
    {
      encoding: "utf8",
    },
  );
  t.match(link, kang.mac, "eth0 carries the planned MAC");
  t.match(link, /state UP/, "addHost returns with eth0 in service (linkwatch has run)");
  const ports = JSON.parse(
    execFileSync("nsenter", [`--net=${lab.switchNetns}`, "ip", "-j", "-d", "link", "show"], { encoding: "utf8" }),
  ) as { ifname: string; linkinfo?: { info_slave_data?: { state?: string } } }[];
  const bridged = ports.filter((p) => p.linkinfo?.info_slave_data);
  t.equal(bridged.length, lab.hosts().length, "one switch port per host");
  t.ok(
    bridged.every((p) => p.linkinfo?.info_slave_data?.state === "forwarding"),
    "and its switch port forwarding",
  );
  t.equal(rootLinks(), before, "no link appeared in the machine's own namespace");
});

// Packets the host's quiet rule dropped: the MLD reports its kernel made, which never reach the wire.
async function quietDrops(netnsPath: string): Promise<number> {
  type Expr = { counter?: { packets: number } };
  const { stdout } = await run(["nft", "-j", "list", "table", "ip6", "sockprobe-quiet"], { netns: netnsPath });
  const items = (JSON.parse(stdout) as { nftables: Array<{ rule?: { expr: Expr[] } }> }).nftables;
  return items.flatMap((i) => i.rule?.expr ?? []).reduce((n, e) => n + (e.counter?.packets ?? 0), 0);
}

t.test("quiet: a fresh lab's only ICMPv6 is the neighbour discovery TCP needs; no MLD, no RS", async (t) => {
  const lab = await withNetnsLab(t, { name: "quiet" });
  await lab.startCapture();
  const kang = await lab.addHost("kang");
  const kodos = await lab.addHost("kodos");
  const l = await kodos.listen(8080, { family: "IPv6" });
  const c = await kang.connect(kodos.ipv6, 8080, { timeoutMs: 2000 });
  const s = await l.acceptAsync({ timeoutMs: 2000 });
  await c.write("ping");
  t.equal((await s.readAsync(10, { timeoutMs: 2000 })).toString(), "ping");
  for (const x of [c, s, l]) await x.close();
  // A new interface's MLD schedule on this kernel is 4 reports within about a second (robustness 2,
  // for the joins and again once its addresses are in service): wait until each host has made them
  // all, so the capture spans every report an unquiet lab would have sent.
  for (const h of [kang, kodos]) {
    const path = (h as unknown as { netnsPath: string }).netnsPath;
    const drops = await waitUntil(
      `${h.name}'s MLD reports made (and dropped)`,
      () => quietDrops(path),
      (n) => n >= 4,
      5000,
    );
    t.ok(drops >= 4, `${h.name}'s kernel made ${drops} MLD reports; the lab dropped them at its output`);
  }
  const { packets } = await lab.stopCapture();
  const icmp6 = packets.filter((p) => p.kind === "icmp6");
  const nd = (p: (typeof packets)[number]) => p.icmpType === 135 || p.icmpType === 136;
  t.same(
    icmp6.filter((p) => !nd(p)).map((p) => `${p.host}: ${p.src} > ${p.dst} type ${p.icmpType}`),
    [],
    "no ICMPv6 but neighbour solicitations and advertisements: no MLD report (143, 131, 132), no RS (133)",
  );
  t.ok(
    icmp6.some((p) => p.icmpType === 135 && p.src === kang.ipv6) &&
      icmp6.some((p) => p.icmpType === 136 && p.src === kodos.ipv6),
    "neighbour discovery, which TCP over IPv6 needs, still passes",
  );
  t.same(
    icmp6.filter((p) => p.src !== kang.ipv6 && p.src !== kodos.ipv6).map((p) => `${p.host}: ${p.src} > ${p.dst}`),
    [],
    "every ICMPv6 packet is a host's, from its lab address: none from a link-local or the switch's own ports",
  );
  const switchAddrs = execFileSync("nsenter", [`--net=${lab.switchNetns}`, "ip", "-6", "-o", "addr", "show"], {
    encoding: "utf8",
  });
  t.same(
    switchAddrs.split("\n").filter((x) => x && !/ lo /.test(x)),
    [],
    "the switch's bridge and ports have no IPv6 address of their own",
  );
});

t.test("a bad sysctl is a clear error naming the key (and the value)", async (t) => {
  const lab = await withLab(t, { name: "sysctl" });
  const h = await lab.addHost("kang");
  await t.rejects(h.setSysctls({ "net.ipv4.tcp_no_such_knob": 1 }), {
    name: "SysctlError",
    key: "net.ipv4.tcp_no_such_knob",
    message: /unknown sysctl net\.ipv4\.tcp_no_such_knob/,
  });
  await t.rejects(h.setSysctls({ "net.ipv4.tcp_retries2": "lots" }), {
    key: "net.ipv4.tcp_retries2",
    value: "lots",
    message: /refused net\.ipv4\.tcp_retries2 = lots \(EINVAL\)/,
  });
  await t.rejects(h.setSysctls({ "kernel.panic": 1 }), SysctlError);
  await t.rejects(
    lab.addHost("bad", { sysctls: { "net.ipv4.tcp_tw_reuse": 5 } }),
    /refused net\.ipv4\.tcp_tw_reuse = 5 \(EINVAL\)/,
  );
  t.throws(() => lab.host("bad"), /no host "bad"/, "a host whose boot failed is not kept");
});

t.test("IPv4 and IPv6 connections between hosts; the transcript shows both on one clock", async (t) => {
  const lab = await withLab(t, { name: "connect" });
  const kang = await lab.addHost("kang");
  const kodos = await lab.addHost("kodos");
  for (const family of ["IPv4", "IPv6"] as const) {
    const l = await kodos.listen(8080, { family });
    const c = await kang.connect(family === "IPv6" ? kodos.ipv6 : kodos.ipv4, 8080, { timeoutMs: 2000 });
    const s = await l.acceptAsync({ timeoutMs: 2000 });
    t.same(await s.remoteAddress(), {
      family,
      address: family === "IPv6" ? kang.ipv6 : kang.ipv4,
      port: (await c.localAddress()).port,
    });
    await c.write("ping");
    t.equal((await s.readAsync(10, { timeoutMs: 2000 })).toString(), "ping");
    for (const x of [c, s, l]) await x.close();
  }
  const hosts = new Set(lab.transcript.entries.map((e) => e.host));
  t.same([...hosts].sort(), ["kang", "kodos"]);
});

t.test("powerOff: nothing the host sends arrives again; the peer retransmits into silence", async (t) => {
  const lab = await withNetnsLab(t, { name: "poweroff" });
  const kang = await lab.addHost("kang");
  const kodos = await lab.addHost("kodos");
  const cap = await startCapture({
    netns: lab.switchNetns,
    iface: "br0",
    file: `${await lab.startCapture()}/switch.pcap`,
  });
  const l = await kodos.listen(8080);
  const c = await kang.connect(kodos.ipv4, 8080);
  const s = await l.acceptAsync({ timeoutMs: 2000 });
  await s.write("before");
  await c.readAsync(100, { timeoutMs: 2000 });
  const offAt = lab.transcript.nowUs();
  await lab.powerOff(kodos);
  t.equal(kodos.state, "off");
  t.equal(await c.write("kodos, are you there?"), 21, "the write succeeds: the kernel only queued it");
  const info = await waitUntil(
    "a retransmission",
    () => c.tcpInfo(),
    (i) => (i.total_retrans as number) >= 1,
  );
  t.ok((info.total_retrans as number) >= 1, "kang retransmits");
  t.equal(info.stateName, "ESTABLISHED", "and still believes the connection is up");
  await t.rejects(kodos.socket(), /powered off/);
  await cap.stop();
  const { packets } = await lab.stopCapture();
  const onSwitch = await readPcap(cap.file, { originRealtimeUs: lab.originRealtimeUs() });
  const fromKodos = onSwitch.filter((p) => p.src === kodos.ipv4 || p.hwSrc === kodos.mac);
  t.ok(fromKodos.length > 0, "kodos spoke before the fault");
  t.same(
    fromKodos.filter((p) => p.atUs > offAt),
    [],
    "the switch saw nothing from kodos after power off",
  );
  t.ok(
    onSwitch.filter((p) => p.src === kang.ipv4 && p.atUs > offAt && p.len === 21).length >= 2,
    "kang's data crossed the switch more than once",
  );
  t.ok(
    packets.some((p) => p.host === "kang"),
    "per-host captures hold kang's packets",
  );
});

t.test(
  "powerCycle: same name, addresses, MAC, sysctls; empty kernel state; the peer's next write draws RST",
  async (t) => {
    const lab = await withLab(t, { name: "cycle" });
    const kang = await lab.addHost("kang");
    const kodos = await lab.addHost("kodos", { sysctls: { "net.ipv4.tcp_fin_timeout": 9 } });
    const { ipv4, ipv6, mac } = kodos;
    const l = await kodos.listen(8080);
    const c = await kang.connect(kodos.ipv4, 8080);
    await l.acceptAsync({ timeoutMs: 2000 });
    await lab.powerCycle(kodos, { bootDelayMs: 50 });
    t.equal(kodos.generation, 2);
    t.same([kodos.ipv4, kodos.ipv6, kodos.mac], [ipv4, ipv6, mac]);
    t.equal(await kodos.sysctl("net.ipv4.tcp_fin_timeout"), "9");
    t.same(await kodos.sockets(), [], "no socket survived the reboot");
    t.equal((await c.tcpInfo()).stateName, "ESTABLISHED", "kang has not noticed");
    const t0 = lab.transcript.nowUs();
    t.equal(await c.write("kodos, are you there?"), 21);
    const r = await c.poll(POLLIN | POLLRDHUP, 1000);
    const waited = (lab.transcript.nowUs() - t0) / 1000;
    t.ok(r.outcomes[0]?.names.includes("POLLERR"), `POLLERR within ${waited.toFixed(1)} ms`);
    t.ok(waited < 1000, "the RST came within a second");
    await t.rejects(c.read(), { code: "ECONNRESET", syscall: "read" });
    const l2 = await kodos.listen(8080);
    const c2 = await kang.connect(kodos.ipv4, 8080, { timeoutMs: 2000 });
    t.ok(await l2.acceptAsync({ timeoutMs: 2000 }), "the rebooted host serves again once its listener is reopened");
    await c2.close();
  },
);

t.test("shutdown: the peer sees the FIN (POLLIN, read 0), then the host is off", async (t) => {
  const lab = await withLab(t, { name: "shutdown" });
  const kang = await lab.addHost("kang");
  const kodos = await lab.addHost("kodos");
  const l = await kodos.listen(8080);
  const c = await kang.connect(kodos.ipv4, 8080);
  await l.acceptAsync({ timeoutMs: 2000 });
  await lab.shutdown(kodos);
  t.equal(kodos.state, "off");
  const r = await c.poll(POLLIN | POLLRDHUP, 1000);
  t.same(r.outcomes[0]?.names, ["POLLIN", "POLLRDHUP"]);
  t.equal((await c.read()).length, 0);
  t.equal((await c.tcpInfo()).stateName, "CLOSE_WAIT");
});

t.test("a real program on a host: nc serves, kill makes the kernel close its socket", async (t) => {
  const lab = await withLab(t, { name: "spawn" });
  const kang = await lab.addHost("kang");
  const kodos = await lab.addHost("kodos");
  const nc = kodos.spawn(["nc", "-l", "-k", kodos.ipv4, "7000"]);
  const c = await waitUntil(
    "nc listening",
    () => kang.connect(kodos.ipv4, 7000, { timeoutMs: 500 }).catch(() => undefined),
    (x) => x !== undefined,
  );
  if (!c) throw new Error("unreachable");
  await c.write("hello nc\n");
  let out = "";
  nc.stdout.on("data", (d) => {
    out += d;
  });
  await waitUntil(
    "nc printed the line",
    () => out,
    (o) => o.includes("hello nc"),
  );
  await lab.kill(nc);
  t.equal((await nc.exited).signal, "SIGKILL");
  const r = await c.poll(POLLIN | POLLRDHUP, 2000);
  t.ok(r.outcomes[0]?.names.includes("POLLIN"), "the kernel closed nc's socket: FIN");
  t.equal((await c.read()).length, 0);
});

t.test("pause: the host goes silent with its state kept; resume delivers what was queued", async (t) => {
  const lab = await withLab(t, { name: "pause" });
  const kang = await lab.addHost("kang");
  const kodos = await lab.addHost("kodos");
  const l = await kodos.listen(8080);
  const c = await kang.connect(kodos.ipv4, 8080);
  const s = await l.acceptAsync({ timeoutMs: 2000 });
  await lab.pause(kodos);
  t.equal(kodos.state, "paused");
  t.equal(await c.write("while paused"), 12);
  await waitUntil(
    "a retransmission",
    () => c.tcpInfo(),
    (i) => (i.total_retrans as number) >= 1,
  );
  t.equal(await c.outq(), 12, "nothing was acknowledged");
  t.equal(await s.inq(), 0, "nothing arrived");
  t.equal((await s.tcpInfo()).stateName, "ESTABLISHED", "kodos's state is kept");
  await lab.resume(kodos);
  t.equal((await s.readAsync(100, { timeoutMs: 5000 })).toString(), "while paused");
  await waitUntil(
    "acknowledged",
    () => c.outq(),
    (n) => n === 0,
    5000,
  );
});

t.test("unplug: writes during the outage succeed and arrive in order after replug", async (t) => {
  const lab = await withLab(t, { name: "unplug" });
  const kang = await lab.addHost("kang");
  const kodos = await lab.addHost("kodos");
  const l = await kodos.listen(8080);
  const c = await kang.connect(kodos.ipv4, 8080);
  const s = await l.acceptAsync({ timeoutMs: 2000 });
  await lab.unplug(kang);
  t.equal(kang.state, "unplugged");
  for (const word of ["one ", "two ", "three"]) t.equal(await c.write(word), word.length);
  t.equal(await s.inq(), 0);
  await lab.replug(kang);
  let got = "";
  await waitUntil(
    "all three writes",
    async () => {
      got += (await s.readAsync(100, { timeoutMs: 5000 })).toString();
      return got;
    },
    (g) => g.length >= 13,
    8000,
  );
  t.equal(got, "one two three");
});

t.test("partition and heal", async (t) => {
  const lab = await withLab(t, { name: "partition" });
  const a = await lab.addHost("a");
  const b = await lab.addHost("b");
  const c = await lab.addHost("c");
  const lb = await b.listen(9000);
  await lab.partition([a], [b, c]);
  await t.rejects(a.connect(b.ipv4, 9000, { timeoutMs: 300 }), WaitTimeoutError, "a cannot reach b");
  const bc = await c.connect(b.ipv4, 9000, { timeoutMs: 2000 });
  t.same(await bc.remoteAddress(), { family: "IPv4", address: b.ipv4, port: 9000 }, "c still reaches b");
  await lab.heal();
  const ab = await a.connect(b.ipv4, 9000, { timeoutMs: 3000 });
  t.same(await ab.remoteAddress(), { family: "IPv4", address: b.ipv4, port: 9000 }, "after heal a reaches b");
  t.same(
    lab.faults.map((f) => f.fault),
    ["partition", "heal"],
  );
  await lb.close();
});

t.test("loss: 100% drops everything, 0% restores, 20% shows as retransmissions", async (t) => {
  const lab = await withLab(t, { name: "loss" });
  const kang = await lab.addHost("kang");
  const kodos = await lab.addHost("kodos");
  const l = await kodos.listen(8080);
  await lab.loss(kodos, 100);
  await t.rejects(kang.connect(kodos.ipv4, 8080, { timeoutMs: 300 }), WaitTimeoutError);
  await lab.loss(kodos, 0);
  const c = await kang.connect(kodos.ipv4, 8080, { timeoutMs: 5000 });
  const s = await l.acceptAsync({ timeoutMs: 2000 });
  await c.setOption("TCP_NODELAY", 1);
  await lab.loss(kodos, 20);
  // 30 segments and their ACKs cross a 20% loss: all survive untouched with probability 0.8^60 < 1e-5.
  for (let i = 0; i < 30; i++) await c.write("x".repeat(100));
  const received = (await s.recvAsync(3000, ["MSG_WAITALL"], { timeoutMs: 30_000 })).length;
  t.equal(received, 3000, "TCP delivered every byte");
  t.ok(((await c.tcpInfo()).total_retrans as number) > 0, "through retransmissions");
  await t.rejects(lab.loss(kodos, 101), RangeError);
});

t.test("a router joins two switches", async (t) => {
  const lab = await withLab(t, { name: "routed", switches: ["lan", "wan"] });
  const kang = await lab.addHost("kang", { switch: "lan" });
  const kodos = await lab.addHost("kodos", { switch: "wan" });
  await lab.addRouter("r1", ["lan", "wan"]);
  const l = await kodos.listen(8080);
  const c = await kang.connect(kodos.ipv4, 8080, { timeoutMs: 3000 });
  const s = await l.acceptAsync({ timeoutMs: 2000 });
  t.equal((await s.remoteAddress()).address, kang.ipv4, "no NAT: the peer sees kang's own address");
  await c.write("routed");
  t.equal((await s.readAsync(10, { timeoutMs: 2000 })).toString(), "routed");
  const c6 = await kang.connect(kodos.ipv6, 8080, { timeoutMs: 3000 }).catch((e) => e);
  t.ok(c6 instanceof Error, "the IPv4 listener does not take IPv6");
  await lab.partition([kang], [kodos]);
  await t.rejects(
    kang.connect(kodos.ipv4, 8080, { timeoutMs: 300 }),
    WaitTimeoutError,
    "a partition holds across the router",
  );
});

t.test("several labs at once do not interfere", async (t) => {
  const [l1, l2] = await Promise.all([withNetnsLab(t, { name: "one" }), withNetnsLab(t, { name: "two" })]);
  t.not(l1.id, l2.id);
  const [a1, b1, a2, b2] = await Promise.all([l1.addHost("a"), l1.addHost("b"), l2.addHost("a"), l2.addHost("b")]);
  t.not(a1.ipv4, a2.ipv4, "distinct address slices");
  const s1 = await b1.listen(8080);
  const s2 = await b2.listen(8080);
  await Promise.all([a1.connect(b1.ipv4, 8080), a2.connect(b2.ipv4, 8080)]);
  await t.rejects(a1.connect(b2.ipv4, 8080, { timeoutMs: 300 }), "a host cannot reach another lab");
  await s1.close();
  await s2.close();
});

t.test("evidence: tracepoint states, TCP_INFO samples", async (t) => {
  const lab = await withLab(t, { name: "evidence" });
  const kang = await lab.addHost("kang");
  const kodos = await lab.addHost("kodos");
  const trace = await lab.startTrace();
  const l = await kodos.listen(8080);
  const c = await kang.connect(kodos.ipv4, 8080);
  const s = await l.acceptAsync({ timeoutMs: 2000 });
  // The count ends the sampling; the timer only bounds it.
  let bound: NodeJS.Timeout | undefined;
  const done = new Promise((r) => {
    bound = setTimeout(r, 5000);
  });
  const samples = await lab.sampleTcpInfo(c, { intervalMs: 10, until: done, maxSamples: 4 });
  clearTimeout(bound);
  t.equal(samples.length, 4, `${samples.length} samples`);
  t.ok(
    samples.every((x, i) => i === 0 || x.atUs > (samples[i - 1]?.atUs ?? 0)),
    "in time order",
  );
  await s.close();
  await waitUntil(
    "kang in CLOSE_WAIT",
    () => c.tcpInfo(),
    (i) => i.stateName === "CLOSE_WAIT",
  );
  await waitUntil(
    "kodos in FIN_WAIT2",
    () => kodos.sockets(),
    (rows) => rows.some((r) => r.state === "FIN_WAIT2"),
  );
  const events = await lab.stopTrace();
  if (!trace.available) {
    t.equal(events.length, 0, `tracefs unavailable (${trace.reason}): no events, none faked`);
    return;
  }
  const states = events.filter(
    (e) => e.event === "inet_sock_set_state" && e.saddr === kodos.ipv4 && e.sport === 8080 && e.dport !== 0,
  );
  t.same(
    states.map((e) => `${e.oldstate}->${e.newstate}`),
    // Closed by its application, kodos's socket is an orphan: on FIN_WAIT2 the kernel hands the
    // connection to a timewait mini-socket at once, and the full socket itself goes to CLOSE.
    ["LISTEN->SYN_RECV", "SYN_RECV->ESTABLISHED", "ESTABLISHED->FIN_WAIT1", "FIN_WAIT1->FIN_WAIT2", "FIN_WAIT2->CLOSE"],
    "kodos's side, from the kernel",
  );
  t.ok(
    states.every((e) => e.atUs > 0 && e.atUs < lab.transcript.nowUs()),
    "on the lab's clock",
  );
});
