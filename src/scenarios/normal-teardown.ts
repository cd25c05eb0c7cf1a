// Normal teardown: who gets POLLIN and read 0, the states each side passes, who ends in TIME_WAIT.
import { AFTER_FIN, reventsText } from "../model/close.js";
import { TCP_TIMEWAIT_LEN_MS, tolerance } from "../model/tcp.js";
import { POLLIN, POLLRDHUP } from "../sys/constants.js";
import type { Scenario } from "./scenario.js";
import { connection, kangAndKodos, SERVER_PORT, stateChanges, waitForRow } from "./steps.js";

export const scenario: Scenario = {
  name: "normal-teardown",
  seed: "000_c3942d4e008b9feb.txt (warmup: normal TCP teardown)",
  question: "When the server process exits, does the idle client find out, how, and who ends in TIME_WAIT?",
  seedSays:
    "kang is woken from poll with POLLIN, read returns 0 and it closes; kodos passes FIN_WAIT_1, FIN_WAIT_2 and ends in TIME_WAIT; kang passes CLOSE_WAIT and LAST_ACK and keeps nothing.",
  faults: ["exitApplication"],
  timeoutMs: 10_000,
  async run(ctx) {
    const { lab } = ctx;
    const { kang, kodos, listener } = await kangAndKodos(lab, { backlog: 1 });
    const { client, port } = await connection(kang, kodos, listener);
    const oneWayMs = Number((await client.tcpInfo()).rtt) / 2000;
    ctx.say("connected; both sides idle in poll");

    const waiting = ctx.pollNames("kang", client, POLLIN | POLLRDHUP, 5000);
    const exitAt = ctx.now();
    await lab.exitApplication(kodos);
    ctx.say("kodos's process exits (Ctrl-C): the kernel closes its sockets");
    const woke = await waiting;
    ctx.expectOk(woke, reventsText(AFTER_FIN, POLLIN | POLLRDHUP), { headline: true });
    ctx.expectOk(await ctx.attempt("kang", "read", () => client.read(1024)), "0 (EOF)", { headline: true });
    ctx.expectEqual("kang's state after the FIN", "CLOSE_WAIT", (await client.tcpInfo()).stateName);
    await client.close();
    const closedAt = ctx.now();
    ctx.say("kang closes its socket");

    const tw = await waitForRow(
      kodos,
      (r) => r.local.port === SERVER_PORT && r.peer.port === port && r.state === "TIME_WAIT",
      3000,
    );
    ctx.expectEqual("kodos's final state", "TIME_WAIT", tw?.state ?? "none", { headline: true });
    // kodos entered TIME_WAIT when kang's FIN arrived, right after kang's close; ss prints the timer in
    // whole seconds, hence a second more of tolerance.
    const sinceMs = (ctx.now() - closedAt) / 1000;
    ctx.expectTime(
      "kodos TIME_WAIT timer",
      {
        ms: TCP_TIMEWAIT_LEN_MS - sinceMs,
        toleranceMs: 1000 + tolerance(sinceMs),
        why: "TCP_TIMEWAIT_LEN (60 s, fixed at compile time) less the time since kang's FIN",
      },
      tw?.timer?.expiresMs ?? Number.NaN,
    );
    const left = await waitForRow(kang, (r) => r.local.port === port, 0);
    ctx.expectEqual("kang's sockets for the connection after close", "none", left ? left.state : "none");

    const states = await stateChanges(lab);
    // Timed from kodos's FIN where the trace shows it (its socket entering FIN_WAIT1 as the kernel
    // closes it), else from the call that ended the process: in a slow guest the exit itself takes time.
    const finAt = states.available ? states.enteredAt(kodos.ipv4, SERVER_PORT, "FIN_WAIT1", port) : undefined;
    ctx.expectTime(
      "kang woken after kodos's exit",
      {
        ms: oneWayMs,
        toleranceMs: tolerance(oneWayMs),
        why: `one FIN, half the smoothed RTT across the switch (timed from ${finAt === undefined ? "the exit call" : "kodos's FIN_WAIT1, traced"})`,
      },
      (woke.atUs - (finAt ?? exitAt)) / 1000,
    );
    if (states.available) {
      ctx.expectEqual(
        "kang's path",
        "ESTABLISHED>CLOSE_WAIT>LAST_ACK>CLOSE",
        states.path(kang.ipv4, port, "ESTABLISHED"),
      );
      ctx.expectThat(
        "kodos's path",
        /^ESTABLISHED>FIN_WAIT1>(FIN_WAIT2|CLOSING)>CLOSE$/.test(
          states.path(kodos.ipv4, SERVER_PORT, "ESTABLISHED", port),
        ),
        "ESTABLISHED>FIN_WAIT1>FIN_WAIT2 (or CLOSING)>CLOSE, then a TIME_WAIT mini-socket",
        states.path(kodos.ipv4, SERVER_PORT, "ESTABLISHED", port),
      );
    } else {
      ctx.say(`tracepoints unavailable (${states.reason}): state paths not checked`);
    }
  },
};
