import t from "tap";
import { Netns } from "../../src/sys/index.js";

t.test("netns", async (t) => {
  const ns = Netns.create();
  t.ok(ns.fd > 0);
  ns.close();
});
