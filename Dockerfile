# mock-smdp server image: `docker build -t mock-smdp .`, or `docker compose up` (docker-compose.yml).
# Stage 1 builds dist/ with the dev dependencies; stage 2 holds the runtime files only and runs as
# the unprivileged `node` user.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (tsc) needs the sources, copied next.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
COPY schemas ./schemas
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/schemas ./schemas
COPY --from=build /app/src/db/migrations ./src/db/migrations
COPY --from=build /app/src/console/page ./src/console/page
# The test PKI is generated into certs/ on first start, the embedded database lives in data/:
# both belong to the user the server runs as (mount volumes there to keep them).
RUN mkdir -p certs data && chown node:node certs data
USER node
ENV PORT=8443 LOG_FORMAT=json
EXPOSE 8443
VOLUME ["/app/certs", "/app/data"]
# /health answers 200 while the database answers (503 otherwise); HTTPS with the generated test PKI.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "require('https').get('https://127.0.0.1:'+process.env.PORT+'/health',{rejectUnauthorized:false},(r)=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"]
CMD ["node", "dist/src/cli.js", "serve"]
