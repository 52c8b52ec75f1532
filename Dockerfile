# One image for the operator (/manager) and the gateway pods (/gatewaypod):
# gateway pods default to the operator's own image, so versions always match.
FROM golang:1.26 AS builder
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG IMG=ghcr.io/portico-dev/portico:v0.0.1
WORKDIR /workspace
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY gatewaypod/ gatewaypod/
COPY internal/ internal/
ENV CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH}
RUN go build -trimpath -ldflags "-s -w -X main.defaultImage=${IMG}" -o /out/manager ./cmd && \
    go build -trimpath -ldflags "-s -w" -o /out/gatewaypod ./cmd/gatewaypod

FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /out/manager /manager
COPY --from=builder /out/gatewaypod /gatewaypod
USER 65532:65532
ENTRYPOINT ["/manager"]
