module github.com/intakehq/intake/services/mapper

go 1.26

require (
	github.com/intakehq/intake/pkg v0.0.0
	github.com/intakehq/intake/proto v0.0.0
)

replace (
	github.com/intakehq/intake/pkg => ../../pkg
	github.com/intakehq/intake/proto => ../../proto
)
