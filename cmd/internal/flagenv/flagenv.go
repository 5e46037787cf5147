// Package flagenv parses a standard flag.FlagSet whose every flag can also be
// set from an environment variable: --nats-url from INTAKE_NATS_URL. A flag
// on the command line wins over the environment, which wins over the default.
package flagenv

import (
	"flag"
	"fmt"
	"slices"
	"strings"
)

// Prefix starts the name of every environment variable.
const Prefix = "INTAKE_"

// EnvName is the environment variable of a flag: "nats-url" → INTAKE_NATS_URL.
func EnvName(flagName string) string {
	return Prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse sets fs's flags from the environment (through lookup, e.g.
// os.LookupEnv), then parses args over them. Flags of a single letter are
// not read from the environment; when only is not empty, just the flags it
// names are. An empty variable counts as unset. The error of a bad value in
// the environment names the variable.
//
// Flags and positional arguments may be interleaved: "get NAME -o json"
// works. Parse returns the positional arguments.
func Parse(fs *flag.FlagSet, args []string, lookup func(string) (string, bool), only ...string) ([]string, error) {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if envErr != nil || len(f.Name) == 1 || len(only) > 0 && !slices.Contains(only, f.Name) {
			return
		}
		name := EnvName(f.Name)
		v, ok := lookup(name)
		if !ok || v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = fmt.Errorf("invalid value %q for %s (flag --%s): %w", v, name, f.Name, err)
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
