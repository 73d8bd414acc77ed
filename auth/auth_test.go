package auth

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRolePermissions(t *testing.T) {
	viewer := []Permission{PermTriggersRead, PermDeadLettersRead, PermArchiveRead, PermSourcesRead, PermMetricsRead}
	operator := append(slices.Clone(viewer), PermTriggersWrite, PermDeadLettersWrite, PermArchiveReplay)
	want := map[Role][]Permission{
		RolePublisher: {PermPublish},
		RoleRelay:     {PermPublish, PermSetHops},
		RoleConsumer:  {PermConsume},
		RoleViewer:    viewer,
		RoleOperator:  operator,
		RoleAdmin:     allPermissions,
	}
	for role, perms := range want {
		t.Run(string(role), func(t *testing.T) {
			got := (&Identity{Roles: []Role{role}}).Permissions()
			slices.Sort(got)
			exp := slices.Clone(perms)
			slices.Sort(exp)
			if !slices.Equal(got, exp) {
				t.Fatalf("%s grants %v, want %v", role, got, exp)
			}
		})
	}
	if len(want) != len(Roles()) {
		t.Fatalf("the test covers %d roles, the package has %d", len(want), len(Roles()))
	}
	// admin holds every permission, including those no other role has.
	for _, p := range []Permission{PermTokensManage, PermAuditRead, PermSetHops, PermConsume, PermPublish} {
		if !(&Identity{Roles: []Role{RoleAdmin}}).Has(p) {
			t.Errorf("admin lacks %s", p)
		}
		if (&Identity{Roles: []Role{RoleOperator}}).Has(PermTokensManage) {
			t.Errorf("operator holds %s", PermTokensManage)
		}
	}
	if (&Identity{Roles: []Role{"root"}}).Has(PermPublish) {
		t.Fatal("an unknown role granted a permission")
	}
	if got := (&Identity{Roles: []Role{RolePublisher, RoleViewer}}).Permissions(); len(got) != 6 {
		t.Fatalf("publisher+viewer = %v, want the union of 1+5 permissions", got)
	}
	if !Anonymous().Has(PermTokensManage) || Anonymous().Method != MethodNone || !Anonymous().Scope.Unrestricted() {
		t.Fatalf("anonymous identity is %+v, want every permission and no scope", Anonymous())
	}
}

