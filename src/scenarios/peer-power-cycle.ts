// Peer power cycle: the idle side notices nothing until it writes; the rebooted peer answers with RST.
import { AFTER_RST, readSequence, reventsText } from "../model/close.js";
import { tolerance } from "../model/tcp.js";
import { POLLIN, POLLOUT, POLLRDHUP } from "../sys/constants.js";
import { errnoName } from "../sys/errors.js";
import type { Scenario } from "./scenario.js";
import { checkSentReset, connection, kangAndKodos, SERVER_PORT, stateChanges, waitForRow } from "./steps.js";

const BOOT_DELAY_MS = 1000;
// How long kang's poll watches across the cycle: the outage, the boot, and a margin after it.
const WATCH_MS = BOOT_DELAY_MS + 1500;

// SO_ERROR as a program reads it: 0, or the errno's name.
const pendingError = (err: number) => (err === 0 ? 0 : errnoName(err));

export const scenario: Scenario = {
  name: "peer-power-cycle",
  seed: "000_c3942d4e008b9feb.txt (puzzler 1: power cycling)",
  question:
    "When the peer of an idle connection is power cycled, does the other side ever notice, and what does each call return once it writes?",
  seedSays:
    "kang's poll stays asleep (20 minutes, then an hour) and netstat shows ESTABLISHED while kodos has no connection; kang's write of 22 bytes succeeds; kodos answers with RST; poll wakes and read fails with ECONNRESET.",
  linux:
    "The same on Linux. After the RST (tcp_reset), the socket is in CLOSE with both directions shut, so poll reports POLLIN|POLLOUT|POLLERR|POLLHUP|POLLRDHUP at once. The error is pending in sk_err and the first call to take it (read here) gets ECONNRESET and clears it (sock_error): the next read returns 0 (EOF), a write fails with EPIPE (SEND_SHUTDOWN), and SO_ERROR reads 0.",
  faults: ["powerCycle"],
  timeoutMs: WATCH_MS + 8000,
  async run(ctx) {
    const { lab } = ctx;
    const { kang, kodos, listener } = await kangAndKodos(lab, { backlog: 1 });
    const { client, port } = await connection(kang, kodos, listener);
    ctx.observe("RTT before the fault", Number((await client.tcpInfo()).rtt) / 1000, "ms");
    ctx.say("connected; both sides idle in poll");

    const poll = (call: string, events: number, timeoutMs: number) =>
      ctx.pollNames("kang", client, events, timeoutMs, call);
    const watching = poll("poll (across the reboot)", POLLIN | POLLRDHUP, WATCH_MS);
    // The same MAC comes back (a real NIC keeps its address), so kang's ARP entry stays valid.
    await lab.powerCycle(kodos, { bootDelayMs: BOOT_DELAY_MS });
    ctx.say(`kodos loses power and boots again ${BOOT_DELAY_MS} ms later, with empty kernel state`);
    ctx.expectOk(await watching, "nothing", { headline: true });
    ctx.expectEqual("kang's state after the peer's reboot", "ESTABLISHED", (await client.tcpInfo()).stateName, {
      headline: true,
    });
    const row = await waitForRow(kodos, (r) => r.local.port === SERVER_PORT || r.peer.port === port, 0);
    ctx.expectEqual("kodos's sockets for the connection after the reboot", "none", row ? row.state : "none", {
      headline: true,
    });
    ctx.expectEqual("kodos's boot generation", 2, kodos.generation);

    const message = "kodos, are you there?\n";
    const sent = await ctx.attempt("kang", "write", () => client.write(message));
    ctx.expectOk(sent, Buffer.byteLength(message), { headline: true });
    // The wait is for the RST: with POLLOUT asked, poll would answer at once wherever the RST takes
    // longer than the write's return (a VM's round trip). The whole revents are read after it.
    const woke = await poll("poll (after the write)", POLLIN | POLLRDHUP, 2000);
    ctx.expectOk(woke, reventsText(AFTER_RST, POLLIN | POLLRDHUP));
    ctx.expectOk(
      await poll("poll (after the RST)", POLLIN | POLLOUT | POLLRDHUP, 0),
      reventsText(AFTER_RST, POLLIN | POLLOUT | POLLRDHUP),
      { headline: true },
    );
    // kodos keeps its MAC, so the data and the RST each cross the LAN once: one round trip (well under a
    // millisecond here), not an ARP entry going stale. srtt is no model for it: one handshake retransmission
    // would inflate it to a second.
    ctx.expectTime(
      "RST after the write",
      { ms: 0, toleranceMs: tolerance(0), why: "one round trip on a LAN: the segment out, kodos's RST back" },
      (woke.atUs - sent.atUs) / 1000,
      { headline: true },
    );
    ctx.expectEqual("kang's state after the RST", "CLOSE", (await client.tcpInfo()).stateName);

    const [first, then] = readSequence(AFTER_RST) as [string, string];
    ctx.expectOutcome(await ctx.attempt("kang", "read", () => client.read(1024)), first, { headline: true });
    // The error was consumed by the first read: what remains is a connection shut both ways.
    ctx.expectOutcome(await ctx.attempt("kang", "read again", () => client.read(1024)), then, { headline: true });
    ctx.expectErrno(await ctx.attempt("kang", "write again", () => client.write("again?\n")), "EPIPE", {
      headline: true,
    });
    ctx.expectOk(await ctx.attempt("kang", "SO_ERROR", async () => pendingError(await client.takeError())), 0);
    // With the error taken, POLLERR is gone; the connection stays shut both ways.
    ctx.expectOk(
      await poll("poll (error taken)", POLLIN | POLLOUT | POLLRDHUP, 0),
      reventsText({ ...AFTER_RST, errorPending: false }, POLLIN | POLLOUT | POLLRDHUP),
    );

    const states = await stateChanges(lab);
    if (states.available) {
      const resets = states.events.filter((e) => e.event === "tcp_receive_reset" && e.sport === port);
      ctx.expectEqual("RSTs kang received (tcp_receive_reset)", 1, resets.length);
      const sentRst = states.events.filter((e) => e.event === "tcp_send_reset" && e.dport === port);
      // kodos came back with no socket for the connection: before 6.10 that RST is not traced at all,
      // and kang's tcp_receive_reset above is what shows it.
      checkSentReset(ctx, "kodos's RST", kodos, sentRst, "no socket", "NO_SOCKET");
      ctx.expectEqual("kang's path", "ESTABLISHED>CLOSE", states.path(kang.ipv4, port, "ESTABLISHED"));
    } else {
      ctx.say(`tracepoints unavailable (${states.reason}): the RST is seen through poll and read only`);
    }
  },
};
