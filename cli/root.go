package cli

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchyard-io/switchyard/sdk"
)

// Version is the switchyard version, set at build time with
// -ldflags "-X github.com/switchyard-io/switchyard/cli.Version=v1.2.3".
var Version = "dev"

// DefaultServer is the gRPC address client commands talk to.
const DefaultServer = "localhost:9090"

// NewRoot builds the switchyard command tree.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "switchyard",
		Short: "Switchyard: a CloudEvents event bus and trigger router",
		Long: "Switchyard accepts CloudEvents, routes them by trigger and delivers them over gRPC or HTTP with retries, per-function concurrency limits and a dead-letter queue.\n\n" +
			exitCodesHelp,
		SilenceUsage:      true,
		SilenceErrors:     true,
		Version:           Version,
		PersistentPreRunE: checkFlags,
	}
	root.AddCommand(newServeCmd())
	for _, add := range extraCommands {
		root.AddCommand(add())
	}
	markUsageErrors(root)
	return root
}

// extraCommands are registered by the files that define them.
var extraCommands []func() *cobra.Command

// clientOptions are the flags shared by the commands that call the API:
// where the server is, how long a call may take, and the credentials.
type clientOptions struct {
	server  string
	timeout time.Duration
	token   string
	tls     sdk.TLSConfig
	// plaintextToken sends the token without TLS beyond loopback.
	plaintextToken bool
}

// The environment variables of the client flags. A flag given explicitly
// wins over its variable.
const (
	EnvToken         = "SWITCHYARD_TOKEN"
	EnvTLSCA         = "SWITCHYARD_TLS_CA"
	EnvTLSCert       = "SWITCHYARD_TLS_CERT"
	EnvTLSKey        = "SWITCHYARD_TLS_KEY"
	EnvTLSServerName = "SWITCHYARD_TLS_SERVER_NAME"
)

// clientFlags adds the flags every client command takes: --server,
// --timeout, --token and the TLS options.
func clientFlags(cmd *cobra.Command, o *clientOptions) {
	serverFlag(cmd, &o.server)
	f := cmd.Flags()
	f.DurationVar(&o.timeout, "timeout", sdk.DefaultTimeout, "timeout of each API call")
	// The token's default is not shown (help output would print it): the
	// variable is read in client().
	f.StringVar(&o.token, "token", "", "bearer token: an API key (switchyard token create) or the admin token (env "+EnvToken+", which keeps it out of the process list)")
	f.StringVar(&o.tls.CAFile, "tls-ca", "", "connect with TLS, trusting the CA certificates in this PEM file (env "+EnvTLSCA+")")
	f.StringVar(&o.tls.CertFile, "tls-cert", "", "client certificate (PEM) for mTLS; implies TLS (env "+EnvTLSCert+")")
	f.StringVar(&o.tls.KeyFile, "tls-key", "", "key of --tls-cert (PEM) (env "+EnvTLSKey+")")
	f.StringVar(&o.tls.ServerName, "tls-server-name", "", "name the server's certificate must carry, when not the --server host; implies TLS (env "+EnvTLSServerName+")")
	f.BoolVar(&o.plaintextToken, "allow-plaintext-token", false, "send --token without TLS to a non-loopback server (anyone on the path can read it)")
}

// sdkConfig is the client configuration the flags and the environment
// describe. TLS is on when any TLS option is set.
func (o *clientOptions) sdkConfig() (sdk.Config, error) {
	if o.timeout <= 0 {
		return sdk.Config{}, invalidf("--timeout must be positive, got %v", o.timeout)
	}
	orEnv := func(v, env string) string {
		if v == "" {
			return os.Getenv(env)
		}
		return v
	}
	cfg := sdk.Config{Address: o.server, Timeout: o.timeout, Token: orEnv(o.token, EnvToken), AllowPlaintextToken: o.plaintextToken}
	t := sdk.TLSConfig{
		CAFile: orEnv(o.tls.CAFile, EnvTLSCA), CertFile: orEnv(o.tls.CertFile, EnvTLSCert),
		KeyFile: orEnv(o.tls.KeyFile, EnvTLSKey), ServerName: orEnv(o.tls.ServerName, EnvTLSServerName),
	}
	if t != (sdk.TLSConfig{}) {
		cfg.TLS = &t
	}
	return cfg, nil
}

// client returns an sdk client for the flags; the caller closes it.
func (o *clientOptions) client() (*sdk.Client, error) {
	cfg, err := o.sdkConfig()
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil { // a bad address or credentials: invalid input
		return nil, usageError(err)
	}
	return sdk.New(cfg)
}

// withClient runs f with a client for the flags and closes it afterwards.
func (o *clientOptions) withClient(f func(*sdk.Client) error) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	defer c.Close()
	return f(c)
}

// serverFlag adds the --server flag (env SWITCHYARD_SERVER) to a client command.
func serverFlag(cmd *cobra.Command, dst *string) {
	def := DefaultServer
	if v := os.Getenv("SWITCHYARD_SERVER"); v != "" {
		def = v
	}
	cmd.Flags().StringVar(dst, "server", def, "gRPC address of a switchyard server (env SWITCHYARD_SERVER)")
}