func TestIdentityDecisions(t *testing.T) {
	tenant := &Identity{Subject: "shop", Roles: []Role{RoleOperator, RolePublisher},
		Scope: Scope{Sources: []string{"/shop/"}, Types: []string{"com.shop."}, Triggers: []string{"shop-"}}}
	viewer := &Identity{Subject: "v", Roles: []Role{RoleViewer}}
	relay := &Identity{Subject: "r", Roles: []Role{RoleRelay}}
	var none *Identity

	type check struct {
		err        error
		perm       Permission
		field, val string
	}
	cases := map[string]check{
		"tenant publishes in scope":          {err: tenant.AllowPublish("/shop/orders", "com.shop.order.created")},
		"tenant publishes foreign source":    {err: tenant.AllowPublish("/bank/x", "com.shop.order.created"), perm: PermPublish, field: "source", val: "/bank/x"},
		"tenant publishes foreign type":      {err: tenant.AllowPublish("/shop/orders", "com.bank.x"), perm: PermPublish, field: "type", val: "com.bank.x"},
		"prefix is not a substring":          {err: tenant.AllowPublish("/x/shop/", "com.shop.a"), perm: PermPublish, field: "source", val: "/x/shop/"},
		"tenant deletes own trigger":         {err: tenant.AllowTrigger(PermTriggersWrite, "shop-orders")},
		"tenant deletes foreign trigger":     {err: tenant.AllowTrigger(PermTriggersWrite, "bank-ledger"), perm: PermTriggersWrite, field: "trigger", val: "bank-ledger"},
		"tenant purges own dead letters":     {err: tenant.AllowTrigger(PermDeadLettersWrite, "shop-a")},
		"tenant lacks tokens":                {err: tenant.Allow(PermTokensManage), perm: PermTokensManage},
		"tenant may not set hops":            {err: tenant.AllowHops(), perm: PermSetHops, field: HopsAttribute},
		"viewer lists dead letters":          {err: viewer.AllowTrigger(PermDeadLettersRead, "any")},
		"viewer cannot purge":                {err: viewer.AllowTrigger(PermDeadLettersWrite, "any"), perm: PermDeadLettersWrite},
		"viewer cannot publish":              {err: viewer.AllowPublish("/a", "b"), perm: PermPublish},
		"relay sets hops":                    {err: relay.AllowHops()},
		"relay publishes anything":           {err: relay.AllowPublish("/any", "any")},
		"nil identity denied":                {err: none.Allow(PermPublish), perm: PermPublish},
		"nil identity denied trigger":        {err: none.AllowTrigger(PermTriggersRead, "x"), perm: PermTriggersRead},
		"nil identity denied publish":        {err: none.AllowPublish("/a", "b"), perm: PermPublish},
		"permission checked before scope":    {err: viewer.AllowTrigger(PermTriggersWrite, "shop-a"), perm: PermTriggersWrite},
		"anonymous may do anything":          {err: Anonymous().AllowTrigger(PermDeadLettersWrite, "x")},
		"anonymous may set hops":             {err: Anonymous().AllowHops()},
		"empty prefix in a list matches nil": {err: (&Identity{Roles: []Role{RolePublisher}, Scope: Scope{Sources: []string{""}}}).AllowPublish("/a", "b"), perm: PermPublish, field: "source", val: "/a"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if c.perm == "" {
				if c.err != nil {
					t.Fatalf("denied: %v", c.err)
				}
				return
			}
			var de *DeniedError
			if !errors.As(c.err, &de) || !errors.Is(c.err, ErrPermissionDenied) {
				t.Fatalf("got %v, want a *DeniedError", c.err)
			}
			if de.Permission != c.perm || de.Field != c.field || de.Value != c.val {
				t.Fatalf("denied %+v, want permission %s field %q value %q", de, c.perm, c.field, c.val)
			}
			if errors.Is(c.err, ErrUnauthenticated) {
				t.Fatal("a denial must not read as unauthenticated")
			}
			if c.field != "" && !strings.Contains(de.Error(), c.field) {
				t.Fatalf("message %q does not name %q", de.Error(), c.field)
			}
		})
	}

	if !tenant.CanSeeTrigger("shop-a") || tenant.CanSeeTrigger("bank-a") || !viewer.CanSeeTrigger("bank-a") || none.CanSeeTrigger("a") {
		t.Fatal("visibility predicate wrong")
	}
	names := []string{"bank-a", "shop-a", "shop-b", "shopping", "shop"}
	var seen []string
	for _, n := range names {
		if tenant.CanSeeTrigger(n) {
			seen = append(seen, n)
		}
	}
	if !slices.Equal(seen, []string{"shop-a", "shop-b"}) {
		t.Fatalf("tenant listing shows %v", seen)
	}
}

