package examples

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The examples compile the contract from the repository's proto/, whose
// cloudevent.proto stands for the CloudEvents message that sdk-go compiles
// into the pb package every Go side of Switchyard uses: it must be that
// file, byte for byte, at the version go.mod requires.
func TestCloudEventProtoIsSDKGos(t *testing.T) {
	goCmd := tool(t, "go", "the Go toolchain")
	cmd := exec.Command(goCmd, "list", "-m", "-f", "{{.Dir}}", "github.com/cloudevents/sdk-go/binding/format/protobuf/v2")
	cmd.Dir = dir(".")
	out, err := cmd.Output()
	require.NoError(t, err)
	theirs, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "pb", "cloudevent.proto"))
	require.NoError(t, err)
	ours, err := os.ReadFile(dir("../proto/cloudevent.proto"))
	require.NoError(t, err)
	require.Equal(t, string(theirs), string(ours), "proto/cloudevent.proto differs from sdk-go's pb/cloudevent.proto: copy it again")
}
