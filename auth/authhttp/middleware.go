package authhttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/switchyard-io/switchyard/auth"
)

// Policy says what each path needs. A pattern is an exact path ("/events"),
// or a prefix when it ends in "/" ("/webhooks/" covers "/webhooks/github").
// The longest matching pattern of Routes and Public decides.
type Policy struct {
	// Routes maps a pattern to the permission checked before the handler.
	Routes map[string]auth.Permission
	// Public patterns are served without credentials: health checks, and
	// push sources that verify their own signatures.
	Public []string
	// OnError writes a refusal; WriteError when nil.
	OnError func(w http.ResponseWriter, r *http.Request, err error)
}

// DefaultPolicy returns a fresh policy for the server's HTTP listener:
// POST /events needs publish, /metrics needs metrics.read, health checks and
// webhook receivers (which verify their own signatures) are public.
func DefaultPolicy() Policy {
	return Policy{
		Routes: map[string]auth.Permission{
			"/events":  auth.PermPublish,
			"/metrics": auth.PermMetricsRead,
		},
		Public: []string{"/healthz", "/readyz", "/webhooks/"},
	}
}

// rule is what the policy says of a path: public, a permission, or nothing.
func (p Policy) rule(urlPath string) (perm auth.Permission, public, found bool) {
	best := -1
	consider := func(pattern string, pm auth.Permission, pub bool) {
		if len(pattern) <= best {
			return
		}
		if pattern == urlPath || (strings.HasSuffix(pattern, "/") && strings.HasPrefix(urlPath, pattern)) {
			best, perm, public, found = len(pattern), pm, pub, true
		}
	}
	for pattern, pm := range p.Routes {
		consider(pattern, pm, false)
	}
	for _, pattern := range p.Public {
		consider(pattern, "", true)
	}
	return perm, public, found
}

// cleanPath is the path the mux will route: cleaned of "." and ".." and
// doubled slashes (ServeMux redirects to it), so "/healthz/../metrics" is
// judged as "/metrics".
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// Middleware authenticates every request that the policy does not make
// public, checks the permission of its path, and calls next with the
// identity in the request's context.
func Middleware(v auth.Verifier, p Policy, next http.Handler) http.Handler {
	onError := p.OnError
	if onError == nil {
		onError = WriteError
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		perm, public, found := p.rule(cleanPath(r.URL.Path))
		if public {
			next.ServeHTTP(w, r)
			return
		}
		creds, err := CredentialsFromRequest(r)
		if err != nil {
			onError(w, r, err)
			return
		}
		id, err := v.Authenticate(r.Context(), creds)
		if err != nil {
			onError(w, r, err)
			return
		}
		if !found {
			onError(w, r, fmt.Errorf("%w: path %q is not in the permission table", auth.ErrPermissionDenied, r.URL.Path))
			return
		}
		if err := id.Allow(perm); err != nil {
			onError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), id)))
	})
}

// CredentialsFromRequest collects what the caller presented: the bearer
// token of its Authorization header, its verified certificate chains when
// it connected with TLS, and its address.
func CredentialsFromRequest(r *http.Request) (auth.Credentials, error) {
	tok, err := auth.BearerFromValues(r.Header.Values("Authorization"))
	if err != nil {
		return auth.Credentials{}, err
	}
	c := auth.Credentials{Bearer: tok, Remote: r.RemoteAddr}
	if r.TLS != nil {
		c.VerifiedChains = r.TLS.VerifiedChains
		c.PeerCertificates = r.TLS.PeerCertificates
	}
	return c, nil
}

// Problem is the RFC 9457 document WriteError sends; its fields match the
// server's problem documents.
type Problem struct {
	Type   string          `json:"type"`
	Title  string          `json:"title"`
	Status int             `json:"status"`
	Detail string          `json:"detail,omitempty"`
	Errors []ProblemDetail `json:"errors,omitempty"`
}

// ProblemDetail names what is out of scope: a CloudEvents attribute of a
// publish, or another field.
type ProblemDetail struct {
	Attribute string `json:"attribute,omitempty"`
	Field     string `json:"field,omitempty"`
	Detail    string `json:"detail"`
}

// ProblemFor maps an error of the auth package to its problem document.
func ProblemFor(err error) Problem {
	var de *auth.DeniedError
	var ue *auth.UnauthenticatedError
	switch {
	case errors.As(err, &ue):
		return Problem{Type: "/problems/unauthenticated", Title: "Unauthenticated", Status: http.StatusUnauthorized, Detail: ue.Error()}
	case errors.Is(err, auth.ErrUnauthenticated):
		return Problem{Type: "/problems/unauthenticated", Title: "Unauthenticated", Status: http.StatusUnauthorized, Detail: "unauthenticated"}
	case errors.As(err, &de):
		p := Problem{Type: "/problems/permission-denied", Title: "Permission denied", Status: http.StatusForbidden, Detail: de.Error()}
		switch de.Field {
		case "":
		case "source", "type", auth.HopsAttribute:
			p.Errors = []ProblemDetail{{Attribute: de.Field, Detail: de.Error()}}
		default:
			p.Errors = []ProblemDetail{{Field: de.Field, Detail: de.Error()}}
		}
		return p
	case errors.Is(err, auth.ErrPermissionDenied):
		return Problem{Type: "/problems/permission-denied", Title: "Permission denied", Status: http.StatusForbidden, Detail: err.Error()}
	case errors.Is(err, auth.ErrUnavailable):
		return Problem{Type: "/problems/store-unavailable", Title: "Store unavailable", Status: http.StatusServiceUnavailable,
			Detail: "credentials cannot be checked now: the key store is unavailable; retry"}
	}
	return Problem{Type: "/problems/internal", Title: "Internal error", Status: http.StatusInternalServerError, Detail: "internal error while authenticating"}
}

// WriteError writes the problem document of err, with WWW-Authenticate on
// 401 (RFC 6750: error="invalid_token" when a token was sent) and
// Retry-After on 503.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	p := ProblemFor(err)
	switch p.Status {
	case http.StatusUnauthorized:
		v := `Bearer realm="switchyard"`
		if r.Header.Get("Authorization") != "" {
			v += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", v)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
