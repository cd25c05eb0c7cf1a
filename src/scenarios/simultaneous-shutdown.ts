// Simultaneous shutdown: when both sides half-close at once a response is lost without any error; an asymmetric termination loses nothing.
import type { HostSocket } from "../lab/host.js";
import { redeliveryBoundMs } from "../model/close.js";
import { tolerance } from "../model/tcp.js";
import { POLLERR, POLLIN, POLLRDHUP } from "../sys/constants.js";
import { errnoName } from "../sys/errors.js";
import type { Scenario, ScenarioContext } from "./scenario.js";
import { connection, kangAndKodos, SERVER_PORT, stateChanges, tcpTimers, waitForRow } from "./steps.js";

// Requests answered while both sides run normally, before the shutdown.
const ANSWERED = 3;
// The application-level notice of the asymmetric protocol: the server is shutting down, but keeps serving.
const NOTICE = "SHUTTING DOWN";
const END = "EOF";

// Reads newline-terminated messages: the next line, "EOF" at the end of the stream, or an errno name.
function lines(ctx: ScenarioContext, host: string, sock: HostSocket, boundMs: number): () => Promise<string> {
  let buf = "";
  return async () => {
    for (;;) {
      const nl = buf.indexOf("\n");
      if (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        return line;
      }
      const r = await ctx.attempt(host, "read", () => sock.readAsync(4096, { timeoutMs: boundMs }));
      if (!r.ok || r.value === undefined) return r.code ?? "error";
      if (r.value.length === 0) return END;
      buf += r.value.toString();
    }
  };
}

/** How one run ended, for the side-by-side comparison. */
interface Tally {
  /** Requests kodos read, each owed a response. */
  owed: number;
  received: number;
  clientErrors: string[];
  serverErrors: string[];
  clientPort: number;
  /** Requests the server read after the shutdowns crossed. */
  late: string[];
  /** What kang's last read returned. */
  lastRead: string;
}

