package serve

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// pngBomb is a valid 1x1 PNG whose header is rewritten to declare w x h.
func pngBomb(t *testing.T, w, h uint32) []byte {
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1)))
	b := buf.Bytes()
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

func post(t *testing.T, url, ctype string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url+"/v1/features", ctype, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error
}

// Regression (issue 16): each of these was accepted, crashed the server or
// was decoded in full before being refused.
func TestHostileRequests(t *testing.T) {
	s, _, ts := newServer(t, Options{MaxBatch: 4})
	good := pngBytes(t, 0)
	b64 := base64.StdEncoding.EncodeToString(good)
	var jpg bytes.Buffer
	jpeg.Encode(&jpg, image.NewGray(image.Rect(0, 0, 8, 8)), nil)
	bomb := pngBomb(t, 60000, 60000)
	many := `{"images": [` + strings.Repeat(`"***",`, 9999) + `"***"]}`
	cases := []struct {
		name, ctype string
		body        []byte
		code        int
		mention     string
	}{
		{"pixel bomb png", "image/png", bomb, 413, "megapixels"},
		{"pixel bomb in json", "application/json", []byte(`{"images": ["` + base64.StdEncoding.EncodeToString(bomb) + `"]}`), 413, "megapixels"},
		{"jpeg sent as png", "image/png", jpg.Bytes(), 415, "image/jpeg"},
		{"png sent as jpeg", "image/jpeg", good, 415, "image/png"},
		{"trailing garbage", "application/json", []byte(`{"images": ["` + b64 + `"]} garbage`), 400, "one JSON value"},
		{"two values", "application/json", []byte(`{"images": ["` + b64 + `"]}{"images": []}`), 400, "one JSON value"},
		{"count before base64", "application/json", []byte(many), 413, "10000 images"},
		{"not an image in json", "application/json", []byte(`{"images": ["` + base64.StdEncoding.EncodeToString([]byte("hello")) + `"]}`), 400, "neither JPEG nor PNG"},
	}
	for _, c := range cases {
		code, msg := post(t, ts.URL, c.ctype, c.body)
		if code != c.code || !strings.Contains(msg, c.mention) {
			t.Errorf("%s: %d %q, want %d mentioning %q", c.name, code, msg, c.code, c.mention)
		}
	}
	if code, msg := post(t, ts.URL, "image/png", good); code != 200 {
		t.Fatalf("a good image after the attacks: %d %s", code, msg)
	}
	if s.Served() != 1 {
		t.Fatalf("served %d", s.Served())
	}
}

// Regression (issue 16): only ReadHeaderTimeout was set, so a body sent at
// 1 byte/s and idle keep-alive connections were held forever.
func TestServerTimeouts(t *testing.T) {
	s, _, _ := newServer(t, Options{ReadTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	srv := s.HTTPServer()
	if srv.ReadTimeout == 0 || srv.WriteTimeout == 0 || srv.IdleTimeout == 0 || srv.ReadHeaderTimeout == 0 {
		t.Fatalf("timeouts not all set: %+v", srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	// A slow body: the connection is cut well before it is sent.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/features HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n")
	start := time.Now()
	cut := false
	for i := 0; i < 50 && !cut; i++ {
		if _, err := c.Write([]byte{0}); err != nil {
			cut = true
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !cut {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := io.ReadAll(c)
		cut = err == nil || !isTimeout(err)
	}
	if !cut || time.Since(start) > 4*time.Second {
		t.Fatalf("slow body held for %s", time.Since(start))
	}

	// An idle keep-alive connection is closed.
	k, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	fmt.Fprintf(k, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(k)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	k.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := br.ReadByte(); err == nil || isTimeout(err) {
		t.Fatalf("idle keep-alive connection not closed by the server: %v", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// Regression (issue 16): a model declaring a 100000x100000 input crashed
// the server on its first request; New refuses it.
func TestModelInputLimit(t *testing.T) {
	_, sess, _ := newServer(t, Options{})
	p, _ := sess.Preprocess()
	if _, err := New(sess, Options{MaxInputSize: p.Size - 1}); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("input side %d over a limit of %d: %v", p.Size, p.Size-1, err)
	}
	if _, err := New(sess, Options{MaxBatch: 1 << 20, MaxInputBytes: 1 << 20}); err == nil || !strings.Contains(err.Error(), "--max-batch") {
		t.Fatalf("input bytes over the limit: %v", err)
	}
}
