// Package jobfile reads a job definition written in YAML or JSON. The file
// uses the proto JSON names of intake.v1.Job (displayName or display_name,
// enum values such as OBJECT_TYPE_ACCOUNTS), so what `intakectl job get -o
// json` prints can be edited and fed back.
package jobfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

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
	job := &intakev1.Job{}
	if err := ParseMessage(data, job, "job", "displayName, object, connection, …"); err != nil {
		return nil, err
	}
	return job, nil
}

// ParseMessage turns a YAML or JSON document into m (protojson field
// names). what names the document in errors ("job", "connection") and
// fields lists a few of its fields for the error of a non-mapping document.
// Unknown fields are errors.
func ParseMessage(data []byte, m proto.Message, what, fields string) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("the %s file is empty", what)
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	if _, ok := doc.(map[string]any); !ok {
		return fmt.Errorf("a %s file must be a mapping of fields (%s), not %s", what, fields, describe(doc))
	}
	plain, err := toJSONValue(doc, "")
	if err != nil {
		return err
	}
	js, err := json.Marshal(plain)
	if err != nil {
		return fmt.Errorf("convert to JSON: %w", err)
	}
	if err := protojson.Unmarshal(js, m); err != nil {
		return fmt.Errorf("not a valid %s: %s", what, cleanProtoJSONError(err))
	}
	return nil
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
