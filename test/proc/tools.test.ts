// The programs sockprobe runs: a missing one is named with the package that has it.
import t from "tap";
import { requireTools } from "../../src/proc/tools.js";

t.test("missing programs are named with the package to install", async (t) => {
  t.throws(
    () => requireTools(["ip", "sockprobe-no-such-tool"]),
    /`sockprobe-no-such-tool`.*apt-get install -y sockprobe-no-such-tool/,
  );
  t.doesNotThrow(() => requireTools());
});
