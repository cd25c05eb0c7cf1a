// The lab: hosts on virtual switches, faults, and evidence, on any backend.

export { AgentClient } from "./agent-client.js";
export { type CreateLabOptions, createLab } from "./create.js";
export type { Host, HostProcess, HostSocket, HostState } from "./host.js";
export {
  BACKENDS,
  type Backend,
  FAULTS,
  type Fault,
  type FaultEvent,
  type HostOptions,
  isUnsupportedFault,
  type Lab,
  type LabOptions,
  type StateEvent,
  type TcpInfoSample,
  type TraceStatus,
  UnsupportedFaultError,
} from "./lab.js";
export { NetnsLab } from "./netns/netns.js";
export { SysctlError } from "./sysctl.js";
