package source

import (
	"context"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// dialHTTP is replaced by the HTTP client (httpclient.go).
func dialHTTP(context.Context, *intakev1.HttpConnection, Options) (Client, error) {
	return nil, Errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, nil, "http connections are not implemented yet")
}

// dialLocal is replaced by the local directory client (localclient.go).
func dialLocal(*intakev1.LocalConnection, Options) (Client, error) {
	return nil, Errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, nil, "local connections are not implemented yet")
}
