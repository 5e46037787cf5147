package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/cmd/internal/runview"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// runSource writes a run's source file, byte for byte as it was fetched,
// to -o FILE (a directory: the file is named as the API suggests) or
// standard output.
func (c *cli) runSource(ctx context.Context, args []string) (err error) {
	name, err := RunName(args[0])
	if err != nil {
		return command.Usagef("%v", err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	stream, err := c.runs.DownloadSource(ctx, &intakev1.DownloadSourceRequest{Name: name})
	if err != nil {
		return c.apiError("download the source file of "+name, err)
	}
	// The first message says whether there is a file; only then is one created.
	first, err := stream.Recv()
	if err != nil && !errors.Is(err, io.EOF) {
		return c.apiError("download the source file of "+name, err)
	}
	w, path := c.sys.Stdout, c.out
	if path != "" && path != "-" {
		if st, serr := os.Stat(path); serr == nil && st.IsDir() && first.GetFilename() != "" {
			path = filepath.Join(path, filepath.Base(first.GetFilename()))
		}
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("write the source file: %w", err)
		}
		defer func() {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("write the source file: %w", cerr)
			}
			if err != nil {
				_ = os.Remove(path) // no half file
			}
		}()
		w = f
	}
	var n int64
	for chunk := first; chunk != nil; {
		m, err := w.Write(chunk.GetData())
		n += int64(m)
		if err != nil {
			return fmt.Errorf("write the source file: %w", err)
		}
		chunk, err = stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return c.apiError("download the source file of "+name, err)
		}
	}
	if w != c.sys.Stdout {
		fmt.Fprintf(c.sys.Stdout, "wrote the source file of %s to %s (%s)\n", name, path, runview.Bytes(n))
	}
	return nil
}

// runReplay re-imports a past run's stored file with its job's current
// mapping, as a new run (trigger replay); --watch follows it.
func (c *cli) runReplay(ctx context.Context, args []string) error {
	name, err := RunName(args[0])
	if err != nil {
		return command.Usagef("%v", err)
	}
	cctx, cancel := c.call(ctx)
	defer cancel()
	run, err := c.runs.ReplayRun(cctx, &intakev1.ReplayRunRequest{Name: name, DryRun: c.dryRun})
	if err != nil {
		return c.apiError("replay run "+name, err)
	}
	if c.watch {
		if c.output == "table" {
			what := "started"
			if run.GetDryRun() {
				what = "started a dry run (nothing will change)"
			}
			fmt.Fprintf(c.sys.Stdout, "%s %s, a replay of %s\n", what, run.GetName(), name)
		}
		return c.watchRun(ctx, run.GetName())
	}
	if c.output == "json" {
		return c.printJSON(run)
	}
	fmt.Fprintln(c.sys.Stdout, run.GetName())
	return nil
}
