package testenv

import (
	"os"
	"strconv"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestCluster: the shared cluster has three masters, each with a replica,
// and a client reaches keys in every slot range through it.
func TestCluster(t *testing.T) {
	b := Cluster(t)
	ctx := t.Context()
	info, err := b.Client.ClusterShards(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(info) != 3 {
		t.Fatalf("want 3 shards, got %d", len(info))
	}
	for _, sh := range info {
		if len(sh.Nodes) != 2 {
			t.Fatalf("want a master and a replica per shard, got %+v", sh.Nodes)
		}
	}
	for i := range 30 {
		k := b.Prefix + ":k" + strconv.Itoa(i)
		if err := b.Client.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := b.Client.Get(ctx, k).Int(); err != nil || v != i {
			t.Fatalf("get %s: %v %v", k, v, err)
		}
	}
}
