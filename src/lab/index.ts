// The lab: hosts on virtual switches, faults, and evidence.

export { AgentClient } from "./agent-client.js";
export type { Host, HostProcess, HostSocket, HostState } from "./host.js";
export type { FaultEvent, HostOptions, LabOptions } from "./netns.js";
export { NetnsLab } from "./netns.js";
export { SysctlError } from "./sysctl.js";
