# syntax=docker/dockerfile:1
# Client Activity Tracker: presence server image.
#   docker build -t cat-presence .
#   docker run -p 3000:3000 -e CAT_SECRET=... -v cat-data:/data cat-presence

# ---------- build: compile TypeScript to dist/ ----------
FROM node:20-bookworm-slim AS build
WORKDIR /app

COPY package.json package-lock.json ./
# --ignore-scripts: the "prepare" script builds, and the sources are not here yet.
RUN npm ci --ignore-scripts --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && if [ -d src/presence/lua ]; then \
      mkdir -p dist/src/presence/lua \
      && cp -R src/presence/lua/. dist/src/presence/lua/; \
    fi

# ---------- runtime: production dependencies + dist/ ----------
FROM node:20-bookworm-slim AS runtime
WORKDIR /app

COPY package.json package-lock.json ./
# No install scripts run here (the root "prepare" would try to build). If a dependency
# with a native addon is ever added, rebuild it here explicitly: `npm rebuild <name>`.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

COPY --from=build /app/dist ./dist

RUN mkdir -p /data && chown node:node /data

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    CAT_DATA_DIR=/data

VOLUME /data
EXPOSE 3000
USER node

HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

CMD ["node", "dist/src/main.js"]
