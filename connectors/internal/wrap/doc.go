// Package wrap holds what the connectors share to turn a foreign message (a
// broker message, a stream entry, a file, an object) into a CloudEvent:
// recognising a message that already is one (IsStructured, LooksStructured),
// checking the source and type a connector stamps on the events it wraps
// (CheckSourceType), repairing the optional attributes taken from a message
// that CloudEvents refuses (DropInvalid, SafeSubject), and the hashes that
// give a message without an id a stable one across redeliveries
// (ContentHash) and a change seen by a polling source its id
// (TerminatedHash).
//
// It is internal to connectors/: the contract package stays a leaf, and
// each connector keeps what is its transport's own (its binary-mode header
// names, its id scheme); only the rules that must agree between connectors
// live here. The single-value checks are cloudevent.ValidString and
// cloudevent.ValidMediaType.
package wrap
