// The typed syscall layer: everything a scenario may call on a socket.
export * from "./constants.js";
export { errnoName, errnoNumber, SysError, WaitTimeoutError } from "./errors.js";
export type { NativeAddress, SockprobeNative } from "./native.js";
export { native } from "./native.js";
export type { PollOptions, PollOutcome, PollRequest, PollResult } from "./poll.js";
export { cancelAllWaits, pendingWaits, poll, pollNow } from "./poll.js";
export type { IntOption, RecvFlag, SendFlag, SockAddr, SocketOptions, WaitOptions } from "./socket.js";
export { Netns, Socket } from "./socket.js";
export type { TcpInfo, TcpInfoField } from "./tcp-info.js";
export { parseTcpInfo, TCP_CA_STATES, TCP_INFO_FIELDS, TCP_INFO_MAX_SIZE, TCP_STATES } from "./tcp-info.js";
export type { TranscriptEntry } from "./transcript.js";
export { formatEntry, Transcript } from "./transcript.js";
