# syntax=docker/dockerfile:1
# One static, non-root image with the `intake` binary (and the `intakectl`
# CLI): the container's arguments pick the service, `intake api`,
# `intake fetcher`, … (deploy/k8s). Build from the repository's root:
#
#   docker build -t ghcr.io/intakehq/intake:0.1.0 .
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Static binaries: no cgo, so no libc in the final image; no build paths.
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
COPY . .
# The build uses go.work (every module of it is in the context).
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    cd cmd && go build -trimpath -ldflags="-s -w" -o /out/ ./intake ./intakectl

# Distroless static: CA certificates, tzdata and /etc/passwd, no shell.
FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.source="https://github.com/intakehq/intake" \
      org.opencontainers.image.description="Intake: recurring CSV imports into PostgreSQL"
COPY --from=build /out/intake /out/intakectl /usr/local/bin/
# nonroot (65532), by number, so that Kubernetes' runAsNonRoot can check it.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/intake"]
