// Peer panic: the OS-panic variant of seed 000's first puzzler. A kernel that panics stops where it
// is and sends nothing, as one losing power: the idle side notices nothing, and a write retransmits
// into the silence until tcp_retries2 ends the connection with ETIMEDOUT, never with a reset.

import { deathTaken, retransmissionDeath, timerChainExpectation } from "../model/tcp.js";
import { POLLIN, POLLRDHUP } from "../sys/constants.js";
import type { Scenario } from "./scenario.js";
import { connection, kangAndKodos, stateChanges, tcpTimers } from "./steps.js";

const RETRIES2 = 3;
// How long kang's idle poll watches after the panic: nothing may wake it.
const IDLE_MS = 1000;

export const scenario: Scenario = {
  name: "peer-panic",
  seed: '000_c3942d4e008b9feb.txt (puzzler 1: "an actual power cycle (or OS panic)")',
  question:
    "When the peer's kernel panics under an idle connection, does the other side notice, and how does its next write end?",
  seedSays:
    'The seed asks for "an actual power cycle (or OS panic)": the peer vanishes without a word, so the idle side stays asleep in poll with the connection ESTABLISHED; only a side that sends finds out.',
  linux:
    "A panic stops the peer's kernel in panic(): it sends no FIN and no RST (its sockets are never closed), exactly as a power cut. kang's write is retransmitted on the RTO schedule until tcp_retries2 turned into time runs out (tcp_write_timeout), and the error is ETIMEDOUT (tcp_write_err). Giving a panic needs a kernel of the host's own: a VM backend.",
  faults: ["crash"],
  timeoutMs: 20_000,
  async run(ctx) {
    const { lab } = ctx;
    const { kang, kodos, listener } = await kangAndKodos(lab, {
      kang: { sysctls: { "net.ipv4.tcp_retries2": RETRIES2 } },
    });
    const { client } = await connection(kang, kodos, listener);
    const timers = await tcpTimers(client);
    ctx.observe("RTO before the fault", timers.rtoMs, "ms");

    await lab.crash(kodos);
    const panic = lab.faults.find((f) => f.fault === "crash")?.detail ?? "";
    ctx.say(`kodos's kernel panics: ${panic || "(no panic line on its console)"}`);
    // The console's own words: the panic happened in the kernel, not by a hand on the power.
    ctx.expectThat(
      "kodos's console",
      /Kernel panic - not syncing/.test(panic),
      "Kernel panic - not syncing: sysrq triggered crash",
      panic || "no panic line",
    );
    ctx.expectOk(
      await ctx.pollNames("kang", client, POLLIN | POLLRDHUP, IDLE_MS, "poll (idle, after the panic)"),
      "nothing",
      { headline: true },
    );
    ctx.expectEqual("kang's state after the panic", "ESTABLISHED", (await client.tcpInfo()).stateName, {
      headline: true,
    });

    const death = retransmissionDeath({ ...timers, retries2: RETRIES2 });
    const sent = await ctx.attempt("kang", "write", () => client.write("\n"));
    ctx.expectOk(sent, 1);
    const woke = await ctx.pollNames("kang", client, POLLIN | POLLRDHUP, death.deathMs + 3000);
    const read = await ctx.attempt("kang", "read", () => client.read(1024));
    // ETIMEDOUT, not ECONNRESET: nothing came back from the panicked kernel.
    ctx.expectErrno(read, "ETIMEDOUT", { headline: true });
    const retrans = Number((await client.tcpInfo()).total_retrans);
    const taken = deathTaken(death, retrans);
    ctx.expectTime(
      `death by tcp_retries2=${RETRIES2}`,
      timerChainExpectation(taken.intervals, taken.why),
      (woke.atUs - sent.atUs) / 1000,
      { headline: true },
    );
    ctx.expectThat(
      "retransmissions before giving up",
      retrans === death.retransmissions || retrans === death.early?.retransmissions,
      death.early
        ? `${death.retransmissions}, or ${death.early.retransmissions} where the timer wheel's rounding takes the firing past the limit`
        : String(death.retransmissions),
      String(retrans),
    );

    const states = await stateChanges(lab);
    if (states.available) {
      const resets = states.events.filter((e) => e.event === "tcp_receive_reset" && e.saddr === kang.ipv4);
      ctx.expectEqual("RSTs kang received (tcp_receive_reset)", 0, resets.length);
    } else {
      ctx.say(`tracepoints unavailable (${states.reason}): the silence shows as ETIMEDOUT only`);
    }
  },
};
