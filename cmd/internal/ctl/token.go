package ctl

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/cmd/internal/runview"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Trigger tokens: `intakectl job token create|rotate|list JOB` and
// `intakectl job token revoke TOKEN`. A token authorises the trigger API
// (TriggerJob) for one job; its secret is shown once, when it is made.

// tokenArgs is the usage of job token.
const tokenArgs = "create|rotate|list JOB | revoke TOKEN"

func (c *cli) jobToken(ctx context.Context, args []string) error {
	verb, arg := args[0], args[1]
	switch verb {
	case "create", "rotate", "list":
		name, err := JobName(arg)
		if err != nil {
			return command.Usagef("%v", err)
		}
		if verb == "list" {
			return c.tokenList(ctx, name)
		}
		return c.tokenMake(ctx, name, verb == "rotate")
	case "revoke":
		return c.tokenRevoke(ctx, arg)
	}
	return command.Usagef("unknown token command %q: want intakectl job token %s", verb, tokenArgs)
}

// tokenMake creates (or rotates) a token and prints its secret alone on
// standard output, so `TOKEN=$(intakectl job token create JOB)` keeps it.
func (c *cli) tokenMake(ctx context.Context, job string, rotate bool) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	var (
		tok *intakev1.TriggerToken
		err error
	)
	if rotate {
		tok, err = c.jobs.RotateTriggerToken(ctx, &intakev1.RotateTriggerTokenRequest{Parent: job})
	} else {
		tok, err = c.jobs.CreateTriggerToken(ctx, &intakev1.CreateTriggerTokenRequest{Parent: job})
	}
	if err != nil {
		return c.apiError(map[bool]string{false: "create", true: "rotate"}[rotate]+" a trigger token of "+job, err)
	}
	if c.output == "json" {
		return c.printJSON(tok)
	}
	fmt.Fprintln(c.sys.Stdout, tok.GetToken())
	fmt.Fprintf(c.sys.Stderr, "%s: the token above is shown only now; keep it secret (send it as Authorization: Bearer <token>)\n", tok.GetName())
	if rotate {
		fmt.Fprintf(c.sys.Stderr, "every other token of %s is revoked\n", job)
	}
	return nil
}

// TokenName checks a trigger token's resource name.
func TokenName(s string) (string, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 4 || parts[0] != "jobs" || parts[1] == "" || parts[2] != "triggerTokens" || parts[3] == "" {
		return "", fmt.Errorf("%q is not a trigger token: want jobs/JOB/triggerTokens/ID (as intakectl job token list prints)", s)
	}
	return s, nil
}

func (c *cli) tokenRevoke(ctx context.Context, arg string) error {
	name, err := TokenName(arg)
	if err != nil {
		return command.Usagef("%v", err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	if _, err := c.jobs.RevokeTriggerToken(ctx, &intakev1.RevokeTriggerTokenRequest{Name: name}); err != nil {
		return c.apiError("revoke trigger token "+name, err)
	}
	if c.output == "table" {
		fmt.Fprintf(c.sys.Stdout, "revoked %s: the trigger API refuses it from now on\n", name)
	}
	return nil
}

func (c *cli) tokenList(ctx context.Context, job string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.jobs.ListTriggerTokens(ctx, &intakev1.ListTriggerTokensRequest{Parent: job})
	if err != nil {
		return c.apiError("list the trigger tokens of "+job, err)
	}
	if c.output == "json" {
		return c.printJSON(resp)
	}
	if len(resp.GetTokens()) == 0 {
		fmt.Fprintf(c.sys.Stdout, "%s has no trigger tokens; make one with: intakectl job token create %s\n", job, strings.TrimPrefix(job, "jobs/"))
		return nil
	}
	w := tabwriter.NewWriter(c.sys.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TOKEN\tCREATED\tLAST USED")
	for _, t := range resp.GetTokens() {
		used := "never"
		if t.GetLastUsedTime() != nil {
			used = runview.Time(t.GetLastUsedTime().AsTime())
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", t.GetName(), runview.Time(t.GetCreateTime().AsTime()), used)
	}
	return w.Flush()
}
