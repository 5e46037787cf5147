package schedule_test

import (
	"testing"
	"time"

	"github.com/intakehq/intake/pkg/schedule"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

func BenchmarkNext(b *testing.B) {
	for name, s := range map[string]*intakev1.Schedule{
		"every 5 minutes": everyMinutes("Europe/Berlin", 5),
		"hourly":          hourly("Europe/Berlin", 45),
		"daily":           daily("Europe/Berlin", 6, 30),
		"weekly":          weekly("Europe/Berlin", 6, 30, mon, fri),
		"monthly":         lastDay("Europe/Berlin", 6, 30),
		"cron minutely":   cron("Europe/Berlin", "* * * * *"),
		"cron workhours":  cron("Europe/Berlin", "*/15 9-17 * * 1-5"),
	} {
		b.Run(name, func(b *testing.B) {
			c, err := schedule.Parse(s)
			if err != nil {
				b.Fatal(err)
			}
			t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for b.Loop() {
				t = c.Next(t)
			}
		})
	}
}
