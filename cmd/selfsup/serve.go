package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/serve"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "HTTP server of frozen features (POST images to /v1/features)",
		Flags: append(runtimeFlags(),
			&cli.StringFlag{Name: "model", Usage: "ONNX model", Required: true},
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8080", Usage: "listen address"},
			&cli.IntFlag{Name: "max-batch", Value: 256, Usage: "images per request at most"},
			&cli.IntFlag{Name: "max-body-mb", Value: 32, Usage: "request body size limit in MiB"},
			&cli.IntFlag{Name: "concurrency", Value: 2, Usage: "requests computing at once"},
			&cli.StringFlag{Name: "output", Value: "features", Usage: "model output to serve"},
			&cli.Int64Flag{Name: "max-pixels", Value: 40_000_000, Usage: "refuse images whose header declares more pixels (413)"},
		),
		Action: func(c *cli.Context) error {
			sess, err := openSession(c)
			if err != nil {
				return err
			}
			defer sess.Close()
			s, err := serve.New(sess, serve.Options{MaxBatch: c.Int("max-batch"), MaxBodyBytes: int64(c.Int("max-body-mb")) << 20,
				MaxConcurrent: c.Int("concurrency"), Output: c.String("output"), MaxPixels: c.Int64("max-pixels")})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", c.String("addr"))
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			srv := s.HTTPServer() // read, write and idle timeouts set
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				srv.Shutdown(sctx)
			}()
			fmt.Fprintf(os.Stderr, "serving %s on http://%s (POST /v1/features, GET /v1/model, GET /healthz)\n", c.String("model"), ln.Addr())
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve: %w", err)
			}
			fmt.Fprintf(os.Stderr, "stopped after %d images\n", s.Served())
			return nil
		},
	}
}
