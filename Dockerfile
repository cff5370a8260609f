# syntax=docker/dockerfile:1
# mplp-context: build the TypeScript once, ship only the compiled code and production dependencies.
# Build: docker build -t mplp-context:0.1.0 .   (README "Container image" says how to run it.)

# Pinned to the Node 24 LTS line on Debian bookworm, slim: glibc (PGlite's WASM and the native
# addons need nothing more) without the compilers and docs of the full image.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Dev dependencies too: the TypeScript compiler lives there. The cache mount keeps re-builds fast
# without putting the npm cache in a layer.
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY gen ./gen
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim AS runtime
# NODE_ENV=production: libraries take their production paths; npm ci below omits dev dependencies.
ENV NODE_ENV=production \
    GRPC_HOST=0.0.0.0 \
    GRPC_PORT=50051 \
    METRICS_HOST=0.0.0.0 \
    METRICS_PORT=9464 \
    PGLITE_DATA_DIR=/data/pglite
# On 0.0.0.0 the server refuses to start without authentication: pass a JWT key
# (-e AUTH_JWT_SECRET=… , AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_FILE) or mutual TLS (TLS_CERT_FILE,
# TLS_KEY_FILE, TLS_CLIENT_CA_FILE), or -e ALLOW_UNAUTHENTICATED=true only on a network you trust.
WORKDIR /app
COPY --chown=root:root package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund
# Owned by root and not writable by the service user: the code cannot be changed at run time.
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
COPY deploy/docker/grpc-health-probe.mjs ./grpc-health-probe.mjs
# Only the embedded database's directory is writable (used when DATABASE_URL is unset).
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
# The `node` user (uid 1000) of the official image: never root.
USER node
EXPOSE 50051 9464
# Real gRPC health (grpc.health.v1 Check → SERVING), not just an open port: NOT_SERVING during
# migrations and while draining. Plaintext only; with TLS rely on the orchestrator's probes.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "grpc-health-probe.mjs"]
# node as PID 1 directly (no npm, no shell): SIGTERM reaches the process, which drains and exits.
# The app handles SIGTERM/SIGINT itself, so no init is needed; run with --init to also reap zombies.
CMD ["node", "dist/src/main.js"]
