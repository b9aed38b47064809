package pipeline

import (
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/selfsup/selfsup/data"
	"github.com/selfsup/selfsup/internal/runlock"
	"github.com/selfsup/selfsup/internal/shards"
	"github.com/selfsup/selfsup/runtime"
)

// ExtractFilesConfig is `selfsup extract`: the features of the Split of
// Data, computed by Model, written to Out (runtime.ExtractToFile), or with
// Shard "i/N" shard i of N of them beside the manifest Out (a .json path;
// runtime.ExtractShard).
type ExtractFilesConfig struct {
	Model, Data, Split string
	Out                string
	Output             string // model output (default: features, or the only one)
	Shard              string // "i/N", or "" for one file
	Open               data.OpenOptions
	Runtime            runtime.Options
	Batch, Workers     int
	Chunk, StopAfter   int
	Restart            bool
	Log                io.Writer
}

// ExtractFiles runs the extraction c describes and returns its summary: a
// *runtime.FileResult, or a *runtime.ShardResult with Shard. One output
// file (or one shard) is written by one process at a time: a second is
// refused, naming the first.
func ExtractFiles(c ExtractFilesConfig) (any, error) {
	i, n := 0, 0
	if c.Shard != "" {
		var err error
		if i, n, err = shards.ParseSpec(c.Shard); err != nil {
			return nil, err
		}
		if _, err := shards.NamesFor(c.Out, i, n); err != nil {
			return nil, err
		}
	} else {
		lock, err := runlock.Acquire(c.Out+".lock", "extract: output "+c.Out)
		if err != nil {
			return nil, err
		}
		defer lock.Release()
	}
	if err := CheckBatch(c.Batch); err != nil {
		return nil, err
	}
	sess, err := runtime.Open(c.Model, c.Runtime)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	ds, err := data.Open(c.Data, c.Split, c.Open)
	if err != nil {
		return nil, err
	}
	dataSpec := c.Data
	if _, err := os.Stat(dataSpec); err == nil {
		dataSpec, _ = filepath.Abs(dataSpec) // the same data, whatever the working directory
	}
	fo := runtime.FileOptions{
		Out: c.Out, Output: c.Output, Batch: c.Batch, Workers: c.Workers, Chunk: c.Chunk,
		Restart: c.Restart, StopAfter: c.StopAfter, Label: "extract " + c.Split, Log: c.Log,
		Source: map[string]string{
			"data": dataSpec, "split": c.Split, "channels": strconv.Itoa(c.Open.Channels), "size": strconv.Itoa(c.Open.Size),
			"skip_bad": strconv.FormatBool(c.Open.SkipBad), "device": deviceName(c.Runtime.Device),
		},
	}
	if c.Shard != "" {
		fo.Label += " shard " + c.Shard
		return runtime.ExtractShard(sess, ds, runtime.ShardOptions{Manifest: c.Out, Index: i, Count: n, File: fo})
	}
	return runtime.ExtractToFile(sess, ds, fo)
}

// deviceName is the --device value as the CLI spells its default.
func deviceName(d string) string {
	if d == "" {
		return "cpu"
	}
	return d
}
