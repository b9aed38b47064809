// Command selfsup trains self-supervised ResNet backbones, exports them to
// ONNX, extracts features with ONNX Runtime and evaluates them. Every
// command that measures something accepts --json and then prints exactly
// one JSON object as the last line of stdout; progress goes to stderr.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/data"
)

// version is the selfsup version written into exported models.
const version = "0.1.0"

// extraCommands are added by the files that define them, from init
// functions, so that adding a command touches no other command's file.
var extraCommands []*cli.Command

// benchCommands are the subcommands of `selfsup bench`, registered the same
// way (train, extract, ...).
var benchCommands []*cli.Command

func benchCommand() *cli.Command {
	return &cli.Command{Name: "bench", Usage: "benchmarks (speed and memory): " + fmt.Sprint(len(benchCommands)) + " kinds", Subcommands: benchCommands}
}

func main() {
	app := &cli.App{
		Name:    "selfsup",
		Usage:   "self-supervised visual representation learning: train, export, extract, evaluate",
		Version: version,
		Commands: []*cli.Command{
			demoCommand(),
			permsCommand(),
			pretrainCommand(),
			exportCommand(),
			extractCommand(),
			evalCommand(),
		},
		Writer:    os.Stdout,
		ErrWriter: os.Stderr,
		Flags: []cli.Flag{&cli.Int64Flag{Name: "max-pixels", Value: data.DefaultMaxPixels, Destination: &maxPixels,
			Usage: "refuse images whose header declares more pixels than this (every reader; serve has its own)"}},
	}
	app.Commands = append(app.Commands, extraCommands...)
	if len(benchCommands) > 0 {
		app.Commands = append(app.Commands, benchCommand())
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "selfsup: %v\n", err)
		os.Exit(1)
	}
}

// printJSON writes v as one line of JSON to stdout.
func printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(os.Stdout, string(b))
	return err
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
