// sockprobe's public surface.
export * from "./sys/index.js";
