package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/apache/beam/sdks/v2/go/container/tools"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/util/grpcx"
)

// isBoot reports whether the runner started this binary as the boot
// program of a PROCESS environment (--id=... --provision_endpoint=...),
// not as a worker (--worker=true) or a command.
func isBoot(args []string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "--provision_endpoint=") || strings.HasPrefix(a, "-provision_endpoint=") {
			return true
		}
	}
	return false
}

// boot does what Beam's Go container boot program (sdks/go/container/
// boot.go) does, with this binary as the worker, and returns the exit
// status when it cannot start one:
//
//   - Prism starts PROCESS workers with --id='ID', quotes included; Beam's
//     boot then asks for the provision info of a worker id that does not
//     exist and hangs. The quotes are stripped here.
//   - Beam's boot downloads the staged worker binary into
//     --semi_persist_dir/staged, copies it to /tmp/bin*/worker, writes
//     pipeline_options.json into the working directory, and removes none
//     of them. Here the worker is this very binary (built with cgo, the
//     one given as --worker_binary), the options travel as its --options
//     flag, and it replaces the boot process (exec), so nothing is
//     written and a runner that kills the boot process kills the worker.
func boot(args []string) int {
	var id, provision string
	for _, a := range args {
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, "id="); ok {
			id = strings.Trim(v, `'"`)
		} else if v, ok := strings.CutPrefix(a, "provision_endpoint="); ok {
			provision = v
		}
	}
	err := execWorker(id, provision)
	fmt.Fprintf(os.Stderr, "selfsup-beam: boot: %v\n", err)
	return 1
}

// execWorker replaces this process by the worker; it returns only on
// failure.
func execWorker(id, provision string) error {
	if id == "" || provision == "" {
		return fmt.Errorf("need --id and --provision_endpoint, got %q and %q", id, provision)
	}
	ctx := grpcx.WriteWorkerID(context.Background(), id)
	info, err := tools.ProvisionInfo(ctx, provision)
	if err != nil {
		return fmt.Errorf("provision info from %s: %w", provision, err)
	}
	logging, control := info.GetLoggingEndpoint().GetUrl(), info.GetControlEndpoint().GetUrl()
	if logging == "" || control == "" {
		return fmt.Errorf("provision info from %s has no logging or control endpoint", provision)
	}
	options, err := tools.ProtoToJSON(info.GetPipelineOptions())
	if err != nil {
		return fmt.Errorf("pipeline options: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	env := os.Environ()
	if caps := info.GetRunnerCapabilities(); len(caps) > 0 {
		env = append(env, "RUNNER_CAPABILITIES="+strings.Join(caps, " "))
	}
	if st := info.GetStatusEndpoint().GetUrl(); st != "" {
		env = append(env, "STATUS_ENDPOINT="+st)
	}
	return syscall.Exec(self, []string{self, "--worker=true", "--id=" + id, "--logging_endpoint=" + logging,
		"--control_endpoint=" + control, "--semi_persist_dir=" + os.TempDir(), "--options=" + options}, env)
}
