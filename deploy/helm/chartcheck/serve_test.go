package chartcheck

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// repoRoot is the main module's root.
const repoRoot = "../../.."

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

// TestMain removes the binary built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// switchyardBinary builds cmd/switchyard of the main module once.
func switchyardBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "chartcheck-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "switchyard")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/switchyard")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/switchyard: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// configKeys returns the top-level keys of the configuration file the
// server knows, from docs/config.md (generated from server.FileConfig and
// kept current by the server's tests).
func configKeys(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "docs", "config.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|")
	var keys []string
	for _, m := range re.FindAllStringSubmatch(string(raw), -1) {
		keys = append(keys, m[1])
	}
	if !slices.Contains(keys, "redis_url") || !slices.Contains(keys, "sources") {
		t.Fatalf("docs/config.md lists no redis_url or sources key: %v", keys)
	}
	return keys
}

// pendingKeys are the configuration keys the chart renders for features
// other branches are adding to the server (HA Redis). While
// the server does not know one, the check of a rendering that uses it drops
// it (logged); the default values never render them.
var pendingKeys = map[string]string{
	"ack_after":      "HA Redis",
	"ack_timeout":    "HA Redis",
	"shutdown_delay": "HA Redis",
}

// secrets stands for the Secrets of the release's namespace: name → key → value.
type secrets map[string]map[string][]byte

// pod is a rendered Deployment's pod laid out on this machine: its mounted
// files under Root, its environment resolved from the Secrets.
type pod struct {
	Root string
	Args []string
	Env  []string
}

// layOut resolves the Deployment's container as the kubelet would: every
// volume mount's files (the ConfigMap's, the Secrets' items) written under
// a temporary root, the environment from literal values, the Downward API
// and secretKeyRefs. A Secret or key that does not exist fails the test, as
// the pod would fail to start. Absolute paths under /etc/switchyard in the
// arguments and the configuration are moved under the root.
func layOut(t *testing.T, objs map[string]object, deploy string, sec secrets) pod {
	t.Helper()
	d := get[*appsv1.Deployment](t, objs, "Deployment", deploy)
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	root := t.TempDir()
	move := func(s string) string { return strings.ReplaceAll(s, "/etc/switchyard/", root+"/etc/switchyard/") }
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	secretValue := func(name, key string) []byte {
		v, ok := sec[name][key]
		if !ok {
			t.Fatalf("the pod needs key %q of Secret %q, which the install instructions do not create", key, name)
		}
		return v
	}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			t.Fatalf("volume mount %s names no volume", m.Name)
		}
		dir := filepath.Join(root, m.MountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case v.ConfigMap != nil:
			cm := get[*corev1.ConfigMap](t, objs, "ConfigMap", v.ConfigMap.Name)
			for k, data := range cm.Data {
				writeFile(t, filepath.Join(dir, k), []byte(move(data)))
			}
		case v.Secret != nil:
			if len(v.Secret.Items) == 0 {
				t.Fatalf("secret volume %s mounts every key of %s: list the items the server reads", v.Name, v.Secret.SecretName)
			}
			for _, it := range v.Secret.Items {
				writeFile(t, filepath.Join(dir, it.Path), secretValue(v.Secret.SecretName, it.Key))
			}
		case v.EmptyDir != nil:
		default:
			t.Fatalf("volume %s: a kind the test does not lay out", v.Name)
		}
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + root}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.SecretKeyRef != nil:
			env = append(env, e.Name+"="+string(secretValue(e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)))
		case e.ValueFrom.FieldRef != nil:
			env = append(env, e.Name+"=from-"+strings.ReplaceAll(e.ValueFrom.FieldRef.FieldPath, ".", "-"))
		default:
			t.Fatalf("env %s: a source the test does not resolve", e.Name)
		}
	}
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = move(a)
	}
	if len(c.Command) != 0 {
		t.Fatalf("command %v overrides the image's entrypoint (the switchyard binary)", c.Command)
	}
	return pod{Root: root, Args: args, Env: env}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// configPath returns the file the pod's --config names.
func (p pod) configPath(t *testing.T) string {
	t.Helper()
	i := slices.Index(p.Args, "--config")
	if i < 0 || i+1 >= len(p.Args) || p.Args[0] != "serve" {
		t.Fatalf("args %v: want serve --config FILE", p.Args)
	}
	return p.Args[i+1]
}

// checkConfig runs switchyard serve --check-config with the pod's
// arguments, environment and files, and returns its output. Keys of
// pendingKeys the server does not know yet are dropped first (logged) when
// allowPending; otherwise any key it does not know fails the test.
func checkConfig(t *testing.T, p pod, allowPending bool) string {
	t.Helper()
	path := p.configPath(t)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatalf("the rendered config is not YAML: %v\n%s", err, raw)
	}
	known := configKeys(t)
	changed := false
	for k := range file {
		if slices.Contains(known, k) {
			continue
		}
		feature, pending := pendingKeys[k]
		if !pending || !allowPending {
			t.Errorf("the chart renders config key %q, which the server does not know (docs/config.md)", k)
			continue
		}
		t.Logf("config key %s (%s) is not in this server yet: checked without it", k, feature)
		delete(file, k)
		changed = true
	}
	// The HA Redis URLs arrive with ack_after.
	if u, _ := file["redis_url"].(string); strings.Contains(strings.SplitN(u, "://", 2)[0], "+") && !slices.Contains(known, "ack_after") {
		if !allowPending {
			t.Errorf("redis_url %q needs HA Redis support, which the server does not have yet", u)
		}
		t.Logf("redis_url %s: Cluster and Sentinel URLs are not in this server yet: checked with a single Redis", u)
		file["redis_url"] = "redis://:${SWITCHYARD_REDIS_PASSWORD:-}@redis:6379/0"
		changed = true
	}
	args := p.Args
	if changed { // a copy: the rendered file stays as it was
		b, err := yaml.Marshal(file)
		if err != nil {
			t.Fatal(err)
		}
		checked := filepath.Join(p.Root, "checked-config.yaml")
		writeFile(t, checked, b)
		args = slices.Clone(p.Args)
		args[slices.Index(args, path)] = checked
	}
	if t.Failed() {
		t.FailNow()
	}
	cmd := exec.Command(switchyardBinary(t), append(args, "--check-config")...)
	cmd.Env = p.Env
	cmd.Dir = p.Root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("switchyard %s --check-config: %v\n%s\nconfig:\n%s", strings.Join(p.Args, " "), err, out, raw)
	}
	if !strings.Contains(string(out), "configuration ok") {
		t.Fatalf("--check-config said:\n%s", out)
	}
	return string(out)
}

// securityLine returns the security report's line about name.
func securityLine(t *testing.T, out, name string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "security: ") && strings.Contains(l, " "+name+": ") {
			return l
		}
	}
	t.Fatalf("no security report line about %s in:\n%s", name, out)
	return ""
}

// token returns a random admin token.
func token(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return []byte(hex.EncodeToString(b))
}
