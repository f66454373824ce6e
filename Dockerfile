# syntax=docker/dockerfile:1
# Client Activity Tracker: presence server image.
#   docker build -t cat-presence .
#   docker run -p 3000:3000 -e CAT_SECRET=... -v cat-data:/data cat-presence

# Node.js 24, the current LTS line; `npm test` runs the suite on it as well as on the machine's
# Node (scripts/test.sh), with the same lockfile: better-sqlite3 12 and undici 7 serve both lines.
# ---------- build: compile TypeScript, build native addons, keep production deps ----------
FROM node:24-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 (the embedded activity log) compiles its addon when no prebuilt one is found.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*

COPY package.json package-lock.json ./
# --ignore-scripts: the root "prepare" script builds, and the sources are not here yet;
# the native addon is built on purpose just below.
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild better-sqlite3

COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY client-snippet ./client-snippet
COPY dashboard ./dashboard
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

# ---------- runtime: production dependencies, dist/, migrations ----------
FROM node:24-bookworm-slim AS runtime
WORKDIR /app

COPY package.json package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Applied at start (src/activity/database.ts finds drizzle/ beside package.json).
COPY drizzle ./drizzle
# Read at start: the snippet's bundle and language files, the dashboard's bundle.
COPY --from=build /app/client-snippet/dist ./client-snippet/dist
COPY client-snippet/lang ./client-snippet/lang
COPY --from=build /app/dashboard/dist ./dashboard/dist

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

# A young generation of up to 64 MiB per semi-space, so the per-heartbeat garbage dies young:
# at 100 000 contacts the default (16) spends several times as long in GC (bench/cpu.ts with
# BENCH_GC=1 prints the pauses). The same flags as `npm start`; the benchmarks read them from there.
CMD ["node", "--max-semi-space-size=64", "dist/src/main.js"]
