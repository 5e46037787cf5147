# Static, non-root image holding every Intake binary. The container's command
# picks the service: `intake api`, `intake fetcher`, ... (see deploy/k8s).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    cd cmd && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./intake ./intakectl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/intake"]
