// Package jobfile reads a job definition written in YAML or JSON. The file
// uses the proto JSON names of intake.v1.Job (displayName or display_name,
// enum values such as OBJECT_TYPE_ACCOUNTS), so what `intakectl job get -o
// json` prints can be edited and fed back.
package jobfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Read reads and parses the job file at path; "-" reads standard input.
func Read(path string, stdin io.Reader) (*intakev1.Job, error) {
	var (
		data []byte
		err  error
	)
	if path == "-" {
		data, err = io.ReadAll(stdin)
		path = "standard input"
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read job file: %w", err)
	}
	job, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return job, nil
}

// Parse turns a YAML or JSON document into a Job. Unknown fields are errors.
func Parse(data []byte) (*intakev1.Job, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("the job file is empty")
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	if _, ok := doc.(map[string]any); !ok {
		return nil, fmt.Errorf("a job file must be a mapping of fields (displayName, object, connection, …), not %s", describe(doc))
	}
	plain, err := toJSONValue(doc, "")
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(plain)
	if err != nil {
		return nil, fmt.Errorf("convert to JSON: %w", err)
	}
	job := &intakev1.Job{}
	if err := protojson.Unmarshal(js, job); err != nil {
		return nil, fmt.Errorf("not a valid job: %s", cleanProtoJSONError(err))
	}
	return job, nil
}

// toJSONValue makes a YAML-decoded value marshalable as JSON: maps with
// non-string keys get string keys, timestamps become RFC 3339 strings.
func toJSONValue(v any, path string) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			c, err := toJSONValue(e, join(path, k))
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			ks := fmt.Sprint(k)
			c, err := toJSONValue(e, join(path, ks))
			if err != nil {
				return nil, err
			}
			out[ks] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			c, err := toJSONValue(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case time.Time:
		return v.Format(time.RFC3339Nano), nil
	case float64:
		if v != v || v > 1e308 || v < -1e308 { // NaN, ±Inf
			return nil, fmt.Errorf("%s: %v is not a number JSON can hold", path, v)
		}
		return v, nil
	default:
		return v, nil
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(v any) string {
	switch v.(type) {
	case []any:
		return "a list"
	case nil:
		return "null"
	case string:
		return "a string"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// protojson positions refer to the JSON we made, not to the user's file.
// (protojson puts a space or a no-break space after "proto:", at random.)
var protoJSONPos = regexp.MustCompile(`^proto:[\s\x{00a0}]*(\(line \d+:\d+\):[\s\x{00a0}]*)?`)

func cleanProtoJSONError(err error) string {
	return strings.TrimSpace(protoJSONPos.ReplaceAllString(err.Error(), ""))
}
