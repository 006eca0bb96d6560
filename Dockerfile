# Multi-stage build for anyone with access to a container registry:
#   docker build -t backstage-mcp --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg CREATED=$(date -u -d @$(git log -1 --format=%ct) +%Y-%m-%dT%H:%M:%SZ) .
# (add --build-arg VERSION=v1.2.3 for a release; without it the binary
# reports the commit's pseudo-version, see cmd/backstage-mcp/version.go)
# Without a registry, deploy/image/build.sh builds the same image FROM
# scratch with buildah and a locally built binary (make image).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -buildid= -X main.version=${VERSION} -X main.commit=${REVISION} -X main.date=${CREATED}" \
      -o /rootfs/backstage-mcp ./cmd/backstage-mcp \
 && mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp /rootfs/etc/backstage-mcp /rootfs/var/log/backstage-mcp \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && cp LICENSE /rootfs/LICENSE \
 && printf 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' >/rootfs/etc/passwd \
 && printf 'nonroot:x:65532:\n' >/rootfs/etc/group \
 && chmod 1777 /rootfs/tmp \
 && chown 65532:65532 /rootfs/var/log/backstage-mcp

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
COPY --from=build /rootfs/ /
LABEL org.opencontainers.image.title="backstage-mcp" \
      org.opencontainers.image.description="MCP server for the Backstage software catalog, under the user's identity" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/backstage-mcp/backstage-mcp" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      io.modelcontextprotocol.server.name="io.github.backstage-mcp/backstage-mcp"
USER 65532:65532
EXPOSE 8080
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
ENTRYPOINT ["/backstage-mcp"]
CMD ["serve", "--http", "0.0.0.0:8080", "--config", "/etc/backstage-mcp/config.yaml"]
