package sdk

import switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"

// Pulls returns the generated PullService client on the Client's
// connection, for consumers that drive the stream themselves; Subscribe
// does it for a handler.
func (c *Client) Pulls() switchyardv1.PullServiceClient {
	return switchyardv1.NewPullServiceClient(c.conn)
}
