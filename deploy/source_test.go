package deploy_test

// The manifests name things the Go code defines: flags (as INTAKE_*
// variables), subcommands, JetStream streams and consumers, shutdown
// timeouts. These helpers read them from the source files of the other
// modules (parsed, not imported: this module depends on none of them), so
// that a rename in the code fails the manifest test instead of a
// deployment.

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// repoRoot is the repository's root, seen from this module's directory.
const repoRoot = ".."

// parseDir parses the non-test Go files of dir, a path from the repository root.
func parseDir(t *testing.T, dir string) []*ast.File {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(repoRoot, dir, "*.go"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no Go files in %s (%v)", dir, err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, p, src, 0)
		if err != nil {
			t.Fatalf("parse %s: %v", p, err)
		}
		files = append(files, f)
	}
	return files
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// flagEnvNames are the INTAKE_* variables of every flag the intake
// subcommands define (cmd/internal/cli): the flag.FlagSet calls
// fs.StringVar(&v, "nats-url", …) and the like.
func flagEnvNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, f := range parseDir(t, "cmd/internal/cli") {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			arg := -1
			switch sel.Sel.Name {
			case "StringVar", "IntVar", "Int64Var", "UintVar", "Uint64Var", "Float64Var", "BoolVar", "DurationVar", "TextVar":
				arg = 1
			case "Func", "BoolFunc":
				arg = 0
			}
			if arg < 0 || len(call.Args) <= arg {
				return true
			}
			if name, ok := stringLit(call.Args[arg]); ok {
				names["INTAKE_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))] = true
			}
			return true
		})
	}
	if !names["INTAKE_NATS_URL"] || !names["INTAKE_DATABASE_URL"] {
		t.Fatalf("found no --nats-url or --database-url flag in cmd/internal/cli (found %v): has the flag code moved?", names)
	}
	return names
}

// subcommands are the intake binary's subcommands: the keys of the
// subcommands map in cmd/internal/cli.
func subcommands(t *testing.T) map[string]bool {
	t.Helper()
	cmds := map[string]bool{}
	for _, f := range parseDir(t, "cmd/internal/cli") {
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "subcommands" || len(vs.Values) != 1 {
				return true
			}
			lit, ok := vs.Values[0].(*ast.CompositeLit)
			if !ok {
				return true
			}
			for _, el := range lit.Elts {
				if kv, ok := el.(*ast.KeyValueExpr); ok {
					if k, ok := stringLit(kv.Key); ok {
						cmds[k] = true
					}
				}
			}
			return false
		})
	}
	if !cmds["api"] || !cmds["migrate"] {
		t.Fatalf("found no subcommands map with api and migrate in cmd/internal/cli (found %v)", cmds)
	}
	return cmds
}

// stringConsts are the string constants of the Go package in dir.
func stringConsts(t *testing.T, dir string) map[string]string {
	t.Helper()
	consts := map[string]string{}
	for _, f := range parseDir(t, dir) {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if v, ok := stringLit(vs.Values[i]); ok {
							consts[name.Name] = v
						}
					}
				}
			}
		}
	}
	return consts
}

// durationConst is the constant name = N * time.Unit of the Go package in dir.
func durationConst(t *testing.T, dir, name string) time.Duration {
	t.Helper()
	units := map[string]time.Duration{"Millisecond": time.Millisecond, "Second": time.Second, "Minute": time.Minute}
	for _, f := range parseDir(t, dir) {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name != name || i >= len(vs.Values) {
						continue
					}
					bin, ok := vs.Values[i].(*ast.BinaryExpr)
					if !ok || bin.Op != token.MUL {
						t.Fatalf("%s.%s is not N * time.Unit", dir, name)
					}
					lit, ok1 := bin.X.(*ast.BasicLit)
					sel, ok2 := bin.Y.(*ast.SelectorExpr)
					if !ok1 || !ok2 || units[sel.Sel.Name] == 0 {
						t.Fatalf("%s.%s is not N * time.Unit", dir, name)
					}
					v, err := strconv.Atoi(lit.Value)
					if err != nil {
						t.Fatalf("%s.%s: %v", dir, name, err)
					}
					return time.Duration(v) * units[sel.Sel.Name]
				}
			}
		}
	}
	t.Fatalf("no constant %s in %s", name, dir)
	return 0
}

// workerConsumer is the JetStream stream and durable consumer a worker
// service consumes: the Stream and the ConsumerConfig's durable of its
// pipeline.WorkerConfig (services/<svc>), resolved through pkg/pipeline's
// constants.
func workerConsumer(t *testing.T, svc string) (stream, consumer string) {
	t.Helper()
	consts := stringConsts(t, "pkg/pipeline")
	pipelineConst := func(e ast.Expr) string {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return ""
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "pipeline" {
			return ""
		}
		return consts[sel.Sel.Name]
	}
	for _, f := range parseDir(t, "services/"+svc) {
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			if sel, ok := lit.Type.(*ast.SelectorExpr); !ok || sel.Sel.Name != "WorkerConfig" {
				return true
			}
			for _, el := range lit.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				switch key, _ := kv.Key.(*ast.Ident); {
				case key == nil:
				case key.Name == "Stream":
					stream = pipelineConst(kv.Value)
				case key.Name == "Consumer":
					if call, ok := kv.Value.(*ast.CallExpr); ok && len(call.Args) > 0 {
						consumer = pipelineConst(call.Args[0])
					}
				}
			}
			return false
		})
	}
	if stream == "" || consumer == "" {
		t.Fatalf("services/%s: found no pipeline.WorkerConfig{Stream: pipeline.X, Consumer: pipeline.ConsumerConfig(pipeline.Y, …)}", svc)
	}
	return stream, consumer
}

func TestSourceHelpersFindTheCode(t *testing.T) {
	t.Parallel()
	if s, c := workerConsumer(t, "fetcher"); s != "INTAKE_RUNS" || c != "fetcher" {
		t.Errorf("fetcher consumes %s/%s, want INTAKE_RUNS/fetcher", s, c)
	}
	if d := durationConst(t, "pkg/serve", "ShutdownTimeout"); d <= 0 {
		t.Errorf("serve.ShutdownTimeout = %v", d)
	}
	if !subcommands(t)["fetcher"] {
		t.Error("no fetcher subcommand")
	}
	if !flagEnvNames(t)["INTAKE_SHUTDOWN_GRACE"] {
		t.Error("no --shutdown-grace flag")
	}
}
