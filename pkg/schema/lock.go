package schema

import (
	"fmt"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

func lockerOption() (goose.ProviderOption, error) {
	l, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("schema: migration lock: %w", err)
	}
	return goose.WithSessionLocker(l), nil
}