func TestAllowGrant(t *testing.T) {
	tenantAdmin := &Identity{Subject: "shop-admin", Roles: []Role{RoleAdmin}, Scope: Scope{Triggers: []string{"shop-"}, Sources: []string{"/shop/"}}}
	operator := &Identity{Subject: "op", Roles: []Role{RoleOperator}}
	cases := map[string]struct {
		by    *Identity
		roles []Role
		scope Scope
		field string // "" = allowed; "-" = lacks the permission itself
	}{
		"narrower scope":             {tenantAdmin, []Role{RolePublisher}, Scope{Triggers: []string{"shop-orders-"}, Sources: []string{"/shop/eu/"}}, ""},
		"same scope":                 {tenantAdmin, []Role{RoleAdmin}, tenantAdmin.Scope, ""},
		"unrestricted triggers":      {tenantAdmin, []Role{RoleViewer}, Scope{Sources: []string{"/shop/"}}, "scope"},
		"foreign triggers":           {tenantAdmin, []Role{RoleViewer}, Scope{Triggers: []string{"bank-"}, Sources: []string{"/shop/"}}, "scope"},
		"wider source":               {tenantAdmin, []Role{RolePublisher}, Scope{Triggers: []string{"shop-"}, Sources: []string{"/"}}, "scope"},
		"types free when unscoped":   {tenantAdmin, []Role{RolePublisher}, Scope{Triggers: []string{"shop-"}, Sources: []string{"/shop/"}, Types: []string{"a."}}, ""},
		"operator cannot make keys":  {operator, []Role{RoleViewer}, Scope{}, "-"},
		"root admin grants anything": {Anonymous(), []Role{RoleAdmin}, Scope{}, ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := c.by.AllowGrant(c.roles, c.scope)
			var de *DeniedError
			switch {
			case c.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.field == "":
			case !errors.As(err, &de):
				t.Fatalf("got %v, want a denial", err)
			case c.field == "-" && (de.Field != "" || de.Permission != PermTokensManage):
				t.Fatalf("denial %+v, want missing %s", de, PermTokensManage)
			case c.field != "-" && de.Field != c.field:
				t.Fatalf("denial names %q, want %q", de.Field, c.field)
			}
		})
	}
	// A relay-less identity cannot hand out relay: it would grant a
	// permission it lacks.
	pubAdmin := &Identity{Subject: "x", Roles: []Role{RolePublisher, RoleViewer}}
	if pubAdmin.Has(PermTokensManage) {
		t.Fatal("setup")
	}
	mixed := &Identity{Subject: "m", Roles: []Role{RoleOperator}}
	mixed.Roles = append(mixed.Roles, "token-maker") // unknown role grants nothing
	if err := mixed.AllowGrant([]Role{RolePublisher}, Scope{}); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("operator granted a key: %v", err)
	}
}

func TestScopeValidate(t *testing.T) {
	long := strings.Repeat("a", MaxPrefixLength+1)
	many := make([]string, MaxScopePrefixes+1)
	for i := range many {
		many[i] = string(rune('a'+i%26)) + strings.Repeat("x", i)
	}
	s := Scope{
		Sources:  []string{"/ok/", "", long, "/ok/"},
		Types:    []string{"a\x01b", "\xff"},
		Triggers: []string{"Shop-", "shop-", "-x", "a_b"},
	}
	err := s.Validate("scope")
	var fe FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("got %v", err)
	}
	want := []string{"scope.sources[1]", "scope.sources[2]", "scope.sources[3]", "scope.types[0]", "scope.types[1]", "scope.triggers[0]", "scope.triggers[2]", "scope.triggers[3]"}
	var got []string
	for _, e := range fe {
		got = append(got, e.Path)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("errors at %v, want %v\n%v", got, want, err)
	}
	if err := (Scope{Triggers: many}).Validate("s"); err == nil || !strings.Contains(err.Error(), "s.triggers") {
		t.Fatalf("too many prefixes: %v", err)
	}
	if err := (Scope{Sources: []string{"/shop/"}, Types: []string{"com.shop."}, Triggers: []string{"shop-"}}).Validate("scope"); err != nil {
		t.Fatal(err)
	}
}

func TestKeySpecValidate(t *testing.T) {
	err := KeySpec{Name: "Bad Name", Roles: []Role{"root", RoleViewer, RoleViewer}, Scope: Scope{Triggers: []string{"X"}}, TTL: -time.Second}.Validate()
	var fe FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("got %v", err)
	}
	var got []string
	for _, e := range fe {
		got = append(got, e.Path)
	}
	want := []string{"name", "roles[0]", "roles[2]", "scope.triggers[0]", "ttl"}
	if !slices.Equal(got, want) {
		t.Fatalf("errors at %v, want %v", got, want)
	}
	if err := (KeySpec{Name: "ci.publisher_1", Roles: []Role{RolePublisher}}).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (KeySpec{Name: "x"}).Validate(); err == nil || !strings.Contains(err.Error(), "roles") {
		t.Fatalf("no roles: %v", err)
	}
}

