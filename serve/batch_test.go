package serve

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"sync"
	"testing"
)

// Requests from many clients are batched together; each still gets its
// own rows, and a bad image fails only its own request.
func TestConcurrentRequestsBatched(t *testing.T) {
	s, sess, ts := newServer(t, Options{MaxConcurrent: 1, MaxBatch: 8})
	const n = 24
	type answer struct {
		code  int
		feats []float32
	}
	answers := make([]answer, n)
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = pngBytes(t, 7*i)
	}
	bad := 5
	bodies[bad] = bodies[bad][:len(bodies[bad])-30] // header fine, pixels cut off
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := http.Post(ts.URL+"/v1/features", "image/png", bytes.NewReader(bodies[i]))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var r struct {
				Features [][]float32 `json:"features"`
			}
			json.NewDecoder(resp.Body).Decode(&r)
			answers[i].code = resp.StatusCode
			if len(r.Features) == 1 {
				answers[i].feats = r.Features[0]
			}
		}(i)
	}
	wg.Wait()
	for i, a := range answers {
		if i == bad {
			if a.code != http.StatusBadRequest {
				t.Errorf("truncated image: status %d, want 400", a.code)
			}
			continue
		}
		if a.code != 200 {
			t.Fatalf("request %d: status %d", i, a.code)
		}
		want := direct(t, sess, bodies[i])
		for k, v := range want {
			if math.Abs(float64(a.feats[k]-v)) > 1e-5 {
				t.Fatalf("request %d feature %d: %v, direct %v", i, k, a.feats[k], v)
			}
		}
	}
	if s.Served() != n-1 {
		t.Fatalf("served %d", s.Served())
	}
}
