module github.com/intakehq/intake/cmd

go 1.26.0

require (
	github.com/intakehq/intake/pkg v0.0.0
	github.com/intakehq/intake/proto v0.0.0
)

replace (
	github.com/intakehq/intake/pkg => ../pkg
	github.com/intakehq/intake/proto => ../proto
)

require (
	github.com/intakehq/intake/api v0.0.0
	github.com/intakehq/intake/services/fetcher v0.0.0
	github.com/intakehq/intake/services/loader v0.0.0
	github.com/intakehq/intake/services/mapper v0.0.0
	github.com/intakehq/intake/services/scheduler v0.0.0
)

require (
	github.com/antithesishq/antithesis-sdk-go v0.8.0-default-no-op // indirect
	github.com/google/go-tpm v0.9.8 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/pgx/v5 v5.12.0 // indirect
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/minio/highwayhash v1.0.4 // indirect
	github.com/nats-io/jwt/v2 v2.8.2 // indirect
	github.com/nats-io/nats-server/v2 v2.15.2 // indirect
	github.com/nats-io/nats.go v1.55.0 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.48.0 // indirect
	golang.org/x/text v0.44.0 // indirect
	golang.org/x/time v0.16.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20261110000943-09e21b237f2c // indirect
	google.golang.org/grpc v1.85.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace (
	github.com/intakehq/intake/api => ../api
	github.com/intakehq/intake/services/fetcher => ../services/fetcher
	github.com/intakehq/intake/services/loader => ../services/loader
	github.com/intakehq/intake/services/mapper => ../services/mapper
	github.com/intakehq/intake/services/scheduler => ../services/scheduler
)
