#!/usr/bin/env node
// The sockprobe command line.
import { readFileSync } from "node:fs";

const HELP = `sockprobe: what the Linux kernel really does to TCP connections when things go wrong

usage: sockprobe <command> [options]

commands:
  version        print the version
  help           print this text
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/** Runs one command line; returns the exit code (0 ok, 1 a failed check, 2 bad usage). */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(HELP);
      return 0;
    case "version":
    case "--version":
      console.log(version());
      return rest.length ? 2 : 0;
    default:
      console.error(`sockprobe: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
      return 2;
  }
}

process.exitCode = await main(process.argv.slice(2));
