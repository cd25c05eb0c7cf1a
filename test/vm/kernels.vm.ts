// Kernels: names from apt, the bzImage header, the cache, and every bad input as a KernelError.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import {
  bzImageRelease,
  compareVersions,
  debianPackagesFor,
  KernelError,
  moduleChain,
  resolveKernel,
  seriesOf,
} from "../../src/vm/kernels.js";

t.test("versions sort as sort -V does", async (t) => {
  t.ok(compareVersions("linux-image-6.1.0-9-amd64", "linux-image-6.1.0-56-amd64") < 0);
  t.ok(compareVersions("6.12.117", "6.12.99") > 0);
  t.equal(compareVersions("6.1.0", "6.1.0"), 0);
  t.equal(seriesOf("6.12.117+deb12-amd64"), "6.12");
});

t.test("a series names only its own plain amd64 images", async (t) => {
  const names = [
    "linux-image-6.1.0-9-amd64",
    "linux-image-6.1.0-56-amd64",
    "linux-image-6.1.0-56-cloud-amd64",
    "linux-image-6.1.0-56-rt-amd64",
    "linux-image-6.1.0-56-amd64-dbg",
    "linux-image-6.1.0-56-amd64-unsigned",
    "linux-image-6.12.117+deb12-amd64",
    "linux-image-6.12.99+deb12-amd64",
    "linux-image-amd64",
  ];
  t.same(debianPackagesFor("6.1", names), ["linux-image-6.1.0-9-amd64", "linux-image-6.1.0-56-amd64"]);
  t.same(debianPackagesFor("6.12", names), ["linux-image-6.12.99+deb12-amd64", "linux-image-6.12.117+deb12-amd64"]);
  t.same(debianPackagesFor("6.11", names), []);
});

t.test("bad kernels are KernelErrors that say what to do", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "sockprobe-test-kernel-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const notKernel = join(dir, "vmlinuz");
  writeFileSync(notKernel, "not a kernel at all".repeat(100));
  await t.rejects(resolveKernel(join(dir, "missing")), { name: "KernelError", message: /does not exist/ });
  await t.rejects(resolveKernel(dir), { name: "KernelError", message: /is not a file/ });
  await t.rejects(resolveKernel(notKernel), {
    name: "KernelError",
    message: /not a kernel image \(no bzImage header\)/,
  });
  await t.rejects(resolveKernel("linux"), {
    name: "KernelError",
    message: /unknown kernel "linux": give `host`, a Debian series such as 6\.1 or 6\.12, or a path/,
  });
  await t.rejects(resolveKernel("9.99"), {
    name: "KernelError",
    message: /no Debian kernel package linux-image-9\.99…-amd64/,
  });
  t.throws(() => bzImageRelease(notKernel), KernelError);
});

t.test("a Debian series is fetched once, then read from the cache", async (t) => {
  const k = await resolveKernel("6.12");
  t.match(k.release, /^6\.12\.\d+.*-amd64$/);
  t.equal(bzImageRelease(k.image), k.release, "the image's own header names the same release");
  t.equal(k.source.kind, "debian");
  const again = await resolveKernel("6.12");
  t.same(again, k, "the second time comes from the cache");
  const chain = await moduleChain(k, ["9p"]);
  t.ok(
    chain.some((m) => /\/9p\.ko/.test(m)),
    "9p is a module in Debian's 6.12, found with its dependencies",
  );
  await t.rejects(moduleChain(k, ["no_such_module"]), { name: "KernelError", message: /has no no_such_module/ });
});
