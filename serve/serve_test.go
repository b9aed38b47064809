package serve

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/testenv"
	"github.com/selfsup/selfsup/runtime"
)

func pngBytes(t *testing.T, seed int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 12, 10))
	for y := 0; y < 10; y++ {
		for x := 0; x < 12; x++ {
			img.Set(x, y, color.RGBA{uint8(x*20 + seed), uint8(y * 25), uint8((x + y + seed) * 7), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func newServer(t *testing.T, opts Options) (*Server, *runtime.Session, *httptest.Server) {
	t.Helper()
	sess, err := runtime.Open("../runtime/testdata/tiny.onnx", runtime.Options{})
	if err != nil {
		if _, lerr := runtime.LibraryPath(); lerr != nil {
			testenv.Skip(t, testenv.ORTLib, "ONNX Runtime not installed: %v", lerr)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	s, err := New(sess, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, sess, ts
}

// direct computes the features of an encoded image without HTTP.
func direct(t *testing.T, sess *runtime.Session, b []byte) []float32 {
	img, err := data.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := sess.Preprocess()
	conv := p.Dataset(&imageList{[]data.Image{img}}) // the whole image, then Convert
	m, err := conv.Image(0)
	if err != nil {
		t.Fatal(err)
	}
	in := make([]float32, p.Channels*p.Size*p.Size)
	if err := p.Fill(m, in); err != nil {
		t.Fatal(err)
	}
	out, err := sess.Run(in, []int64{1, int64(p.Channels), int64(p.Size), int64(p.Size)})
	if err != nil {
		t.Fatal(err)
	}
	return out["features"].Data
}

func TestFeaturesMatchDirectRun(t *testing.T) {
	s, sess, ts := newServer(t, Options{})
	a, b := pngBytes(t, 0), pngBytes(t, 40)

	resp, err := http.Post(ts.URL+"/v1/features", "image/png", bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	var one struct {
		Dim      int         `json:"dim"`
		Features [][]float32 `json:"features"`
	}
	json.NewDecoder(resp.Body).Decode(&one)
	resp.Body.Close()
	if resp.StatusCode != 200 || one.Dim != 4 || len(one.Features) != 1 {
		t.Fatalf("status %d, %+v", resp.StatusCode, one)
	}
	want := direct(t, sess, a)
	for i, v := range want {
		if one.Features[0][i] != v {
			t.Fatalf("feature %d: served %v, direct %v", i, one.Features[0][i], v)
		}
	}

	body, _ := json.Marshal(map[string]any{"images": []string{base64.StdEncoding.EncodeToString(a), base64.StdEncoding.EncodeToString(b)}})
	req, _ := http.NewRequest("POST", ts.URL+"/v1/features", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	raw.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Shape") != "2,4" || raw.Len() != 2*4*4 {
		t.Fatalf("binary answer: status %d shape %q %d bytes", resp.StatusCode, resp.Header.Get("X-Shape"), raw.Len())
	}
	wantB := direct(t, sess, b)
	for i := 0; i < 4; i++ {
		got := math.Float32frombits(binary.LittleEndian.Uint32(raw.Bytes()[16+4*i:]))
		if math.Abs(float64(got-wantB[i])) > 1e-6 {
			t.Fatalf("batch row 1 feature %d: %v, direct %v", i, got, wantB[i])
		}
	}
	if s.Served() != 3 {
		t.Fatalf("served %d images, expected 3", s.Served())
	}
}

func TestMalformedRequests(t *testing.T) {
	_, _, ts := newServer(t, Options{MaxBodyBytes: 4096, MaxBatch: 2})
	good := pngBytes(t, 0)
	b64 := base64.StdEncoding.EncodeToString(good)
	cases := []struct {
		name, method, ctype, body string
		code                      int
		mention                   string
	}{
		{"GET features", "GET", "", "", 405, "POST"},
		{"no content type", "POST", "", "x", 415, "Content-Type"},
		{"text body", "POST", "text/plain", "hello", 415, "text/plain"},
		{"truncated png", "POST", "image/png", string(good[:len(good)/2]), 400, "images[0]"},
		{"bad json", "POST", "application/json", "{\"images\": [", 400, "JSON"},
		{"unknown field", "POST", "application/json", `{"imgs": []}`, 400, "imgs"},
		{"empty batch", "POST", "application/json", `{"images": []}`, 400, "empty"},
		{"bad base64", "POST", "application/json", `{"images": ["***"]}`, 400, "base64"},
		{"too many", "POST", "application/json", `{"images": ["` + b64 + `","` + b64 + `","` + b64 + `"]}`, 413, "at most 2"},
		{"too large", "POST", "image/png", strings.Repeat("x", 5000), 413, "4096"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, ts.URL+"/v1/features", strings.NewReader(c.body))
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(e.Error, c.mention) {
			t.Errorf("%s: status %d error %q; expected %d mentioning %q", c.name, resp.StatusCode, e.Error, c.code, c.mention)
		}
	}
	resp, err := http.Get(ts.URL + "/v1/model")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if resp.StatusCode != 200 || m["output"] != "features" {
		t.Fatalf("/v1/model: %d %v", resp.StatusCode, m)
	}
}

// imageList adapts decoded images to data.Dataset.
type imageList struct{ imgs []data.Image }

func (l *imageList) Len() int { return len(l.imgs) }
func (l *imageList) Image(i int) (data.Image, error) {
	m := l.imgs[i]
	return data.Image{C: m.C, H: m.H, W: m.W, Pix: append([]uint8(nil), m.Pix...)}, nil
}
func (l *imageList) Label(int) int       { return -1 }
func (l *imageList) Classes() []string   { return nil }
func (l *imageList) Source(i int) string { return fmt.Sprintf("image %d", i) }
