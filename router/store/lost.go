package store

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// scriptReplies reads the replies of the scripts a direct commit ran after
// its bodies' HSET (trigger → command), handing each to read. A script the
// server did not have (NOSCRIPT after a restart: it ran nothing, the HSET
// before it did) is loaded and run again, as rerun makes it, in a
// transaction of its own, so the stored bodies get their ids queued. The
// error is the first read's or reply's, or that transaction's: a
// *ReplicationError when its writes landed unconfirmed.
func (s *Store) scriptReplies(ctx context.Context, cmds map[string]*redis.Cmd, rerun func(p redis.Pipeliner, trig string) *redis.Cmd, read func(trig string, v []any) error) error {
	var again []string
	for trig, c := range cmds {
		v, err := c.Slice()
		switch {
		case isNoScript(err):
			again = append(again, trig)
			continue
		case err != nil:
			return err
		}
		if err := read(trig, v); err != nil {
			return err
		}
	}
	if len(again) == 0 {
		return nil
	}
	if err := s.LoadScripts(ctx); err != nil {
		return err
	}
	re := make(map[string]*redis.Cmd, len(again))
	txErr := s.acceptTx(ctx, s.keys.Queue(again[0]).Ready, func(p redis.Pipeliner) {
		for _, trig := range again {
			re[trig] = rerun(p, trig)
		}
	})
	for trig, c := range re {
		v, err := c.Slice()
		if err != nil {
			return err
		}
		if err := read(trig, v); err != nil {
			return err
		}
	}
	return txErr
}
