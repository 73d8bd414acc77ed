package auth

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"time"

	"github.com/switchyard-io/switchyard/internal/tlsfiles"
)

// mtlsVerifier maps a verified client certificate to an identity.
type mtlsVerifier struct {
	// cas are the client CAs, read again when their file changes (a new
	// CA takes effect for the next certificate, without a restart). A
	// chain the TLS stack verified is taken only if it ends at one of
	// them, so a listener whose TLS config trusts more CAs (say, for
	// another purpose) does not widen who may authenticate here.
	cas    *tlsfiles.CAPool
	static map[string]StaticIdentity // method mtls, by subject
	now    func() time.Time
}

func newMTLSVerifier(caFile string, static map[string]StaticIdentity) (*mtlsVerifier, error) {
	cas, err := tlsfiles.NewCAPool(caFile)
	if err != nil {
		return nil, FieldErrors{{Path: "mtls.client_ca_file", Msg: err.Error()}}
	}
	return &mtlsVerifier{cas: cas, static: static, now: time.Now}, nil
}

// anchored reports whether root is one of the client CAs.
func (m *mtlsVerifier) anchored(root *x509.Certificate) bool {
	for _, c := range m.cas.Certificates() {
		if bytes.Equal(c.Raw, root.Raw) {
			return true
		}
	}
	return false
}

// CertificateSubject is the subject a client certificate proves: its first
// URI SAN (a SPIFFE id, say), else its common name; "" when it has neither.
func CertificateSubject(leaf *x509.Certificate) string {
	if leaf == nil {
		return ""
	}
	if len(leaf.URIs) > 0 {
		return leaf.URIs[0].String()
	}
	return leaf.Subject.CommonName
}

// verify returns the identity of the client certificate in c. Chains the
// handshake verified are used when they end at a client CA; otherwise the
// presented chain is verified here (for client usage, at the current time).
func (m *mtlsVerifier) verify(c Credentials) (*Identity, error) {
	var leaf *x509.Certificate
	for _, chain := range c.VerifiedChains {
		if len(chain) > 0 && m.anchored(chain[len(chain)-1]) {
			leaf = chain[0]
			break
		}
	}
	if leaf == nil {
		if len(c.PeerCertificates) == 0 {
			return nil, unauthenticated(MethodMTLS, "no verified client certificate")
		}
		inter := x509.NewCertPool()
		for _, ic := range c.PeerCertificates[1:] {
			inter.AddCert(ic)
		}
		_, err := c.PeerCertificates[0].Verify(x509.VerifyOptions{
			Roots: m.cas.Pool(), Intermediates: inter, CurrentTime: m.now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err != nil {
			return nil, unauthenticated(MethodMTLS, "client certificate not issued by a trusted client CA")
		}
		leaf = c.PeerCertificates[0]
	}
	subject := CertificateSubject(leaf)
	if subject == "" {
		return nil, unauthenticated(MethodMTLS, "client certificate has neither a URI SAN nor a common name")
	}
	id := &Identity{Subject: subject, Method: MethodMTLS, Expires: leaf.NotAfter}
	if si, ok := m.static[subject]; ok {
		id.Roles, id.Scope = si.Roles, si.Scope
	}
	return id.clone(), nil
}

// configure sets the client CAs of a server TLS config. optional: other
// methods (bearer tokens) are on, so a client may connect without a
// certificate; one it does present must verify.
func (m *mtlsVerifier) configure(cfg *tls.Config, optional bool) {
	cfg.ClientCAs = m.cas.Pool()
	if optional {
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	} else {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
}
