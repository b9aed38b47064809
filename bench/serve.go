package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/selfsup/selfsup/runtime"
	"github.com/selfsup/selfsup/serve"
	"github.com/selfsup/selfsup/train"
)

// ServeConfig is `selfsup bench serve`.
type ServeConfig struct {
	Model string
	// Clients send requests at once, Requests in all, each of PerRequest
	// images (photograph-like 320x240 JPEGs made for the run, as bench
	// extract's synthetic data).
	Clients, Requests, PerRequest int
	// Concurrency is the server's compute slots (serve.Options.MaxConcurrent;
	// 0: 2, the server's default).
	Concurrency int
	// ExtractImages, when > 0, also runs bench extract's pipeline on as
	// many of the same images with the same session options and reports
	// the ratio of the two rates; 0 skips it.
	ExtractImages int
	Batch         int // extraction batch for that comparison
	Runtime       runtime.Options
	Log           io.Writer
}

// ServeResult is what bench serve measures.
type ServeResult struct {
	Model            string  `json:"model"`
	Device           string  `json:"device"`
	Clients          int     `json:"clients"`
	Requests         int     `json:"requests"`
	PerRequest       int     `json:"images_per_request"`
	Concurrency      int     `json:"server_concurrency"`
	Errors           int     `json:"errors"`
	FirstError       string  `json:"first_error,omitempty"`
	Seconds          float64 `json:"seconds"`
	ReqPerSec        float64 `json:"requests_per_sec"`
	ImagesPerSec     float64 `json:"images_per_sec"`
	P50ms            float64 `json:"latency_p50_ms"`
	P99ms            float64 `json:"latency_p99_ms"`
	RSSIdleMB        float64 `json:"server_rss_idle_mb"`
	RSSPeakMB        float64 `json:"server_rss_peak_mb"`
	RSSRatio         float64 `json:"server_rss_peak_over_idle"`
	ExtractIPS       float64 `json:"extract_images_per_sec,omitempty"`
	ServeOverExtract float64 `json:"serve_over_extract,omitempty"`
	Cores            int     `json:"cores"`
	LoadBefore       string  `json:"load_avg_before"`
	LoadAfter        string  `json:"load_avg_after"`
	Date             string  `json:"date"`
}