func TestParseAPIKey(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		key, id := newAPIKey()
		if len(key) != APIKeyLength || !LooksLikeAPIKey(key) {
			t.Fatalf("key %q has length %d", key, len(key))
		}
		gid, secret, ok := ParseAPIKey(key)
		if !ok || gid != id || len(secret) != apiKeySecretLen {
			t.Fatalf("ParseAPIKey(%q) = %q, %q, %v", key, gid, secret, ok)
		}
		if seen[secret] || seen[id] {
			t.Fatal("a key repeated")
		}
		seen[secret], seen[id] = true, true
	}
	key, _ := newAPIKey()
	bad := map[string]string{
		"empty":       "",
		"no prefix":   key[4:],
		"upper":       strings.ToUpper(key),
		"short":       key[:len(key)-1],
		"long":        key + "a",
		"bad sep":     key[:4+16] + "-" + key[4+17:],
		"bad char":    key[:len(key)-1] + "1",
		"other":       "sk_live_abc",
		"prefix only": APIKeyPrefix,
	}
	for name, k := range bad {
		if _, _, ok := ParseAPIKey(k); ok {
			t.Errorf("%s: %q parsed", name, k)
		}
	}
}

func TestBearerFromHeader(t *testing.T) {
	ok := map[string]string{
		"Bearer abc":                         "abc",
		"bearer abc":                         "abc",
		"BEARER   abc.def-_~+/==":            "abc.def-_~+/==",
		"Bearer syk_aaaa_bbbb":               "syk_aaaa_bbbb",
		"":                                   "",
		"Bearer eyJh.eyJi.c2ln":              "eyJh.eyJi.c2ln",
		"Bearer a=":                          "a=",
		"Bearer " + strings.Repeat("a", 100): strings.Repeat("a", 100),
	}
	for h, want := range ok {
		got, err := BearerFromHeader(h)
		if err != nil || got != want {
			t.Errorf("BearerFromHeader(%q) = %q, %v; want %q", h, got, err, want)
		}
	}
	bad := []string{"Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer a b", "Bearer =a", "Bearer a=b", "Bearer\tabc", "Token abc",
		"Bearer abc\n", "Bearer ab\x00c", "Bearer " + strings.Repeat("a", MaxAuthorizationBytes)}
	for _, h := range bad {
		tok, err := BearerFromHeader(h)
		if err == nil || tok != "" || !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("BearerFromHeader(%q) = %q, %v; want refusal", h, tok, err)
		}
		if err != nil && len(h) > 12 && strings.Contains(err.Error(), h[7:]) {
			t.Errorf("refusal %q echoes the header", err)
		}
	}
	if _, err := BearerFromValues([]string{"Bearer a", "Bearer b"}); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("two headers: %v", err)
	}
	if tok, err := BearerFromValues(nil); tok != "" || err != nil {
		t.Errorf("no header: %q %v", tok, err)
	}
}

func TestRedact(t *testing.T) {
	key, id := newAPIKey()
	_, secret, _ := ParseAPIKey(key)
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	in := "failed for " + key + " and Authorization: Bearer opaque-token-123 and " + jwt
	out := Redact(in)
	for _, s := range []string{secret, "opaque-token-123", "c2lnbmF0dXJl", "eyJzdWIiOiJ4In0"} {
		if strings.Contains(out, s) {
			t.Fatalf("%q survived in %q", s, out)
		}
	}
	if !strings.Contains(out, "syk_"+id+"_[REDACTED]") {
		t.Fatalf("the key's public id should stay: %q", out)
	}
	if Redact("trigger shop-orders deleted") != "trigger shop-orders deleted" {
		t.Fatal("plain text changed")
	}
}
