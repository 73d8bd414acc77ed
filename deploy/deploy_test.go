package deploy_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/switchyard-io/switchyard/cli"
	_ "github.com/switchyard-io/switchyard/connectors/all"
	"github.com/switchyard-io/switchyard/server"
)

// service is the part of a compose service the invariants are about.
type service struct {
	Image string
	Build struct {
		Context, Dockerfile string
		Args                map[string]string
	}
	Command     []string
	Environment map[string]string
	Volumes     []string
	Ports       []string
	Healthcheck struct{ Test []string }
	DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
}

// composeVar is compose's interpolation syntax: $$, $NAME, ${NAME},
// ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}.
var composeVar = regexp.MustCompile(`\$(?:(\$)|([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\})`)

// interpolate applies compose's variable substitution to s.
func interpolate(s string, env map[string]string) (string, error) {
	var errs []error
	out := composeVar.ReplaceAllStringFunc(s, func(m string) string {
		g := composeVar.FindStringSubmatch(m)
		switch {
		case g[1] != "":
			return "$"
		case g[2] != "":
			return env[g[2]]
		}
		v, set := env[g[3]]
		empty := !set || (strings.HasPrefix(g[4], ":") && v == "")
		switch strings.TrimPrefix(g[4], ":") {
		case "-":
			if empty {
				return g[5]
			}
		case "?":
			if empty {
				errs = append(errs, fmt.Errorf("required variable %s is missing a value: %s", g[3], g[5]))
			}
		}
		return v
	})
	return out, errors.Join(errs...)
}

// loadCompose reads compose.yaml as `docker compose config` would with env.
func loadCompose(t *testing.T, env map[string]string) (map[string]service, error) {
	t.Helper()
	raw, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var errs []error
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
			v, err := interpolate(n.Value, env)
			errs = append(errs, err)
			n.Value = v
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var c struct{ Services map[string]service }
	if err := doc.Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c.Services, nil
}

var baseEnv = map[string]string{"SWITCHYARD_REDIS_PASSWORD": "0123abcd", "SWITCHYARD_VERSION": "v9.9.9-test",
	"SWITCHYARD_ADMIN_TOKEN": "admin-0123456789abcdef0123456789abcdef"}

func withEnv(kv ...string) map[string]string {
	env := map[string]string{}
	for k, v := range baseEnv {
		env[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return env
}

func mustCompose(t *testing.T, env map[string]string) map[string]service {
	t.Helper()
	svcs, err := loadCompose(t, env)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"redis", "switchyard", "sink"} {
		if _, ok := svcs[want]; !ok {
			t.Fatalf("compose.yaml has no %s service", want)
		}
	}
	return svcs
}

// hostIP returns the host address of a short-syntax port ("ip:host:container").
func hostIP(t *testing.T, port string) string {
	t.Helper()
	parts := strings.Split(port, ":")
	if len(parts) != 3 {
		t.Fatalf("port %q does not name the host address it binds (ip:host:container)", port)
	}
	return parts[0]
}

func TestPortsOnLoopbackUnlessToldOtherwise(t *testing.T) {
	for name, svc := range mustCompose(t, baseEnv) {
		for _, p := range svc.Ports {
			if ip := hostIP(t, p); ip != "127.0.0.1" {
				t.Errorf("%s publishes %q on %s by default", name, p, ip)
			}
		}
	}
	svcs := mustCompose(t, withEnv("SWITCHYARD_BIND", "0.0.0.0"))
	if len(svcs["switchyard"].Ports) == 0 {
		t.Fatal("switchyard publishes no port")
	}
	for _, p := range svcs["switchyard"].Ports {
		if ip := hostIP(t, p); ip != "0.0.0.0" {
			t.Errorf("SWITCHYARD_BIND=0.0.0.0 publishes %q", p)
		}
	}
	if len(svcs["redis"].Ports) != 0 {
		t.Errorf("redis publishes %v", svcs["redis"].Ports)
	}
}

// TestAuthenticationRequired: compose refuses to start without the
// bootstrap admin token, so the service never runs open.
func TestAuthenticationRequired(t *testing.T) {
	env := withEnv()
	delete(env, "SWITCHYARD_ADMIN_TOKEN")
	if _, err := loadCompose(t, env); err == nil || !strings.Contains(err.Error(), "SWITCHYARD_ADMIN_TOKEN") {
		t.Fatalf("compose.yaml works without an admin token: %v", err)
	}
}

func TestRedisRequiresAPasswordAndPersists(t *testing.T) {
	if _, err := loadCompose(t, map[string]string{}); err == nil || !strings.Contains(err.Error(), "SWITCHYARD_REDIS_PASSWORD") {
		t.Fatalf("compose.yaml works without a Redis password (insecure default?): %v", err)
	}
	r := mustCompose(t, baseEnv)["redis"]
	cmd := strings.Join(r.Command, " ")
	for _, want := range []string{"--requirepass 0123abcd", "--appendonly yes"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("redis command %q lacks %q", cmd, want)
		}
	}
	if len(r.Healthcheck.Test) == 0 || r.Environment["REDISCLI_AUTH"] != "0123abcd" {
		t.Errorf("redis health check %v cannot authenticate (REDISCLI_AUTH %q)", r.Healthcheck.Test, r.Environment["REDISCLI_AUTH"])
	}
}

