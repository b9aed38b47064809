package serve

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzReadRequest feeds crafted bodies under each accepted media type to
// the request parser: an error, or at most MaxBatch image files each with
// a readable header under the pixel limit, never a panic (issue 16).
func FuzzReadRequest(f *testing.F) {
	png := pngBytes(&testing.T{}, 0)
	b64 := base64.StdEncoding.EncodeToString(png)
	f.Add(uint8(0), png)
	f.Add(uint8(1), png)
	f.Add(uint8(2), []byte(`{"images": ["`+b64+`"]}`))
	f.Add(uint8(2), []byte(`{"images": ["`+b64+`"]} x`))
	f.Add(uint8(2), []byte(`{"images": []}`))
	s := &Server{opts: Options{MaxBatch: 4, MaxBodyBytes: 1 << 20, MaxPixels: 1 << 20}}
	s.opts.defaults()
	types := []string{"image/png", "image/jpeg", "application/json", "application/json; charset=utf-8", "text/plain"}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/v1/features", bytes.NewReader(body))
		r.Header.Set("Content-Type", types[int(kind)%len(types)])
		raw, err := s.readRequest(httptest.NewRecorder(), r)
		if err != nil {
			return
		}
		if len(raw) == 0 || len(raw) > s.opts.MaxBatch {
			t.Fatalf("%d images accepted", len(raw))
		}
	})
}
