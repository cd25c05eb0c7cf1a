// A truss-like record of every call made through src/sys/, for all hosts on one clock.

/** One recorded call. */
export interface TranscriptEntry {
  /** Start of the call, µs since the transcript began. */
  readonly atUs: number;
  /** Which host made the call (a lab host name, or 'local'). */
  readonly host: string;
  readonly call: string;
  readonly args: readonly string[];
  /** The result rendered as text ('3', '22', '[POLLIN]'), absent on failure. */
  readonly result?: string;
  /** The errno name on failure, e.g. 'ECONNRESET'. */
  readonly error?: string;
  readonly errno?: number;
  readonly durationUs: number;
}

/** A clock shared by every host: entries from many sockets interleave in true order. */
export class Transcript {
  readonly entries: TranscriptEntry[] = [];
  readonly #originNs: bigint;
  readonly #originMs: number;

  constructor() {
    // performance.now() reads the same monotonic clock as hrtime without allocating a BigInt, so
    // recording stays cheap; the ns origin ties the transcript to tracepoint and pcap clocks.
    this.#originMs = performance.now();
    this.#originNs = process.hrtime.bigint();
  }

  /** µs since this transcript began. */
  nowUs(): number {
    return (performance.now() - this.#originMs) * 1000;
  }

  /** A CLOCK_MONOTONIC time in ns (process.hrtime's clock, as PollResult.doneNs) in µs on this transcript's clock. */
  usAt(monotonicNs: number): number {
    return (monotonicNs - Number(this.#originNs)) / 1000;
  }

  /** The origin on the process's monotonic clock (CLOCK_MONOTONIC ns), so other evidence can share it. */
  get originNs(): bigint {
    return this.#originNs;
  }

  record(entry: TranscriptEntry): void {
    this.entries.push(entry);
  }

  /** Lines like truss -d: `kang    126.177400  read(3, 1024)  Err#104 ECONNRESET  [21 µs]`. */
  format(options: { hosts?: readonly string[] } = {}): string {
    const rows = options.hosts ? this.entries.filter((e) => options.hosts?.includes(e.host)) : this.entries;
    const width = Math.max(4, ...rows.map((e) => e.host.length));
    return [...rows]
      .sort((a, b) => a.atUs - b.atUs)
      .map((e) => formatEntry(e, width))
      .join("\n");
  }
}

/** One transcript line. */
export function formatEntry(e: TranscriptEntry, hostWidth = 8): string {
  const at = (e.atUs / 1e6).toFixed(6).padStart(12);
  const outcome =
    e.error === undefined ? `= ${e.result ?? ""}` : e.errno ? `Err#${Math.abs(e.errno)} ${e.error}` : `Err ${e.error}`;
  return `${e.host.padEnd(hostWidth)} ${at}  ${e.call}(${e.args.join(", ")})  ${outcome}  [${Math.round(e.durationUs)} µs]`;
}
