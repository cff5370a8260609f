/**
 * mplp-context's TypeScript SDK: `import { connect } from "mplp-context"`.
 *
 * The typed clients of ContextService and ParticipantService (protobuf-es messages, bigint for
 * int64), with identity on every call and safe retries; `watch()` and `watchMany()` (many contexts
 * on one stream) that resume by themselves;
 * `keepPresence()`; `updateState()` with optimistic concurrency; and error decoding.
 */
export { connect, MplpClient, type ConnectOptions, type ContextClient, type ParticipantClient, type StateChangeInit, type StateUpdate } from "./client.js";
export { codeName, describeError, grpcErrorOf, isGrpcError, isStatus, type ErrorDetails } from "./errors.js";
export { deleteVar, setVar, variablesOf } from "./state.js";
export { Presence, type PresenceOptions } from "./presence.js";
export { backoffDelay, DEFAULT_BACKOFF, READ_METHODS, REQUEST_ID_METHODS, retriesOnUnavailable, type BackoffOptions, type RetryNotice } from "./retry.js";
export { isResumable, type WatchOptions, type WatchUpdate } from "./watch.js";
export type { ManyWatchUpdate, WatchManyOptions } from "./watch-many.js";
// The messages and enums, so agents need no second import path.
export * from "../../gen/mplp/context/v1/context_pb.js";
export * from "../../gen/mplp/context/v1/context_service_pb.js";
export * from "../../gen/mplp/context/v1/event_pb.js";
export * from "../../gen/mplp/context/v1/participant_pb.js";
export * from "../../gen/mplp/context/v1/participant_service_pb.js";
export * from "../../gen/mplp/context/v1/priority_pb.js";
export * from "../../gen/mplp/context/v1/shared_state_pb.js";
export { status as GrpcStatus } from "@grpc/grpc-js";
