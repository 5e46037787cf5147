package scheduler

import (
	"google.golang.org/protobuf/proto"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// fingerprint identifies a schedule's content: a changed fingerprint means
// the gocron job must be replaced.
func fingerprint(s *intakev1.Schedule) string {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(s)
	if err != nil {
		// A Schedule always marshals; fall back to the text form.
		return s.String()
	}
	return string(b)
}
