// Package sqljson holds the JSON renderings that the database connectors
// (postgres, mysql) share for column values, so that a row reads the same
// whichever database it came from.
package sqljson
