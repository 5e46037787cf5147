package source

import (
	"context"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// dialSFTP is replaced by the SFTP client (sftp.go).
func dialSFTP(context.Context, *intakev1.SftpConnection, Options) (Client, error) {
	return nil, Errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, nil, "sftp connections are not implemented yet")
}
