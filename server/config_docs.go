package server

import (
	"fmt"
	"reflect"
	"strings"
)

// ConfigExample is the sample file shown in docs/config.md (a test parses
// it, so it stays valid).
const ConfigExample = `# switchyard.yaml: switchyard serve --config switchyard.yaml
http_addr: 127.0.0.1:8080
grpc_addr: 127.0.0.1:9090
redis_url: redis://:${REDIS_PASSWORD}@127.0.0.1:6379/0   # REDIS_PASSWORD must be set
key_prefix: sy
max_event_bytes: 1048576
shutdown_timeout: 20s
log_level: ${LOG_LEVEL:-info}
log_format: json
# tls_cert_file: /etc/switchyard/tls/tls.crt   # TLS on both listeners; replaced files are served without a restart
# tls_key_file: /etc/switchyard/tls/tls.key
sources:
  - name: github
    kind: webhook
    fields:
      secret: ${GITHUB_WEBHOOK_SECRET}
      id_header: X-GitHub-Delivery
`

// ConfigMarkdown renders the configuration file's reference from
// FileConfig's tags and DefaultFileConfig; docs/config.md is generated from
// it.
func ConfigMarkdown() string {
	var b strings.Builder
	b.WriteString("<!-- Generated from server/config_file.go by `go test ./server -run TestConfigDocs -update`. Do not edit. -->\n\n")
	b.WriteString("# Server configuration file\n\n")
	b.WriteString("`switchyard serve --config FILE` reads a YAML (or JSON) file. Every key is optional and unknown\n" +
		"keys are errors, each reported with its line. A flag given on the command line takes precedence\n" +
		"over the file, and `SWITCHYARD_REDIS_URL` over `redis_url`. `switchyard serve --config FILE\n" +
		"--check-config` validates the file, every source's fields included, without connecting to\n" +
		"anything, and exits.\n\n")
	b.WriteString("## Environment variables\n\nString values (never keys or comments) may take values from the environment:\n\n")
	b.WriteString("| written | becomes |\n|---|---|\n" +
		"| `${NAME}` | the variable's value; an unset variable is an error naming it, its key and its line |\n" +
		"| `${NAME:-default}` | the value, or `default` (literal text up to the first `}`) when the variable is unset or empty |\n" +
		"| `$${` | a literal `${` |\n" +
		"| any other `$` | itself: `pa$word`, `$1`, `${not a name}` are kept as written |\n\n")
	b.WriteString("`NAME` is a letter or `_` followed by letters, digits and `_`. A substituted value is always a\n" +
		"string, even one made of digits (a secret stays a secret): write numbers and booleans in the file.\n\n")
	b.WriteString("## Example\n\n```yaml\n" + ConfigExample + "```\n\n")
	b.WriteString("## Keys\n\n| key | type | default | flag | description |\n|---|---|---|---|---|\n")
	def := reflect.ValueOf(DefaultFileConfig())
	t := def.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		typ := f.Tag.Get("type")
		if typ == "" {
			typ = map[reflect.Kind]string{reflect.String: "string", reflect.Int: "integer", reflect.Int64: "integer", reflect.Bool: "boolean"}[f.Type.Kind()]
		}
		dv := "—"
		if v := def.Field(i); !v.IsZero() || v.Kind() == reflect.Bool {
			dv = fmt.Sprintf("`%v`", v.Interface())
		}
		flag := "—"
		if fl := f.Tag.Get("flag"); fl != "" {
			flag = "`--" + fl + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", key, typ, dv, flag, strings.ReplaceAll(f.Tag.Get("doc"), "|", "\\|"))
	}
	return b.String()
}
