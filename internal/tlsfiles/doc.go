// Package tlsfiles serves TLS certificates and CA bundles from files that
// may be replaced while the process runs (certificate rotation by
// cert-manager, a Kubernetes secret volume swapping its symlink, an
// operator copying new files in place).
//
// A [Reloader] holds a certificate and its key; a [CAPool] holds a bundle
// of CA certificates. Both load their files when created (an error then is
// a configuration error to report at start-up) and look at them again when
// used, at most once per check interval (DefaultCheckInterval), and load
// them again when their contents changed. A new version that does not load
// (a key written before its certificate, a half-copied file) is not used:
// the previous one stays in service, the failure is reported by Err, and
// the files are read again at the next check. Nothing runs in the
// background, so there is nothing to stop.
//
// Use [Reloader.GetCertificate] in a server's tls.Config and
// [Reloader.GetClientCertificate] in a client's; a CAPool's current pool
// goes into RootCAs or ClientCAs of a tls.Config built per connection (a
// client has no per-connection hook for roots), or into
// tls.Config.GetConfigForClient on a server.
package tlsfiles
