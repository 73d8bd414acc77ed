package chartcheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "../switchyard"
	releaseName = "sy"
	namespace   = "events"
	// kubeVersion is what the chart is rendered for: a release its
	// kubeVersion constraint admits and whose API types k8s.io/api holds.
	kubeVersion = "v1.34.0"
)

// loadChart loads the chart directory as helm install does.
func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// valuesFile reads a values file of the chart directory.
func valuesFile(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(chartDir, name))
	if err != nil {
		t.Fatal(err)
	}
	v, err := loader.LoadValues(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// set returns the values of a dotted path (helm's --set a.b.c=v), to merge
// over others.
func set(path string, v any) map[string]any {
	keys := strings.Split(path, ".")
	out := map[string]any{keys[len(keys)-1]: v}
	for i := len(keys) - 2; i >= 0; i-- {
		out = map[string]any{keys[i]: out}
	}
	return out
}

// merge merges values like helm's repeated -f and --set: later ones win,
// maps merge deeply.
func merge(layers ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, l := range layers {
		out = loader.MergeMaps(out, l)
	}
	return out
}

// render renders the chart with the user-supplied values (over the chart's
// values.yaml), as helm install would, schema validation included. It
// returns the manifests by template name.
func render(t *testing.T, vals map[string]any) (map[string]string, error) {
	t.Helper()
	ch := loadChart(t)
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	caps := common.DefaultCapabilities.Copy()
	caps.KubeVersion = *kv
	rv, err := util.ToRenderValuesWithSchemaValidation(ch, vals,
		common.ReleaseOptions{Name: releaseName, Namespace: namespace, Revision: 1, IsInstall: true}, caps, false)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, rv)
}

// object is one rendered manifest.
type object struct {
	File       string
	APIVersion string
	Kind       string
	Name       string
	Raw        []byte // YAML
	Obj        any    // the decoded typed object
}

// manifests renders vals and decodes every document strictly; a failure to
// render is fatal.
func manifests(t *testing.T, vals map[string]any) map[string]object {
	t.Helper()
	out, err := render(t, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	objs, err := decodeAll(out)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// key names an object in a manifests map.
func key(kind, name string) string { return kind + "/" + name }

// decodeAll splits the rendered templates into documents and decodes each
// strictly (unknown fields, duplicate fields and wrong types are errors).
// NOTES.txt is not a manifest.
func decodeAll(rendered map[string]string) (map[string]object, error) {
	files := make([]string, 0, len(rendered))
	for f := range rendered {
		files = append(files, f)
	}
	sort.Strings(files)
	objs := map[string]object{}
	var errs []error
	for _, f := range files {
		if !strings.HasSuffix(f, ".yaml") {
			continue
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(rendered[f])))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f, err))
				break
			}
			o, err := decodeStrict(f, doc)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if o == nil {
				continue
			}
			k := key(o.Kind, o.Name)
			if _, dup := objs[k]; dup {
				errs = append(errs, fmt.Errorf("%s: %s rendered twice", f, k))
			}
			objs[k] = *o
		}
	}
	return objs, errors.Join(errs...)
}

// scheme knows the built-in kinds the chart renders.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, networkingv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

var strictYAML = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
	kjson.SerializerOptions{Yaml: true, Strict: true})

// decodeStrict decodes one document: built-in kinds with the API machinery's
// strict decoder, the CRD kinds into local structs with unknown fields
// refused. An empty document is nil.
func decodeStrict(file string, doc []byte) (*object, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: not YAML: %w\n%s", file, err, doc)
	}
	if string(js) == "null" {
		return nil, nil
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if head.Kind == "" || head.APIVersion == "" || head.Metadata.Name == "" {
		return nil, fmt.Errorf("%s: a document without apiVersion, kind or metadata.name:\n%s", file, doc)
	}
	if head.Metadata.Namespace != "" {
		return nil, fmt.Errorf("%s: %s sets metadata.namespace (helm install -n decides it)", file, head.Kind)
	}
	o := &object{File: file, APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, Raw: doc}
	if crd, ok := crdKinds[head.APIVersion+"/"+head.Kind]; ok {
		v := crd()
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return nil, fmt.Errorf("%s: %s %s: %w", file, head.Kind, head.Metadata.Name, err)
		}
		o.Obj = v
		return o, nil
	}
	obj, gvk, err := strictYAML.Decode(doc, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", file, head.Kind, head.Metadata.Name, err)
	}
	if gvk.GroupVersion().String() != head.APIVersion {
		return nil, fmt.Errorf("%s: decoded as %s, not %s", file, gvk, head.APIVersion)
	}
	o.Obj = obj
	return o, nil
}

// get returns the typed object of kind and name, failing the test when it
// was not rendered.
func get[T any](t *testing.T, objs map[string]object, kind, name string) T {
	t.Helper()
	o, ok := objs[key(kind, name)]
	if !ok {
		var names []string
		for k := range objs {
			names = append(names, k)
		}
		sort.Strings(names)
		t.Fatalf("%s/%s not rendered (have %s)", kind, name, strings.Join(names, ", "))
	}
	v, ok := o.Obj.(T)
	if !ok {
		t.Fatalf("%s/%s decoded as %T", kind, name, o.Obj)
	}
	return v
}
