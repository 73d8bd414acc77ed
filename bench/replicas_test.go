package bench

import "testing"

func TestAckReplicas(t *testing.T) {
	for in, want := range map[string]int{"": 0, "write": 0, "replicas=1": 1, "replicas=8": 8, "replicas=0": -1, "replicas=9": -1, "replicas": -1, "all": -1} {
		n, err := ackReplicas(in)
		if want < 0 {
			if err == nil {
				t.Errorf("%q: want an error, got %d", in, n)
			}
			continue
		}
		if err != nil || n != want {
			t.Errorf("%q: got %d, %v; want %d", in, n, err, want)
		}
	}
}
