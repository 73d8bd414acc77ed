// Package egress decides which network addresses Switchyard may connect to
// on behalf of a trigger, so that whoever can create a trigger cannot aim
// the server at its own infrastructure: the cloud metadata endpoint
// (169.254.169.254), Redis on loopback, a private admin service, or
// Switchyard's own listeners.
//
// The decision is made on addresses, after DNS resolution, at the moment of
// connecting ([Guard.DialContext]): the guard resolves the name itself,
// refuses every address in a denied range (see [Classify]) unless the
// operator's allowlist opens it, and connects only to the addresses it
// checked, with a dialer whose control hook checks each socket's address
// again. A name that answers with a public address at apply time and a
// private one later (DNS rebinding) therefore gains nothing: no connection
// is made to an address that was not checked at dial time.
//
// A literal address in a trigger can be refused earlier, when the trigger
// is applied ([Guard.CheckLiteral]). A refused dial returns a
// [*ForbiddenError] (matching [ErrForbidden]), which the delivery layer
// classifies as dead at once: retrying cannot make an address allowed.
//
// A nil *Guard allows everything and dials like a plain net.Dialer, so
// callers need no second code path when the guard is off.
package egress