func TestSwitchyardHealthCheckedWithItsConfigMounted(t *testing.T) {
	svcs := mustCompose(t, baseEnv)
	sy := svcs["switchyard"]
	// The health check runs the binary (the image has no shell) against /readyz.
	test := sy.Healthcheck.Test
	if len(test) < 3 || test[0] != "CMD" || test[1] != "/usr/local/bin/switchyard" || test[2] != "health" {
		t.Fatalf("health check %v", test)
	}
	health, _, err := cli.NewRoot().Find([]string{"health"})
	if err != nil || health.Name() != "health" {
		t.Fatalf("the binary has no health command: %v", err)
	}
	if err := health.Flags().Parse(test[3:]); err != nil {
		t.Fatalf("health check arguments %v: %v", test[3:], err)
	}
	readyz := health.Flags().Lookup("url").Value.String()
	if !strings.HasSuffix(readyz, ":8080/readyz") {
		t.Fatalf("health check asks %s", readyz)
	}
	if sy.DependsOn["redis"].Condition != "service_healthy" {
		t.Errorf("switchyard starts before redis is healthy: %v", sy.DependsOn)
	}

	// The configuration file is mounted where --config reads it.
	i := slices.Index(sy.Command, "--config")
	if sy.Command[0] != "serve" || i < 0 || i+1 >= len(sy.Command) {
		t.Fatalf("command %v", sy.Command)
	}
	mount := "./switchyard.yaml:" + sy.Command[i+1] + ":ro"
	if !slices.Contains(sy.Volumes, mount) {
		t.Fatalf("volumes %v lack %s", sy.Volumes, mount)
	}
	// It reaches Redis by service name, with the password from the
	// service's environment, and serves on the published ports.
	for k, v := range sy.Environment {
		t.Setenv(k, v)
	}
	fc, err := server.LoadFile("switchyard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if fc.RedisURL != "redis://:0123abcd@redis:6379/0" {
		t.Errorf("redis_url %q", fc.RedisURL)
	}
	var cfg server.Config
	cfg.Auth.ApplyEnv() // as serve does
	fc.Apply(&cfg)
	if err := server.Check(cfg); err != nil {
		t.Fatal(err)
	}
	if r := server.SecurityReport(cfg); r[0].Name != "authentication" || !r[0].On {
		t.Fatalf("the compose service runs without authentication: %+v", r[0])
	}
	for _, p := range sy.Ports {
		container := p[strings.LastIndex(p, ":")+1:]
		if _, port, _ := net.SplitHostPort(fc.HTTPAddr); port != container {
			if _, gport, _ := net.SplitHostPort(fc.GRPCAddr); gport != container {
				t.Errorf("published port %s is neither http_addr %s nor grpc_addr %s", p, fc.HTTPAddr, fc.GRPCAddr)
			}
		}
	}
	if _, port, _ := net.SplitHostPort(fc.HTTPAddr); !strings.HasSuffix(readyz, ":"+port+"/readyz") {
		t.Errorf("the health check asks %s, the server listens on %s", readyz, fc.HTTPAddr)
	}
	// Without the password the file is an error, not an open Redis URL.
	t.Setenv("REDIS_PASSWORD", "")
	os.Unsetenv("REDIS_PASSWORD")
	if _, err := server.LoadFile("switchyard.yaml"); err == nil || !strings.Contains(err.Error(), "${REDIS_PASSWORD} is not set") {
		t.Fatalf("without REDIS_PASSWORD: %v", err)
	}
}

