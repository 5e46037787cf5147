package pgtlstest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/pgtlstest"
	"github.com/intakehq/intake/pkg/schema"
)

// connect opens a pool on url as the loader does (ParseConfig, then a
// ping; the API's pgxpool.New is the same parse) and reports whether the
// session is encrypted.
func connect(ctx context.Context, url string) (bool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return false, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return false, err
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return false, err
	}
	var ssl bool
	err = pool.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl)
	return ssl, err
}

// TestTLS checks the settings deploy/README.md documents for a PostgreSQL
// with TLS (CloudNativePG's): sslmode=verify-full with the server's CA in
// sslrootcert, in the URL or in PGSSLMODE and PGSSLROOTCERT.
func TestTLS(t *testing.T) {
	c := pgtlstest.Start(t)
	otherCA, err := pgtlstest.WriteOtherCA(t.TempDir())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := fmt.Sprintf("%s:%d", c.Host, c.Port)

	t.Run("verify-full with the server's CA", func(t *testing.T) {
		ssl, err := connect(ctx, c.URL("sslmode=verify-full&sslrootcert="+c.CAFile))
		require.NoError(t, err)
		require.True(t, ssl, "the session is encrypted")

		// The API's start: a pool on the URL, then the migrations.
		pool, err := pgxpool.New(ctx, c.URL("sslmode=verify-full&sslrootcert="+c.CAFile))
		require.NoError(t, err)
		defer pool.Close()
		require.NoError(t, schema.Migrate(ctx, pool))
	})
	t.Run("verify-full with another CA fails", func(t *testing.T) {
		_, err := connect(ctx, c.URL("sslmode=verify-full&sslrootcert="+otherCA))
		require.Error(t, err)
		require.Contains(t, err.Error(), addr, "the error names the server")
		require.Contains(t, err.Error(), "tls: failed to verify certificate")
		require.Contains(t, err.Error(), "x509: certificate signed by unknown authority")
	})
	t.Run("the server takes no connection without TLS", func(t *testing.T) {
		_, err := connect(ctx, c.URL("sslmode=disable"))
		require.ErrorContains(t, err, "no pg_hba.conf entry")
	})
	t.Run("PGSSLMODE and PGSSLROOTCERT, as the prod manifests set them", func(t *testing.T) {
		// The URL (CloudNativePG's, in the Secret intake-pg-app) has no
		// TLS settings: they come from the environment.
		t.Setenv("PGSSLMODE", "verify-full")
		t.Setenv("PGSSLROOTCERT", c.CAFile)
		ssl, err := connect(ctx, c.URL(""))
		require.NoError(t, err)
		require.True(t, ssl)

		t.Setenv("PGSSLROOTCERT", otherCA)
		_, err = connect(ctx, c.URL(""))
		require.ErrorContains(t, err, "x509: certificate signed by unknown authority")
	})
}
