module github.com/intakehq/intake/services/scheduler

go 1.26.0

require (
	github.com/intakehq/intake/pkg v0.0.0
	github.com/intakehq/intake/proto v0.0.0
)

require (
	github.com/go-co-op/gocron/v2 v2.21.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/jonboulle/clockwork v0.5.0 // indirect
	github.com/robfig/cron/v3 v3.0.1 // indirect
)

replace (
	github.com/intakehq/intake/pkg => ../../pkg
	github.com/intakehq/intake/proto => ../../proto
)
