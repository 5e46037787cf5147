package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// metricSet is a scrape of a /metrics endpoint.
type metricSet []sample

// httpClient is the client of every /metrics and /readyz call: a server
// that does not answer within 10 s counts as failing.
var httpClient = &http.Client{Timeout: 10 * time.Second}

// scrape reads url (a /metrics endpoint).
func scrape(ctx context.Context, url string) (metricSet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	m, err := parseMetrics(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	return m, nil
}

// parseMetrics reads the Prometheus text exposition format (comments are
// skipped; timestamps ignored).
func parseMetrics(r io.Reader) (metricSet, error) {
	var out metricSet
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", n, line, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func parseSample(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return s, fmt.Errorf("no value")
	}
	s.name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, " ,")
			if strings.HasPrefix(line, "}") {
				line = line[1:]
				break
			}
			eq := strings.Index(line, `="`)
			if eq <= 0 {
				return s, fmt.Errorf("bad label")
			}
			key := line[:eq]
			line = line[eq+2:]
			var val strings.Builder
			closed := false
			for j := 0; j < len(line); j++ {
				c := line[j]
				if c == '\\' && j+1 < len(line) {
					j++
					switch line[j] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(line[j])
					}
					continue
				}
				if c == '"' {
					line, closed = line[j+1:], true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return s, fmt.Errorf("unterminated value of label %s", key)
			}
			s.labels[key] = val.String()
		}
	}
	fields := strings.Fields(line)
	if len(fields) < 1 || len(fields) > 2 {
		return s, fmt.Errorf("want a value and an optional timestamp")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("value: %w", err)
	}
	s.value = v
	return s, nil
}

// matches reports whether s carries every label of want.
func (s sample) matches(want map[string]string) bool {
	for k, v := range want {
		if s.labels[k] != v {
			return false
		}
	}
	return true
}

// value is the sum of the samples called name that carry the labels of want
// (nil: all), and whether there was any.
func (m metricSet) value(name string, want map[string]string) (float64, bool) {
	var sum float64
	found := false
	for _, s := range m {
		if s.name == name && s.matches(want) {
			sum += s.value
			found = true
		}
	}
	return sum, found
}

// bucket is one cumulative bucket of a histogram: Count observations ≤ LE.
type bucket struct {
	LE    float64
	Count float64
}

// histogram is a Prometheus histogram: cumulative buckets, ending with +Inf.
type histogram struct {
	Buckets []bucket
	Sum     float64
}

// Count is the number of observations.
func (h histogram) Count() float64 {
	if len(h.Buckets) == 0 {
		return 0
	}
	return h.Buckets[len(h.Buckets)-1].Count
}

// histogram reads histogram name (its _bucket and _sum series with the
// labels of want).
func (m metricSet) histogram(name string, want map[string]string) (histogram, error) {
	var h histogram
	for _, s := range m {
		if s.name != name+"_bucket" || !s.matches(want) {
			continue
		}
		le, err := strconv.ParseFloat(s.labels["le"], 64)
		if err != nil {
			return h, fmt.Errorf("%s: bucket le=%q: %w", name, s.labels["le"], err)
		}
		h.Buckets = append(h.Buckets, bucket{LE: le, Count: s.value})
	}
	if len(h.Buckets) == 0 {
		return h, fmt.Errorf("no histogram %s in the scrape", name)
	}
	slices.SortFunc(h.Buckets, func(a, b bucket) int { return cmpFloat(a.LE, b.LE) })
	if !math.IsInf(h.Buckets[len(h.Buckets)-1].LE, 1) {
		return h, fmt.Errorf("%s: no +Inf bucket", name)
	}
	h.Sum, _ = m.value(name+"_sum", want)
	return h, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sub is h minus an earlier scrape of the same histogram: the observations
// made between the two.
func (h histogram) sub(before histogram) (histogram, error) {
	if len(before.Buckets) == 0 {
		return h, nil
	}
	if len(before.Buckets) != len(h.Buckets) {
		return h, fmt.Errorf("the histogram's buckets changed between scrapes")
	}
	d := histogram{Sum: h.Sum - before.Sum, Buckets: make([]bucket, len(h.Buckets))}
	for i, b := range h.Buckets {
		if before.Buckets[i].LE != b.LE {
			return h, fmt.Errorf("the histogram's buckets changed between scrapes")
		}
		d.Buckets[i] = bucket{LE: b.LE, Count: b.Count - before.Buckets[i].Count}
	}
	return d, nil
}

// quantile estimates the q-quantile as Prometheus's histogram_quantile
// does: linear interpolation inside the bucket that holds it (from 0 for
// the first bucket); in the +Inf bucket, the largest finite bound. NaN
// when the histogram is empty.
func (h histogram) quantile(q float64) float64 {
	total := h.Count()
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i, b := range h.Buckets {
		if b.Count >= rank {
			if math.IsInf(b.LE, 1) {
				if i == 0 {
					return math.NaN()
				}
				return h.Buckets[i-1].LE
			}
			if b.Count == below {
				return b.LE
			}
			return lower + (b.LE-lower)*(rank-below)/(b.Count-below)
		}
		lower, below = b.LE, b.Count
	}
	return math.NaN()
}

// fractionAtMost is the share of observations ≤ le, when le is a bucket
// bound (exact), and false otherwise.
func (h histogram) fractionAtMost(le float64) (float64, bool) {
	total := h.Count()
	for _, b := range h.Buckets {
		if b.LE == le && total > 0 {
			return b.Count / total, true
		}
	}
	return 0, false
}

// bounds lists the finite bucket bounds, for the report.
func (h histogram) bounds() string {
	var parts []string
	for _, b := range h.Buckets {
		if !math.IsInf(b.LE, 1) {
			parts = append(parts, strconv.FormatFloat(b.LE, 'g', -1, 64))
		}
	}
	return strings.Join(parts, " ")
}
