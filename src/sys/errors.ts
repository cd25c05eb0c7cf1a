// Errors shaped exactly like Node's own system errors.
import { constants as osConstants } from "node:os";
import { getSystemErrorMap } from "node:util";

const uvErrors = getSystemErrorMap();
const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** The symbolic name of an errno (positive or negative), e.g. 104 -> 'ECONNRESET'. */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  return uvErrors.get(-n)?.[0] ?? errnoNames.get(n) ?? `E${n}`;
}

/** The errno number of a name, e.g. 'ECONNRESET' -> 104. */
export function errnoNumber(code: string): number {
  const n = (osConstants.errno as Record<string, number>)[code];
  if (n === undefined) throw new TypeError(`unknown errno name ${JSON.stringify(code)}`);
  return n;
}

/** A failed system call: code 'ECONNRESET', errno -104, syscall 'read'. */
export class SysError extends Error {
  declare readonly code: string;
  declare readonly errno: number;
  declare readonly syscall: string;
  constructor(errno: number, syscall: string, options?: ErrorOptions) {
    const n = -Math.abs(errno);
    const code = errnoName(n);
    const desc = uvErrors.get(n)?.[1] ?? "unknown error";
    super(`${code}: ${desc}, ${syscall}`, options);
    Object.defineProperties(this, {
      code: { value: code, enumerable: true },
      errno: { value: n, enumerable: true },
      syscall: { value: syscall, enumerable: true },
    });
  }
}
Object.defineProperty(SysError.prototype, "name", { value: "SysError" });

/** A wait that sockprobe itself bounded ran out; distinct from the kernel's ETIMEDOUT. */
export class WaitTimeoutError extends Error {
  declare readonly code: "ESOCKPROBE_WAIT_TIMEOUT";
  constructor(what: string, timeoutMs: number) {
    super(`${what} did not complete within ${timeoutMs} ms`);
    Object.defineProperty(this, "code", { value: "ESOCKPROBE_WAIT_TIMEOUT", enumerable: true });
  }
}
Object.defineProperty(WaitTimeoutError.prototype, "name", { value: "WaitTimeoutError" });

/** Returns a native result, or throws the SysError its negative value stands for. */
export function check(ret: number, syscall: string): number {
  if (ret < 0) throw new SysError(ret, syscall);
  return ret;
}
