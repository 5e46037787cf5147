module github.com/intakehq/intake/cmd

go 1.26

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

replace (
	github.com/intakehq/intake/api => ../api
	github.com/intakehq/intake/services/fetcher => ../services/fetcher
	github.com/intakehq/intake/services/loader => ../services/loader
	github.com/intakehq/intake/services/mapper => ../services/mapper
	github.com/intakehq/intake/services/scheduler => ../services/scheduler
)
