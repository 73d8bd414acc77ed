package deploy_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-io/switchyard/connectors"
)

var update = flag.Bool("update", false, "rewrite the chart's files generated from the code")

// chartSecretFields is the chart's list of connector fields that hold
// secrets (its templates refuse such a field written as a literal).
var chartSecretFields = filepath.Join("helm", "switchyard", "files", "secret-fields.yaml")

// secretFieldsYAML renders the secret fields of every registered connector.
func secretFieldsYAML(specs []connectors.Spec) []byte {
	var b bytes.Buffer
	b.WriteString("# Generated from the connectors' specs by `go test ./deploy -run TestChartSecretFields -update`. Do not edit.\n")
	b.WriteString("# The fields each kind of source marks secret: the chart refuses one that holds\n")
	b.WriteString("# the secret itself rather than a ${VAR} reference to the environment.\n")
	for _, s := range specs {
		var names []string
		for _, f := range s.Fields {
			if f.Secret {
				names = append(names, f.Name)
			}
		}
		if len(names) > 0 {
			fmt.Fprintf(&b, "%s: [%s]\n", s.Kind, strings.Join(names, ", "))
		}
	}
	return b.Bytes()
}

// TestChartSecretFields keeps the chart's list of secret connector fields
// equal to what the connectors declare. Regenerate with:
// go test ./deploy -run TestChartSecretFields -update
func TestChartSecretFields(t *testing.T) {
	specs := connectors.Default.List()
	if len(specs) == 0 {
		t.Fatal("no connector registered (connectors/all not imported?)")
	}
	want := secretFieldsYAML(specs)
	if !bytes.Contains(want, []byte("webhook: [secret]")) {
		t.Fatalf("the webhook connector's signing secret is not listed:\n%s", want)
	}
	if *update {
		if err := os.WriteFile(chartSecretFields, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(chartSecretFields)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run go test ./deploy -run TestChartSecretFields -update\nwant:\n%s", chartSecretFields, want)
	}
}
