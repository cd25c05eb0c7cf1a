// sockprobe's public surface.

export * from "./lab/index.js";
export * from "./sys/index.js";
