// The kernel a scenario runs on, as the model needs it: its release and which knobs it has. A rule
// that changed upstream is detected by the knob that came with it where there is one (a missing
// sysctl means the behavior from before it existed), by the release otherwise.

/** What the model knows of a kernel. */
export interface KernelFacts {
  /** `uname -r`: `6.12.117+deb12-amd64`. */
  readonly release: string;
  /** Sysctls probed on a host of the lab: present or not. */
  readonly sysctls: ReadonlyMap<string, boolean>;
}

/** A behavior that changed upstream, with how to tell whether a kernel has it. */
export interface KernelRule {
  readonly id: string;
  /** What the kernel does when the rule applies. */
  readonly behavior: string;
  /** What it did before. */
  readonly before: string;
  /** The upstream commit's title, and the release it first shipped in. */
  readonly commit: string;
  readonly since: string;
  /** Where in the kernel's source it lives. */
  readonly source: string;
  readonly detect: { readonly sysctl: string } | { readonly release: string };
}

/** `[6, 12, 117]` from `6.12.117+deb12-amd64`; missing parts are 0. */
export function releaseNumbers(release: string): [number, number, number] {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : [0, 0, 0];
}

/** Whether `release` is at least `min` (`6.5`). */
export function releaseAtLeast(release: string, min: string): boolean {
  const a = releaseNumbers(release);
  const b = releaseNumbers(min);
  for (let i = 0; i < 3; i++) if ((a[i] as number) !== (b[i] as number)) return (a[i] as number) > (b[i] as number);
  return true;
}

/** Whether the kernel has the rule's behavior. */
export function ruleApplies(rule: KernelRule, k: KernelFacts): boolean {
  if ("sysctl" in rule.detect) {
    const has = k.sysctls.get(rule.detect.sysctl);
    if (has === undefined) throw new Error(`the model did not probe ${rule.detect.sysctl} for rule ${rule.id}`);
    return has;
  }
  return releaseAtLeast(k.release, rule.detect.release);
}

/** The rules the model applies, each cited where it changed upstream. */
export const KERNEL_RULES = {} satisfies Record<string, KernelRule>;

/** Every sysctl a rule is detected by: what a lab probes once per scenario. */
export function probedSysctls(rules: Readonly<Record<string, KernelRule>> = KERNEL_RULES): string[] {
  return [...new Set(Object.values(rules).flatMap((r) => ("sysctl" in r.detect ? [r.detect.sysctl] : [])))];
}
