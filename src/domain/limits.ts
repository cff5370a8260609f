/** Sizes and counts the contract fixes, and the ones it leaves to us (chosen to be generous). */
export const LIMITS = {
  nameChars: 255,
  descriptionChars: 1000,
  tags: 50,
  tagChars: 64,
  categoryChars: 100,
  roleChars: 64,
  requiredRoles: 10,
  capabilityChars: 64,
  requiredCapabilities: 50,
  maxParticipants: { min: 1, max: 1000 },
  maxSessions: { min: 1, max: 1000 },
  /** A year: longer idle timeouts are surely mistakes. 0 = never expires. */
  timeoutMs: { min: 0, max: 31_536_000_000 },
  cleanupDelayMs: { min: 0, max: 31_536_000_000 },
  customDataBytes: 64 * 1024,
  jsonDepth: 32,
  /** The default of SHARED_STATE_MAX_BYTES; the service passes the configured value. */
  sharedStateBytes: 1024 * 1024,
  /** SET/DELETE changes in one UpdateSharedState. */
  stateChanges: 1000,
  /** Segments of a dotted path into variables ("a.b.c" has 3). */
  statePathSegments: 32,
  stateSegmentChars: 255,
  stateItems: 1000,
  stateItemChars: 255,
  reasonChars: 500,
  requestIdChars: 128,
  principalChars: 255,
  agentIdChars: 255,
  displayNameChars: 100,
  roles: 10,
  capabilities: 50,
  participantMetadataBytes: 64 * 1024,
  /** GetContext's FULL view lists at most this many participants. */
  fullViewParticipants: 1000,
  batchSize: 100,
  pageSizeDefault: 20,
  pageSizeMax: 1000,
} as const;
