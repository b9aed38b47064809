// Package serve is an HTTP server of frozen features: other stacks post
// images and get the backbone's feature vectors back, computed by ONNX
// Runtime from an exported model. It imports neither Gorgonia nor the
// training packages, so a feature server ships without the training stack.
//
// Endpoints:
//
//	GET  /healthz        "ok"
//	GET  /v1/model       the model's inputs, outputs, metadata and preprocessing
//	POST /v1/features    image/jpeg or image/png body: one image
//	                     application/json {"images": ["<base64 JPEG/PNG>", ...]}: a batch
//	                     answer: {"dim": D, "features": [[...], ...]} (JSON), or with
//	                     "Accept: application/octet-stream" raw little-endian
//	                     float32 [N, D] with the shape in the X-Shape header
//
// Bad requests get a JSON {"error": "..."} with status 400 (malformed),
// 405 (method), 413 (too large), 415 (media type) or 503 (overloaded).
package serve

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/runtime"
)

// Options bound what one request may ask for.
type Options struct {
	// MaxBodyBytes caps a request body (default 32 MiB).
	MaxBodyBytes int64
	// MaxBatch caps the images of one request (default 256).
	MaxBatch int
	// MaxConcurrent bounds the batches computing at once (requests from
	// many clients are batched together, up to MaxBatch images, see
	// submit); a request not taken into a batch within QueueTimeout gets
	// 503 (defaults 2 and 10 s). Decoding is bounded by MemoryBudget.
	MaxConcurrent int
	QueueTimeout  time.Duration
	// Output is the model output served (default "features").
	Output string
	// MemoryBudget bounds the bytes that decoding (each decoder's buffer,
	// from the image header) and decoded inputs waiting for a batch hold
	// at once, over all requests (default 512 MiB); a request waits for
	// its share up to QueueTimeout, then gets 503. A request needing more
	// than the whole budget runs alone.
	MemoryBudget int64
	// MaxPixels refuses images whose header declares more pixels (default
	// data.DefaultMaxPixels, 40 MP).
	MaxPixels int64
	// MaxInputSize refuses, in New, a model whose input side is larger
	// (default 4096 px); MaxInputBytes refuses one whose input tensor for
	// MaxBatch images would exceed it (default 1 GiB): lower MaxBatch.
	MaxInputSize  int
	MaxInputBytes int64
	// Timeouts of the http.Server that HTTPServer makes: the whole
	// request (headers and body, default 60 s), the answer (default 120
	// s) and an idle keep-alive connection (default 60 s).
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
}

func (o *Options) defaults() {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 32 << 20
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 2
	}
	if o.QueueTimeout <= 0 {
		o.QueueTimeout = 10 * time.Second
	}
	if o.Output == "" {
		o.Output = "features"
	}
	if o.MemoryBudget <= 0 {
		o.MemoryBudget = 512 << 20
	}
	if o.MaxPixels == 0 {
		o.MaxPixels = data.DefaultMaxPixels
	}
	if o.MaxInputSize <= 0 {
		o.MaxInputSize = 4096
	}
	if o.MaxInputBytes <= 0 {
		o.MaxInputBytes = 1 << 30
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 60 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 2*o.QueueTimeout + 100*time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
}

// Server answers feature requests with one ONNX Runtime session.
type Server struct {
	sess    *runtime.Session
	pre     runtime.Preprocess
	opts    Options
	slots   chan struct{}
	served  atomic.Int64
	mu      sync.Mutex
	pending []*job  // queued requests, oldest first (see submit)
	budget  *budget // bytes of decoding and decoded inputs (MemoryBudget)
}

// New makes a server over sess (which the caller closes after the server
// stops).
func New(sess *runtime.Session, opts Options) (*Server, error) {
	opts.defaults()
	pre, err := sess.Preprocess()
	if err != nil {
		return nil, err
	}
	found := false
	for _, o := range sess.Outputs() {
		if o.Name == opts.Output {
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("serve: model %s has no output %q", sess.Path(), opts.Output)
	}
	if pre.Size <= 0 || pre.Size > opts.MaxInputSize {
		return nil, fmt.Errorf("serve: model %s wants %d x %d inputs, over the limit of %d px", sess.Path(), pre.Size, pre.Size, opts.MaxInputSize)
	}
	if b := int64(opts.MaxBatch) * int64(pre.Channels*pre.Size*pre.Size) * 4; b > opts.MaxInputBytes {
		return nil, fmt.Errorf("serve: model %s: %d images of %dx%dx%d take %d MiB of input, over the limit of %d MiB; lower the batch limit (--max-batch)",
			sess.Path(), opts.MaxBatch, pre.Channels, pre.Size, pre.Size, b>>20, opts.MaxInputBytes>>20)
	}
	return &Server{sess: sess, pre: pre, opts: opts, slots: make(chan struct{}, opts.MaxConcurrent), budget: newBudget(opts.MemoryBudget)}, nil
}

// Handler routes the endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/v1/model", s.model)
	mux.HandleFunc("/v1/features", s.features)
	return mux
}

