package source

import (
	"context"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// dialS3 is replaced by the S3 client (s3.go).
func dialS3(context.Context, *intakev1.S3Connection, Options) (Client, error) {
	return nil, Errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, nil, "s3 connections are not implemented yet")
}