// One run of the same client against a server that either half-closes at once (symmetric) or
// first announces its shutdown and half-closes only after the client's FIN (asymmetric).
async function run(ctx: ScenarioContext, listener: HostSocket, asymmetric: boolean): Promise<Tally> {
  const { lab } = ctx;
  const kang = lab.host("kang");
  const kodos = lab.host("kodos");
  const which = asymmetric ? "asymmetric" : "symmetric";
  const { client, server, port: clientPort } = await connection(kang, kodos, listener);
  const boundMs = redeliveryBoundMs(await tcpTimers(client));
  const clientLine = lines(ctx, "kang", client, boundMs);
  const serverLine = lines(ctx, "kodos", server, boundMs);
  const clientErrors: string[] = [];
  const serverErrors: string[] = [];
  const responses: string[] = [];
  const late: string[] = [];
  let lastRead = "";

  for (let n = 1; n <= ANSWERED; n++) {
    await client.write(`REQ ${n}\n`);
    const req = await serverLine();
    await server.write(`RSP ${req.slice(4)}\n`);
    responses.push(await clientLine());
  }
  ctx.say(
    `${which}: ${ANSWERED} requests answered; kang's last request and half-close cross kodos's ${asymmetric ? "shutdown notice" : "shutdown(SHUT_WR)"}`,
  );

  // Neither side's segments get through until both have acted: the FINs (or the notice) cross.
  await lab.partition([kang], [kodos]);
  if (asymmetric) {
    ctx.expectOk(
      await ctx.attempt("kodos", `${which}: write notice`, () => server.write(`${NOTICE}\n`)),
      NOTICE.length + 1,
    );
  } else {
    ctx.expectOk(await ctx.attempt("kodos", `${which}: shutdown(SHUT_WR)`, () => server.shutdown("SHUT_WR")));
  }
  await client.write(`REQ ${ANSWERED + 1}\n`);
  await client.shutdown("SHUT_WR");
  const crossed = [(await client.tcpInfo()).stateName, (await server.tcpInfo()).stateName].join(", ");
  ctx.expectEqual(
    `${which}: states as the shutdowns cross (kang, kodos)`,
    asymmetric ? "FIN_WAIT1, ESTABLISHED" : "FIN_WAIT1, FIN_WAIT1",
    crossed,
  );
  await lab.heal();
  ctx.say(`${which}: the partition heals; the crossed segments arrive by retransmission`);

  // The server answers every request it reads and closes at EOF; the symmetric one's answers fail,
  // its sending side being shut already.
  const serve = async () => {
    for (;;) {
      const req = await serverLine();
      if (req === END) break;
      if (!req.startsWith("REQ ")) {
        serverErrors.push(req);
        break;
      }
      late.push(req);
      const w = await ctx.attempt("kodos", `${which}: write response`, () => server.write(`RSP ${req.slice(4)}\n`));
      if (!w.ok) {
        serverErrors.push(w.code ?? "error");
        if (!asymmetric) ctx.expectErrno(w, "EPIPE", { headline: true });
      }
    }
    await server.close();
  };
  // The client reads every response until EOF, and notes any sign of an error.
  const consume = async () => {
    for (;;) {
      const line = await clientLine();
      lastRead = line;
      if (line === END) break;
      // The client is the classic one: it has already sent its last request and half-closed, so
      // the notice asks nothing more of it.
      if (line === NOTICE) continue;
      if (!line.startsWith("RSP ")) {
        clientErrors.push(line);
        break;
      }
      responses.push(line);
    }
    const p = await client.poll(POLLIN | POLLRDHUP, 0);
    if (((p.outcomes[0]?.revents ?? 0) & POLLERR) !== 0) clientErrors.push("POLLERR");
    const err = await client.takeError();
    if (err !== 0) clientErrors.push(`SO_ERROR ${errnoName(err)}`);
  };
  await Promise.all([serve(), consume()]);
  ctx.observe(`${which}: responses kang read`, responses.join(", "));
  ctx.observe(`${which}: requests kodos read after the shutdowns crossed`, late.join(", "));
  // Counted from what kodos read, so a request lost on the way would show here.
  return {
    owed: ANSWERED + late.length,
    received: responses.length,
    clientErrors,
    serverErrors,
    clientPort,
    late,
    lastRead,
  };
}

