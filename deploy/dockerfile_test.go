package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, …
	args string
}

// stage is one FROM … stage of a Dockerfile.
type stage struct {
	from, name string
	inst       []instruction
}

// parseDockerfile splits a Dockerfile into stages. It knows what this
// repository's Dockerfile uses: comments, line continuations, and
// instructions before the first FROM (ARG).
func parseDockerfile(t *testing.T, text string) []stage {
	t.Helper()
	var stages []stage
	var logical []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		if s := strings.TrimSpace(cur.String()); s != "" {
			logical = append(logical, s)
		}
		cur.Reset()
	}
	for _, l := range logical {
		cmd, args, _ := strings.Cut(l, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			continue // ARG before the first FROM
		}
		stages[len(stages)-1].inst = append(stages[len(stages)-1].inst, in)
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a final stage", len(stages))
	}
	return stages
}

func TestDockerfileIsStaticAndNonRoot(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages := parseDockerfile(t, string(data))
	final := stages[len(stages)-1]

	// The final image has no libc and no shell: a static binary runs alone.
	if !regexp.MustCompile(`^(gcr\.io/distroless/static(-debian\d+)?:nonroot(@sha256:[0-9a-f]{64})?|scratch)$`).MatchString(final.from) {
		t.Errorf("final stage FROM %s: want gcr.io/distroless/static-debian12:nonroot or scratch", final.from)
	}
	var user, entrypoint string
	var copied []string
	for _, in := range final.inst {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "COPY":
			copied = append(copied, in.args)
		case "RUN":
			t.Errorf("final stage RUN %s: the final base has no shell", in.args)
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("final stage USER %q: want a numeric non-root uid (uid:gid), which runAsNonRoot can check", user)
	}
	if entrypoint != `["/usr/local/bin/intake"]` {
		t.Errorf("ENTRYPOINT %s: want [\"/usr/local/bin/intake\"] (exec form; the manifests' args pick the subcommand)", entrypoint)
	}

	// The binary comes from a build stage that builds it static.
	build := -1
	for i, st := range stages[:len(stages)-1] {
		for _, c := range copied {
			if st.name != "" && strings.Contains(c, "--from="+st.name+" ") {
				build = i
			}
		}
	}
	if build < 0 {
		t.Fatalf("final stage copies from no build stage (COPY --from=NAME): %v", copied)
	}
	var env, run string
	for _, in := range stages[build].inst {
		switch in.cmd {
		case "ENV", "ARG":
			env += " " + in.args
		case "RUN":
			if strings.Contains(in.args, "go build") {
				run = in.args
			}
		}
	}
	if run == "" {
		t.Fatalf("build stage %s runs no go build", stages[build].name)
	}
	if !strings.Contains(env+" "+run, "CGO_ENABLED=0") {
		t.Error("build stage does not set CGO_ENABLED=0: the binary would need libc, which the final image lacks")
	}
	for _, flag := range []string{"-trimpath", "./intake"} {
		if !strings.Contains(run, flag) {
			t.Errorf("go build lacks %s: %s", flag, run)
		}
	}

	// The manifests run the image as its own user.
	uidNum, _ := strconv.ParseInt(uid, 10, 64)
	for _, rc := range renderCases {
		for _, o := range renderObjects(t, rc.dir) {
			p, ok := podOf(o)
			if !ok || !slices.ContainsFunc(p.spec.Containers, isIntake) {
				continue
			}
			if sc := p.spec.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != uidNum {
				t.Errorf("%s: %s: pod runAsUser is not the image's USER %s", rc.dir, o, uid)
			}
		}
	}
}

func TestDockerignoreKeepsTheContextSmall(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(string(data))
	for _, want := range []string{".git", "bin", ".dev", ".test", ".bench"} {
		if !slices.Contains(lines, want) && !slices.Contains(lines, want+"/") {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
	// The build uses go.work, so every module it lists must stay in the context.
	work, err := os.ReadFile(filepath.Join(repoRoot, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*\./(\S+)`).FindAllStringSubmatch(string(work), -1) {
		for _, l := range lines {
			if strings.TrimSuffix(strings.TrimPrefix(l, "/"), "/") == m[1] {
				t.Errorf(".dockerignore excludes %s, a module of go.work that the build needs", m[1])
			}
		}
	}
}
