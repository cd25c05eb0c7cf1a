#!/usr/bin/env node
// The agent as a program: a lab starts it inside a host and talks to it over stdin and stdout.
import { Console } from "node:console";
import { runAgent } from "./agent.js";

const USAGE =
  "usage: main.js --host NAME  (serves sockprobe agent requests, one JSON line each, on stdin/stdout)\n       main.js --check       (says whether the agent can run here: Node, the addon, a socket)";

// The host name from argv, or undefined when the usage is wrong.
function parseArgs(argv: readonly string[]): string | undefined {
  let host: string | undefined;
  if (argv.length === 2 && argv[0] === "--host") host = argv[1];
  else if (argv.length === 1 && argv[0]?.startsWith("--host=")) host = argv[0].slice("--host=".length);
  return host && !host.startsWith("-") ? host : undefined;
}

// What a provisioner asks before a lab counts on this host: the addon loads and makes a socket.
async function check(): Promise<void> {
  const { Socket } = await import("../sys/socket.js");
  const { release } = await import("node:os");
  Socket.create({ family: "IPv4" }).close();
  process.stdout.write(`sockprobe agent can run: Node ${process.version}, Linux ${release()}\n`);
}

async function main(): Promise<void> {
  if (process.argv[2] === "--check" && process.argv.length === 3) return check();
  const host = parseArgs(process.argv.slice(2));
  if (host === undefined) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(2);
  }
  // stdout carries protocol lines only: anything a library prints goes to stderr instead.
  const toStderr = new Console(process.stderr);
  console.log = toStderr.log.bind(toStderr);
  console.info = toStderr.info.bind(toStderr);
  console.debug = toStderr.debug.bind(toStderr);
  await runAgent(process.stdin, process.stdout, { host });
  // The last answers must reach the lab before the process goes.
  await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
  process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`sockprobe-agent: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