func TestSampleFunctionForTheQuickstart(t *testing.T) {
	svcs := mustCompose(t, baseEnv)
	sink, sy := svcs["sink"], svcs["switchyard"]
	if len(sink.Command) < 3 || sink.Command[0] != "sink" || sink.Command[1] != "--listen" || sink.Command[2] != ":7070" {
		t.Fatalf("sink command %v: the quickstart's trigger targets sink:7070", sink.Command)
	}
	if sink.Image != sy.Image || sink.Build.Dockerfile != sy.Build.Dockerfile {
		t.Errorf("the sink is not the switchyard image: %q %q", sink.Image, sink.Build.Dockerfile)
	}
	if len(sink.Ports) != 0 {
		t.Errorf("the sink publishes %v; Switchyard reaches it on the compose network", sink.Ports)
	}
}

// dockerfile returns the Dockerfile's instructions, continuation lines
// joined and comments dropped.
func dockerfile(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	cur := ""
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		if s := strings.TrimSpace(cur + l); s != "" {
			out = append(out, s)
		}
		cur = ""
	}
	return out
}

// TestImageVersionIsTheSourceRevision: compose passes SWITCHYARD_VERSION
// as the VERSION build argument, the build refuses an empty one, and the
// linker flag it uses really sets what `switchyard --version` prints.
func TestImageVersionIsTheSourceRevision(t *testing.T) {
	sy := mustCompose(t, baseEnv)["switchyard"]
	if sy.Build.Args["VERSION"] != "v9.9.9-test" {
		t.Fatalf("build args %v", sy.Build.Args)
	}
	ins := dockerfile(t)
	var arg, check, build string
	for _, in := range ins {
		switch {
		case strings.HasPrefix(in, "ARG VERSION"):
			arg = in
		case strings.HasPrefix(in, "RUN test -n \"${VERSION}\""):
			check = in
		case strings.Contains(in, "go build"):
			build = in
		}
	}
	if arg != "ARG VERSION" {
		t.Errorf("%q: the version must have no default (it comes from the source revision)", arg)
	}
	if check == "" || !strings.Contains(check, "exit 1") {
		t.Error("the build does not refuse an empty VERSION")
	}
	m := regexp.MustCompile(`-X (\S+)=\$\{VERSION\}`).FindStringSubmatch(build)
	if m == nil {
		t.Fatalf("the go build does not set the version: %q", build)
	}
	if !slices.Contains(ins, `USER nonroot:nonroot`) {
		t.Error("the image does not run as nonroot")
	}
	bin := filepath.Join(t.TempDir(), "switchyard")
	cmd := exec.Command("go", "build", "-ldflags", "-X "+m[1]+"=rev-abc123", "-o", bin, "./cmd/switchyard")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "rev-abc123") {
		t.Fatalf("switchyard --version: %v %s", err, out)
	}
	_ = cli.Version // the variable the flag sets
}

func TestDockerignore(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	for _, want := range []string{".git", "**/.env"} {
		if !slices.Contains(patterns, want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
	// What the build needs stays in the context.
	for _, need := range []string{"go.mod", "go.sum", "cmd", "cli", "server", "router", "connectors", "sdk", "proto", "internal", "bench"} {
		for _, p := range patterns {
			if ok, _ := filepath.Match(strings.TrimPrefix(p, "/"), need); ok {
				t.Errorf(".dockerignore pattern %q excludes %s, which the build needs", p, need)
			}
		}
	}
}
