package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
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

// Regression (issue 16): every image of a request was decoded before the
// request took a compute slot, so the concurrency limit did not bound
// decode memory (eight 8000x8000 PNGs in one request took the server
// down). Decoding now waits for its share of MemoryBudget, estimated from
// the headers: with the budget taken, a request is refused with 503 after
// QueueTimeout without decoding anything.
func TestDecodeMemoryBudget(t *testing.T) {
	s, _, ts := newServer(t, Options{MemoryBudget: 1 << 20, QueueTimeout: 200 * time.Millisecond})
	if err := s.budget.acquire(context.Background(), nil, 1<<20); err != nil {
		t.Fatal(err)
	}
	code, msg := post(t, ts.URL, "image/png", pngBytes(t, 1))
	if code != http.StatusServiceUnavailable || !strings.Contains(msg, "memory") {
		t.Fatalf("with the budget taken: %d %q, want 503", code, msg)
	}
	s.budget.release(1 << 20)
	if code, msg := post(t, ts.URL, "image/png", pngBytes(t, 1)); code != 200 {
		t.Fatalf("after release: %d %q", code, msg)
	}
	// The cost comes from the header: a 6000x6000 PNG is charged 288 MB
	// before a byte of it is decoded.
	if c := decodeCost(pngBomb(t, 6000, 6000), 32, 3); c < 6000*6000*8 {
		t.Fatalf("decode cost %d", c)
	}
	s.budget.mu.Lock()
	free := s.budget.free
	s.budget.mu.Unlock()
	if free != 1<<20 {
		t.Fatalf("budget leaked: %d free of %d", free, 1<<20)
	}
}
