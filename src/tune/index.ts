// `sockprobe tune`: what sysctls mean for connections, and --verify against this kernel.
export { formatVerify, TUNE_HELP, type TuneIo, tuneCommand } from "./command.js";
export { formatMeaning, type MeaningOptions, type MeaningRow, meaningRows } from "./meaning.js";
export {
  defaultSettings,
  type KernelFacts,
  lanRtoMs,
  resolveSettings,
  type SynGiveUp,
  synGiveUp,
  type TuneSettings,
} from "./model.js";
export {
  kernelFacts,
  parseSysctlText,
  readSysctlFile,
  readSysctlsInForce,
  type SysctlFile,
  SysctlFileError,
} from "./parse.js";
export { type CheckedSysctls, checkSysctls, type VerifyOptions, type VerifyRow, verifyTuning } from "./verify.js";
