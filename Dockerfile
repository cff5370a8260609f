# syntax=docker/dockerfile:1
# mplp-context: build the TypeScript once, ship only the compiled code and production dependencies.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY gen ./gen
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    GRPC_HOST=0.0.0.0 \
    GRPC_PORT=50051 \
    PGLITE_DATA_DIR=/data/pglite
# On 0.0.0.0 the server refuses to start without authentication: pass a JWT key
# (-e AUTH_JWT_SECRET=… , AUTH_JWT_PUBLIC_KEY or AUTH_JWKS_FILE) or mutual TLS (TLS_CERT_FILE,
# TLS_KEY_FILE, TLS_CLIENT_CA_FILE), or -e ALLOW_UNAUTHENTICATED=true only on a network you trust.
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 50051
# The gRPC health service is the source of truth; this only checks the port accepts connections.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "require('net').connect(process.env.GRPC_PORT||50051,'127.0.0.1').on('connect',function(){process.exit(0)}).on('error',function(){process.exit(1)})"
CMD ["node", "dist/src/main.js"]