// Serve measures the feature server under bounded load: it starts
// serve.Server on 127.0.0.1 (an ephemeral port, in this process), lets
// Clients goroutines post Requests requests of PerRequest JPEG images,
// and reports requests and images a second, latency percentiles, errors
// and the process's resident memory idle and at its peak (sampled every
// 20 ms; the clients' share is their request bodies, a few hundred KB).
// With ExtractImages it also runs bench extract's pipeline on the same
// images for the ratio serve/extract.
func Serve(c ServeConfig) (*ServeResult, error) {
	log := c.Log
	if log == nil {
		log = io.Discard
	}
	if c.Clients < 1 || c.Requests < 1 || c.PerRequest < 1 {
		return nil, fmt.Errorf("bench serve: --clients %d, --requests %d and --per-request %d must be >= 1", c.Clients, c.Requests, c.PerRequest)
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 2
	}
	res := &ServeResult{Model: c.Model, Device: c.Runtime.Device, Clients: c.Clients, Requests: c.Requests, PerRequest: c.PerRequest,
		Concurrency: c.Concurrency, Cores: goruntime.NumCPU(), LoadBefore: LoadAvg(), Date: time.Now().UTC().Format(time.RFC3339)}
	if res.Device == "" {
		res.Device = "cpu"
	}
	tmp, err := os.MkdirTemp("", "selfsup-bench-serve-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	nImg := max(c.PerRequest*4, c.ExtractImages, 16)
	dir, err := syntheticImages(tmp, nImg, 320, 240, 1)
	if err != nil {
		return nil, fmt.Errorf("bench serve: %w", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	sort.Strings(files)
	imgs := make([][]byte, len(files))
	for i, f := range files {
		if imgs[i], err = os.ReadFile(f); err != nil {
			return nil, err
		}
	}
	sess, err := runtime.Open(c.Model, c.Runtime)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	srv, err := serve.New(sess, serve.Options{MaxConcurrent: c.Concurrency, MaxBatch: max(c.PerRequest, 1), QueueTimeout: time.Minute})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench serve: %w", err)
	}
	hs := srv.HTTPServer()
	go hs.Serve(ln)
	defer hs.Close()
	url := "http://" + ln.Addr().String() + "/v1/features"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.Clients, MaxConnsPerHost: c.Clients}, Timeout: 5 * time.Minute}
	body := func(k int) (string, []byte) {
		if c.PerRequest == 1 {
			return "image/jpeg", imgs[k%len(imgs)]
		}
		var b bytes.Buffer
		b.WriteString(`{"images": [`)
		for j := 0; j < c.PerRequest; j++ {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(base64.StdEncoding.EncodeToString(imgs[(k*c.PerRequest+j)%len(imgs)])))
		}
		b.WriteString("]}")
		return "application/json", b.Bytes()
	}
	post := func(k int) error {
		ct, b := body(k)
		resp, err := client.Post(url, ct, bytes.NewReader(b))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
		}
		return nil
	}
	// Warm up: one request per client, so that sessions, connections and
	// buffers exist before the idle figure is taken.
	for k := 0; k < min(c.Clients, 4); k++ {
		if err := post(k); err != nil {
			return nil, fmt.Errorf("bench serve: warm-up request: %w", err)
		}
	}
	goruntime.GC()
	time.Sleep(100 * time.Millisecond)
	idle := rssBytes()
	var peak atomic.Int64
	peak.Store(idle)
	ctx, stop := context.WithCancel(context.Background())
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if r := rssBytes(); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	fmt.Fprintf(log, "bench serve: %d clients, %d requests of %d images, server concurrency %d, on %s\n", c.Clients, c.Requests, c.PerRequest, c.Concurrency, ln.Addr())
	lat := make([]float64, c.Requests)
	errs := make([]error, c.Requests)
	var next atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range c.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= c.Requests {
					return
				}
				t := time.Now()
				errs[k] = post(k)
				lat[k] = time.Since(t).Seconds() * 1000
			}
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(t0).Seconds()
	stop()
	sampler.Wait()
	for _, e := range errs {
		if e != nil {
			if res.Errors == 0 {
				res.FirstError = e.Error()
			}
			res.Errors++
		}
	}
	ok := c.Requests - res.Errors
	res.ReqPerSec = float64(ok) / res.Seconds
	res.ImagesPerSec = res.ReqPerSec * float64(c.PerRequest)
	sort.Float64s(lat)
	res.P50ms, res.P99ms = percentile(lat, 0.50), percentile(lat, 0.99)
	res.RSSIdleMB, res.RSSPeakMB = float64(idle)/(1<<20), float64(peak.Load())/(1<<20)
	if idle > 0 {
		res.RSSRatio = float64(peak.Load()) / float64(idle)
	}
	hs.Close()
	if c.ExtractImages > 0 {
		ex, err := Extract(ExtractConfig{Model: c.Model, Data: filepath.Dir(dir), Split: "img", Images: c.ExtractImages, Repeats: 1,
			Runtime: c.Runtime, Batch: c.Batch, Log: io.Discard})
		if err != nil {
			return nil, fmt.Errorf("bench serve: extract comparison: %w", err)
		}
		res.ExtractIPS = ex.PipelineIPS
		if ex.PipelineIPS > 0 {
			res.ServeOverExtract = res.ImagesPerSec / ex.PipelineIPS
		}
	}
	res.LoadAfter = LoadAvg()
	return res, nil
}

// percentile of sorted values (nearest rank).
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// rssBytes is this process's resident set size (VmRSS), 0 when unknown.
func rssBytes() int64 {
	b, _ := train.ProcField("/proc/self/status", "VmRSS:")
	return b
}
