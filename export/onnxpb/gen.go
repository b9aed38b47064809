// Package onnxpb holds the Go types of the ONNX protobuf schema (IR version
// 8, ONNX 1.12), generated once and committed so that building selfsup needs
// no protoc.
//
// How it was made (Debian bookworm, libonnx-dev 1.12.0-2, protobuf-compiler
// 3.21.12, protoc-gen-go v1.36.12 to match google.golang.org/protobuf in
// go.mod):
//
//	apt-get install libonnx-dev protobuf-compiler
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	sed -e 's/^package onnx;$/package selfsup.onnx;/' \
//	    /usr/include/onnx/onnx.proto > export/onnxpb/onnx.proto
//	go generate ./export/onnxpb
//
// The upstream file's sha256 is
// a96f50c0fe1ff9180b6025843d4f7efcf53b024c83db55a36cd24a1e44345182; the
// committed onnx.proto differs from it in the package line only.
//
// Why the proto package is renamed: github.com/owulveryck/onnx-go (a
// dependency of this module) registers its own generated ONNX types under
// the full names "onnx.ModelProto", "onnx.AttributeProto", ... in the
// global protobuf registry, and registering the same full names twice
// panics at program start ("proto: message onnx.AttributeProto is already
// registered"). The proto package name is not part of the wire format (ONNX
// files carry field numbers, not type names), so files written with these
// types are ordinary ONNX files. The descriptor is registered under the path
// "export/onnxpb/onnx.proto" for the same reason.
package onnxpb

//go:generate protoc --proto_path=../.. --go_out=../.. --go_opt=module=github.com/selfsup/selfsup --go_opt=Mexport/onnxpb/onnx.proto=github.com/selfsup/selfsup/export/onnxpb export/onnxpb/onnx.proto