export const scenario: Scenario = {
  name: "simultaneous-shutdown",
  seed: '001_af96411e377219e9.txt ("So, what can go possibly wrong?" to the asymmetric terminal handshake)',
  question:
    "When the server half-closes at the moment the client sends its last request and half-closes, is a response lost, and does anyone see an error; and does an asymmetric termination lose nothing?",
  seedSays:
    "The server half-closes, then receives a request: it can process it but cannot send the response, so it closes, which sends FIN. The client takes the FIN to mean no more responses, yet a response was owed: the half-close's reliability is broken, and no error says so. The fix is asymmetric: the server first sends an application-level 'I am shutting down' message and keeps reading and answering; the client finishes and does the classic half-close; the server half-closes after it.",
  linux:
    "As the seed says. The server's write after its own shutdown(SHUT_WR) fails with EPIPE (tcp_sendmsg: SEND_SHUTDOWN, with MSG_NOSIGNAL instead of SIGPIPE); it reads the late request normally, since only its sending side is shut. The client's FIN_WAIT1 meets the server's FIN: a simultaneous close (FIN_WAIT1 to CLOSING on whichever side gets the other's FIN first, here by retransmission once the crossing ends), and both ends then hold TIME_WAIT, not only the one that closed first. The client reads 0 with no POLLERR and SO_ERROR 0: TCP did its job, the loss is the application's.",
  faults: ["partition", "heal"],
  timeoutMs: 15_000,
  async run(ctx) {
    const { lab } = ctx;
    const { kang, kodos, listener } = await kangAndKodos(lab);

    const sym = await run(ctx, listener, false);
    const asym = await run(ctx, listener, true);

    // The last request does reach kodos in both runs: only its answer can be missing.
    ctx.expectEqual("symmetric: late requests kodos read", `REQ ${ANSWERED + 1}`, sym.late.join(", "));
    ctx.expectEqual("asymmetric: late requests kodos read", `REQ ${ANSWERED + 1}`, asym.late.join(", "));
    ctx.expectEqual("symmetric: kang's last read", END, sym.lastRead, { headline: true });
    ctx.expectEqual("asymmetric: kang's last read", END, asym.lastRead);
    ctx.expectEqual("symmetric: responses owed to kang", ANSWERED + 1, sym.owed);
    ctx.expectEqual("symmetric: responses kang received", ANSWERED, sym.received, { headline: true });
    ctx.expectEqual("symmetric: errors kang saw", "none", sym.clientErrors.join(", ") || "none", { headline: true });
    ctx.expectEqual("symmetric: errors kodos saw", "EPIPE", sym.serverErrors.join(", ") || "none");
    ctx.expectEqual("asymmetric: responses owed to kang", ANSWERED + 1, asym.owed);
    ctx.expectEqual("asymmetric: responses kang received", asym.owed, asym.received, { headline: true });
    ctx.expectEqual("asymmetric: errors kang saw", "none", asym.clientErrors.join(", ") || "none", { headline: true });
    ctx.expectEqual("asymmetric: errors kodos saw", "none", asym.serverErrors.join(", ") || "none");

    // Who holds TIME_WAIT: both ends after the crossed FINs; only the client after the asymmetric close.
    const tw = async (port: number) => {
      const bound = tolerance(0);
      const onKang = await waitForRow(kang, (r) => r.local.port === port && r.state === "TIME_WAIT", bound);
      const onKodos = await waitForRow(kodos, (r) => r.peer.port === port && r.state === "TIME_WAIT", bound);
      return [onKang ? "kang" : "", onKodos ? "kodos" : ""].filter(Boolean).join(" and ") || "neither";
    };
    ctx.expectEqual("symmetric: in TIME_WAIT", "kang and kodos", await tw(sym.clientPort), { headline: true });
    ctx.expectEqual("asymmetric: in TIME_WAIT", "kang", await tw(asym.clientPort), { headline: true });

    const states = await stateChanges(lab);
    if (states.available) {
      const kangPath = states.path(kang.ipv4, sym.clientPort, "ESTABLISHED");
      const kodosPath = states.path(kodos.ipv4, SERVER_PORT, "ESTABLISHED", sym.clientPort);
      const crossed = /^ESTABLISHED>FIN_WAIT1>(FIN_WAIT2|CLOSING)>CLOSE$/;
      ctx.expectThat(
        "symmetric: both paths a simultaneous close",
        crossed.test(kangPath) && crossed.test(kodosPath) && `${kangPath}${kodosPath}`.includes("CLOSING"),
        "each ESTABLISHED>FIN_WAIT1>(FIN_WAIT2|CLOSING)>CLOSE, at least one through CLOSING",
        `kang ${kangPath}; kodos ${kodosPath}`,
      );
      ctx.expectEqual(
        "asymmetric: kodos's path",
        "ESTABLISHED>CLOSE_WAIT>LAST_ACK>CLOSE",
        states.path(kodos.ipv4, SERVER_PORT, "ESTABLISHED", asym.clientPort),
      );
      const fin1 = states.enteredAt(kang.ipv4, sym.clientPort, "FIN_WAIT1");
      const done = states.enteredAt(kang.ipv4, sym.clientPort, "CLOSE");
      if (fin1 !== undefined && done !== undefined)
        ctx.observe(
          "symmetric: kang's FIN_WAIT1 to CLOSE (retransmissions after the heal)",
          Math.round((done - fin1) / 1000),
          "ms",
        );
    } else {
      ctx.say(`tracepoints unavailable (${states.reason}): state paths not checked`);
    }
  },
};
