package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/sdk"
)

func init() { extraCommands = append(extraCommands, newTokenCmd, newAuditCmd) }

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "token",
		Aliases: []string{"tokens"},
		Short:   "Manage API keys: create, list, revoke (role admin)",
		Long: `Manage the API keys callers authenticate with ("Authorization: Bearer syk_…").

Only a hash of each key is stored, in Redis, so every instance sees a new or
revoked key at once (a revoked key is refused everywhere within a second).
A key has roles and may be scoped to event sources and types it may
publish and to the triggers it may see and change (prefixes):

  publisher  publish events
  relay      publish events and set their hop count (bridges)
  consumer   pull events
  viewer     read triggers, stats, dead letters, sources, metrics
  operator   viewer + change triggers, replay and purge dead letters
  admin      everything, API keys and the audit log included

An admin whose own key is scoped hands out keys within its scope only.`,
	}
	cmd.AddCommand(newTokenCreateCmd(), newTokenListCmd(), newTokenRevokeCmd())
	return cmd
}

// tokenJSON is a key as -o json and -o yaml print it.
type tokenJSON struct {
	Name      string     `json:"name"`
	ID        string     `json:"id"`
	Roles     []string   `json:"roles"`
	Sources   []string   `json:"sources,omitempty"`
	Types     []string   `json:"types,omitempty"`
	Triggers  []string   `json:"triggers,omitempty"`
	Created   time.Time  `json:"created"`
	Expires   *time.Time `json:"expires,omitempty"`
	CreatedBy string     `json:"created_by,omitempty"`
	// Secret is set only by create.
	Secret string `json:"secret,omitempty"`
}

func tokenView(t *switchyardv1.Token) tokenJSON {
	v := tokenJSON{
		Name: t.GetName(), ID: t.GetId(), Roles: t.GetRoles(), Sources: t.GetScope().GetSources(),
		Types: t.GetScope().GetTypes(), Triggers: t.GetScope().GetTriggers(),
		Created: t.GetCreateTime().AsTime(), CreatedBy: t.GetCreatedBy(),
	}
	if t.GetExpireTime() != nil {
		e := t.GetExpireTime().AsTime()
		v.Expires = &e
	}
	return v
}

