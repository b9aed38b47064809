// Command selfsup-beam runs selfsup's Apache Beam pipelines (package
// github.com/selfsup/selfsup/beam/job):
//
//	selfsup-beam extract --model M.onnx (--data DATA [--split S] | --input GLOB[,GLOB]) --out DIR/features.json --shards N
//	selfsup-beam knn --train TRAIN.json --test TEST.json [--k 200] [--temperature 0.07]
//	selfsup-beam manifest --out DIR/features.json --shards N
//
// plus Beam's own flags (--runner prism|universal|dataflow, --endpoint,
// --environment_type, --environment_config, --worker_binary, ...). The
// same binary is the worker: Beam starts it with --worker=true, and a
// PROCESS environment may start it directly as its boot program (see
// boot.go). Every command prints one JSON object as its last stdout line
// with --json.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/harness/init" // worker mode
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/dataflow"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/universal" // Flink, Spark: --runner universal --endpoint HOST:PORT

	"github.com/selfsup/selfsup/beam/job"
	"github.com/selfsup/selfsup/internal/shards"
)

func main() {
	args := os.Args[1:]
	if isBoot(args) {
		os.Exit(boot(args))
	}
	cmd := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	run, ok := commands[cmd]
	if !ok && cmd != "" {
		fmt.Fprintf(os.Stderr, "selfsup-beam: unknown command %q; expected extract, knn or manifest\n", cmd)
		os.Exit(2)
	}
	var getResult func() (any, error)
	if ok {
		getResult = run(flag.CommandLine)
	}
	if err := flag.CommandLine.Parse(args); err != nil {
		os.Exit(2)
	}
	beam.Init() // with --worker=true this runs the SDK harness and exits
	if !ok {
		fmt.Fprintln(os.Stderr, "usage: selfsup-beam extract|knn|manifest [flags] (selfsup-beam CMD -h lists them)")
		os.Exit(2)
	}
	if !*verbose {
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	}
	res, err := getResult()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", oneLine(err))
		os.Exit(1)
	}
	if *jsonOut {
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
	}
}

var (
	jsonOut = flag.Bool("json", false, "print one JSON object as the last stdout line")
	verbose = flag.Bool("v", false, "keep Prism's and the SDK's info logs on stderr")
)

// commands register their flags and return the function that runs them.
var commands = map[string]func(fs *flag.FlagSet) func() (any, error){
	"extract": func(fs *flag.FlagSet) func() (any, error) {
		var c job.ExtractConfig
		var inputs string
		fs.StringVar(&c.Model, "model", "", "ONNX model (every worker must see this path)")
		fs.StringVar(&c.Output, "output", "", "model output to extract (default: features, or the only output)")
		fs.StringVar(&inputs, "input", "", "comma-separated globs of JPEG/PNG files (local paths every worker sees, or gs:// / s3:// objects read through Beam); unlabelled, sorted by path")
		fs.StringVar(&c.Data, "data", "", "instead of --input: a `selfsup extract --data` spec (folder, .tar, mnist, ...), labelled when it is; every worker must see it")
		fs.StringVar(&c.Split, "split", "test", "split of --data (\"\" for a flat folder)")
		fs.StringVar(&c.Out, "out", "", "manifest DIR/STEM.json; shards go beside it as STEM-iiiii-of-NNNNN.npy (+ _labels.npy, _index.txt, .json)")
		fs.IntVar(&c.Shards, "shards", 0, "number of shards N (contiguous rows of the sorted input; the unit of work and of retry)")
		fs.IntVar(&c.Batch, "batch", 64, "images per ONNX Runtime call (1-4096)")
		fs.IntVar(&c.Chunk, "chunk", 4096, "rows per partial-results file of a shard (a retried shard resumes from its last chunk)")
		fs.IntVar(&c.DecodeWorkers, "decode-workers", 0, "image decoding goroutines per shard (0: one per core)")
		fs.IntVar(&c.Parallel, "parallel", 1, "shards one worker process extracts at once")
		fs.IntVar(&c.Threads, "threads", 0, "ONNX Runtime intra-op threads per shard (0: the worker's cores / --parallel)")
		fs.BoolVar(&c.SkipBad, "skip-bad", false, "skip images that fail to decode (--data only)")
		fs.IntVar(&c.Channels, "channels", 0, "convert images to 1 or 3 channels (0: as stored)")
		fs.IntVar(&c.Size, "size", 0, "resize images to SIZE x SIZE first (0: as stored)")
		fs.Int64Var(&c.MaxPixels, "max-pixels", 0, "refuse images whose header declares more pixels (0: selfsup's default, 40 MP)")
		fs.StringVar(&c.Runner, "runner", "prism", "Beam runner: prism (in process), universal (a job server at --endpoint: Flink, Spark), dataflow")
		return func() (any, error) {
			if inputs != "" {
				c.Inputs = strings.Split(inputs, ",")
			}
			return job.Extract(context.Background(), c)
		}
	},
	"knn": func(fs *flag.FlagSet) func() (any, error) {
		var c job.KNNConfig
		fs.StringVar(&c.Train, "train", "", "training features: a manifest .json (sharded) or a .npy, labelled")
		fs.StringVar(&c.Test, "test", "", "test features: a manifest .json or a .npy, labelled")
		fs.IntVar(&c.K, "k", 200, "neighbours")
		fs.Float64Var(&c.Temperature, "temperature", 0.07, "vote weight exp(similarity/temperature)")
		fs.IntVar(&c.Blocks, "test-blocks", 0, "blocks of test rows, each scored against every training shard (0: one per 1024 rows)")
		fs.StringVar(&c.Runner, "runner", "prism", "Beam runner (see extract)")
		return func() (any, error) { return job.KNN(context.Background(), c) }
	},
	"manifest": func(fs *flag.FlagSet) func() (any, error) {
		out := fs.String("out", "", "manifest DIR/STEM.json of a sharded set")
		n := fs.Int("shards", 0, "number of shards N")
		return func() (any, error) {
			m, missing, err := shards.Merge(*out, *n)
			if err != nil {
				return nil, err
			}
			if m == nil {
				return nil, fmt.Errorf("selfsup-beam: manifest %s: shards %v of %d have no record yet (extract them first)", *out, missing, *n)
			}
			if _, _, _, err := shards.Load(*out); err != nil {
				return nil, err
			}
			fmt.Fprintf(os.Stderr, "%s: %d rows x %d in %d shards, every file checked\n", *out, m.Rows, m.Dim, m.Count)
			return map[string]any{"manifest": *out, "rows": m.Rows, "dim": m.Dim, "shards": m.Count}, nil
		}
	},
}

// oneLine keeps the first line of a Beam job error and its root cause, so
// that a failure is one line naming what and where.
func oneLine(err error) string {
	s := err.Error()
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) == 1 {
		return s
	}
	return lines[0] + " " + strings.TrimSpace(lines[len(lines)-1])
}