// HTTPServer returns an http.Server for the handler with every timeout
// set: a slow client (a body at 1 byte/s) or an idle keep-alive
// connection is cut instead of held forever.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: min(10*time.Second, s.opts.ReadTimeout),
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
}

// Served is the number of images answered so far.
func (s *Server) Served() int64 { return s.served.Load() }

type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func fail(code int, format string, a ...any) error {
	return &httpError{code, fmt.Sprintf(format, a...)}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		code = he.code
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func (s *Server) model(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeError(w, fail(http.StatusMethodNotAllowed, "%s /v1/model: use GET", r.Method))
		return
	}
	meta, err := s.sess.Metadata()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"path": s.sess.Path(), "inputs": s.sess.Inputs(), "outputs": s.sess.Outputs(), "metadata": meta,
		"preprocess": s.pre, "output": s.opts.Output, "max_batch": s.opts.MaxBatch,
	})
}

type featuresRequest struct {
	Images []string `json:"images"`
}

func (s *Server) features(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, fail(http.StatusMethodNotAllowed, "%s /v1/features: use POST", r.Method))
		return
	}
	imgs, err := s.readRequest(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	feats, dim, err := s.submit(r.Context(), imgs) // batched with other requests inside a compute slot
	if err != nil {
		writeError(w, err)
		return
	}
	s.served.Add(int64(len(imgs)))
	if accepts(r, "application/octet-stream") {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("X-Shape", fmt.Sprintf("%d,%d", len(imgs), dim))
		buf := make([]byte, 4*len(feats))
		for i, v := range feats {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		w.Write(buf)
		return
	}
	rows := make([][]float32, len(imgs))
	for i := range rows {
		rows[i] = feats[i*dim : (i+1)*dim]
	}
	writeJSON(w, http.StatusOK, map[string]any{"dim": dim, "features": rows})
}

func accepts(r *http.Request, mt string) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if m, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && m == mt {
			return true
		}
	}
	return false
}

// readRequest reads the body and returns the image files in it, each
// checked before the request takes a compute slot: the count first (before
// any base64 decoding), then each file's signature against its declared
// type and its header against the pixel limit. Pixels are decoded only
// inside the slot (see compute), so the concurrency limit bounds decode
// memory too.
func (s *Server) readRequest(w http.ResponseWriter, r *http.Request) ([][]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, fail(http.StatusUnsupportedMediaType, "Content-Type %q: expected image/jpeg, image/png or application/json", r.Header.Get("Content-Type"))
	}
	switch mt {
	case "image/jpeg", "image/png", "application/json":
	default:
		return nil, fail(http.StatusUnsupportedMediaType, "Content-Type %q: expected image/jpeg, image/png or application/json", mt)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, fail(http.StatusRequestEntityTooLarge, "request body over %d bytes", s.opts.MaxBodyBytes)
		}
		return nil, fail(http.StatusBadRequest, "reading the body: %v", err)
	}
	var raw [][]byte
	if mt != "application/json" {
		if got := sniff(body); got != mt {
			return nil, fail(http.StatusUnsupportedMediaType, "body declared %s is %s", mt, orUnknown(got))
		}
		raw = [][]byte{body}
	} else {
		var req featuresRequest
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return nil, fail(http.StatusBadRequest, "JSON body: %v (expected {\"images\": [\"<base64>\", ...]})", err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, fail(http.StatusBadRequest, "JSON body: data after the object (expected exactly one JSON value)")
		}
		if len(req.Images) == 0 {
			return nil, fail(http.StatusBadRequest, "JSON body: \"images\" is empty")
		}
		if len(req.Images) > s.opts.MaxBatch {
			return nil, fail(http.StatusRequestEntityTooLarge, "%d images in one request, at most %d", len(req.Images), s.opts.MaxBatch)
		}
		for i, b64 := range req.Images {
			b, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				return nil, fail(http.StatusBadRequest, "images[%d]: not base64: %v", i, err)
			}
			if sniff(b) == "" {
				return nil, fail(http.StatusBadRequest, "images[%d]: neither JPEG nor PNG (%d bytes)", i, len(b))
			}
			raw = append(raw, b)
		}
	}
	if len(raw) > s.opts.MaxBatch {
		return nil, fail(http.StatusRequestEntityTooLarge, "%d images in one request, at most %d", len(raw), s.opts.MaxBatch)
	}
	for i, b := range raw {
		if _, _, _, err := data.DecodeConfig(b, s.opts.MaxPixels); err != nil {
			if errors.Is(err, data.ErrTooLarge) {
				return nil, fail(http.StatusRequestEntityTooLarge, "images[%d]: %v", i, err)
			}
			return nil, fail(http.StatusBadRequest, "images[%d]: not a decodable JPEG or PNG (%d bytes): %v", i, len(b), err)
		}
	}
	return raw, nil
}

// sniff names the media type b's signature says: image/jpeg, image/png,
// or "" for anything else.
func sniff(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}):
		return "image/jpeg"
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "image/png"
	}
	return ""
}

func orUnknown(mt string) string {
	if mt == "" {
		return "neither JPEG nor PNG"
	}
	return mt
}