// scopeText renders a key's scope for a table: "sources=/shop/ triggers=shop-".
func scopeText(s *switchyardv1.TokenScope) string {
	var parts []string
	for _, d := range []struct {
		name string
		list []string
	}{{"sources", s.GetSources()}, {"types", s.GetTypes()}, {"triggers", s.GetTriggers()}} {
		if len(d.list) > 0 {
			parts = append(parts, d.name+"="+strings.Join(d.list, ","))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func newTokenCreateCmd() *cobra.Command {
	var (
		opts                      clientOptions
		out                       outputFormat
		name, expires             string
		roles, sources, types, tr []string
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME --role ROLE",
		Short: "Create an API key and print it (shown this once only)",
		Long: `Create an API key and print it on standard output, alone on its line (or as
"secret" with -o json), so a script can capture it. The key is shown this
once only: the server keeps its hash alone. Send it as "Authorization: Bearer
<key>" over HTTP, or give it to the CLI with --token / SWITCHYARD_TOKEN.`,
		Example: `  switchyard token create --name ci-publisher --role publisher --sources /shop/ --types com.shop.
  switchyard token create --name shop-admin --role admin --sources /shop/ --triggers shop- --expires 720h
  export SWITCHYARD_TOKEN=$(switchyard token create --name ops --role operator)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &switchyardv1.CreateTokenRequest{Name: name, Roles: roles}
			if len(sources)+len(types)+len(tr) > 0 {
				req.Scope = &switchyardv1.TokenScope{Sources: sources, Types: types, Triggers: tr}
			}
			if expires != "" {
				d, err := parseAge(expires)
				if err != nil || d == 0 {
					return fmt.Errorf("invalid --expires %q: want a positive duration such as 720h or 30d", expires)
				}
				req.Ttl = durationpb.New(d)
			}
			return opts.withClient(func(c *sdk.Client) error {
				ctx, cancel := context.WithTimeout(cmd.Context(), opts.timeout)
				defer cancel()
				res, err := c.Tokens().CreateToken(ctx, req)
				if err != nil {
					return serverError("token create", err)
				}
				return printCreatedToken(cmd.OutOrStdout(), cmd.ErrOrStderr(), out, res)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "unique name of the key (lower-case letters, digits, '.', '_', '-')")
	f.StringArrayVar(&roles, "role", nil, "role to grant (repeat for several): publisher, relay, consumer, viewer, operator, admin")
	f.StringArrayVar(&sources, "sources", nil, "event source prefix the key may publish (repeat for several; none: any)")
	f.StringArrayVar(&types, "types", nil, "event type prefix the key may publish (repeat for several; none: any)")
	f.StringArrayVar(&tr, "triggers", nil, "trigger name prefix the key may see and change (repeat for several; none: any)")
	f.StringVar(&expires, "expires", "", "validity, e.g. 720h or 30d (default: no expiry)")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("role")
	clientFlags(cmd, &opts)
	outputFlag(cmd, &out)
	return cmd
}

// printCreatedToken prints the key on stdout and says on stderr that it is
// shown once.
func printCreatedToken(stdout, stderr io.Writer, format outputFormat, res *switchyardv1.CreateTokenResponse) error {
	v := tokenView(res.GetToken())
	v.Secret = res.GetSecret()
	fmt.Fprintf(stderr, "API key %q created (id %s, roles %s). This is the only time it is shown: store it now.\n",
		v.Name, v.ID, strings.Join(v.Roles, ","))
	switch format {
	case formatJSON:
		return writeJSON(stdout, v)
	case formatYAML:
		return writeYAML(stdout, v)
	}
	_, err := fmt.Fprintln(stdout, res.GetSecret())
	return err
}

func newTokenListCmd() *cobra.Command {
	var (
		opts clientOptions
		out  outputFormat
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List API keys (never their secret)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return opts.withClient(func(c *sdk.Client) error {
				ctx, cancel := context.WithTimeout(cmd.Context(), opts.timeout)
				defer cancel()
				res, err := c.Tokens().ListTokens(ctx, &switchyardv1.ListTokensRequest{})
				if err != nil {
					return serverError("token list", err)
				}
				return printTokens(cmd.OutOrStdout(), out, res.GetTokens(), time.Now())
			})
		},
	}
	clientFlags(cmd, &opts)
	outputFlag(cmd, &out)
	return cmd
}

func printTokens(w io.Writer, format outputFormat, ts []*switchyardv1.Token, now time.Time) error {
	switch format {
	case formatJSON, formatYAML:
		vs := make([]tokenJSON, 0, len(ts))
		for _, t := range ts {
			vs = append(vs, tokenView(t))
		}
		if format == formatJSON {
			return writeJSON(w, vs)
		}
		return writeYAML(w, vs)
	}
	tab := newTable(w, "NAME", "ID", "ROLES", "SCOPE", "CREATED", "EXPIRES", "CREATED BY")
	for _, t := range ts {
		exp := "never"
		if e := t.GetExpireTime(); e != nil {
			if d := e.AsTime().Sub(now); d > 0 {
				exp = "in " + shortDuration(d)
			} else {
				exp = "expired"
			}
		}
		tab.row(t.GetName(), t.GetId(), strings.Join(t.GetRoles(), ","), scopeText(t.GetScope()),
			shortDuration(now.Sub(t.GetCreateTime().AsTime()))+" ago", exp, dash(t.GetCreatedBy()))
	}
	return tab.flush()
}

func newTokenRevokeCmd() *cobra.Command {
	var opts clientOptions
	cmd := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke an API key: every server refuses it within a second",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return opts.withClient(func(c *sdk.Client) error {
				ctx, cancel := context.WithTimeout(cmd.Context(), opts.timeout)
				defer cancel()
				res, err := c.Tokens().RevokeToken(ctx, &switchyardv1.RevokeTokenRequest{Name: args[0]})
				if err != nil {
					return serverError("token revoke", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "API key %q revoked (id %s)\n", res.GetToken().GetName(), res.GetToken().GetId())
				return nil
			})
		},
	}
	clientFlags(cmd, &opts)
	return cmd
}

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read the audit log of admin actions (role admin)",
	}
	var (
		opts  clientOptions
		out   outputFormat
		since string
		limit int32
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List audit records, oldest first",
		Long: `List audit records, oldest first: one per admin action (trigger create, apply,
update and delete; dead-letter replay and purge; token create and revoke),
refusals included, with who, from where, what, on what and the outcome.
Without --since, the latest --limit records.`,
		Example: `  switchyard audit list --since 1h
  switchyard audit list --limit 20 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &switchyardv1.ListAuditRecordsRequest{Limit: limit}
			if limit < 1 {
				return fmt.Errorf("--limit must be positive, got %d", limit)
			}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				req.Since = timestamppb.New(t)
			}
			return opts.withClient(func(c *sdk.Client) error {
				ctx, cancel := context.WithTimeout(cmd.Context(), opts.timeout)
				defer cancel()
				res, err := c.Audit().ListAuditRecords(ctx, req)
				if err != nil {
					return serverError("audit list", err)
				}
				return printAudit(cmd.OutOrStdout(), out, res.GetRecords())
			})
		},
	}
	list.Flags().StringVar(&since, "since", "", "records since this time: a duration back from now (30m, 12h, 7d) or an RFC 3339 time")
	list.Flags().Int32Var(&limit, "limit", 100, "at most this many records (up to 1000)")
	clientFlags(list, &opts)
	outputFlag(list, &out)
	cmd.AddCommand(list)
	return cmd
}

// auditJSON is an audit record as -o json and -o yaml print it.
type auditJSON struct {
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	Subject    string    `json:"subject"`
	AuthMethod string    `json:"auth_method,omitempty"`
	Method     string    `json:"method,omitempty"`
	Action     string    `json:"action"`
	Target     string    `json:"target,omitempty"`
	Remote     string    `json:"remote,omitempty"`
	Outcome    string    `json:"outcome"`
	Detail     string    `json:"detail,omitempty"`
}

func printAudit(w io.Writer, format outputFormat, rs []*switchyardv1.AuditRecord) error {
	switch format {
	case formatJSON, formatYAML:
		vs := make([]auditJSON, 0, len(rs))
		for _, r := range rs {
			vs = append(vs, auditJSON{ID: r.GetId(), Time: r.GetTime().AsTime(), Subject: r.GetSubject(), AuthMethod: r.GetAuthMethod(),
				Method: r.GetMethod(), Action: r.GetAction(), Target: r.GetTarget(), Remote: r.GetRemote(), Outcome: r.GetOutcome(), Detail: r.GetDetail()})
		}
		if format == formatJSON {
			return writeJSON(w, vs)
		}
		return writeYAML(w, vs)
	}
	tab := newTable(w, "TIME", "SUBJECT", "ACTION", "TARGET", "OUTCOME", "REMOTE", "DETAIL")
	for _, r := range rs {
		detail := r.GetDetail()
		if len(detail) > 80 {
			detail = detail[:77] + "..."
		}
		tab.row(r.GetTime().AsTime().UTC().Format(time.RFC3339), dash(r.GetSubject()), r.GetAction(), dash(r.GetTarget()),
			r.GetOutcome(), dash(r.GetRemote()), dash(detail))
	}
	return tab.flush()
}
