// Package onnxpb holds the Go types of ONNX's protobuf schema (onnx.proto,
// ONNX 1.12, IR version 8), enough to write and read ONNX model files
// without the ONNX Python tooling. The model package writes its graphs with
// them.
//
// onnx.proto is copied from Debian's libonnx-dev (Apache-2.0, header kept)
// and onnx.pb.go is generated from it; both are committed, so building needs
// neither protoc nor protoc-gen-go. To regenerate (Debian 12):
//
//	apt-get install -y libonnx-dev protobuf-compiler   # protoc 3.21.12
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	cd model/onnxpb && protoc --go_out=. --go_opt=paths=source_relative \
//	    --go_opt=Monnx.proto=github.com/aetherai/aether/model/onnxpb onnx.proto
//
// The protobuf package is "onnx", registered in the global protobuf
// registry under the file name "onnx.proto": do not link another copy of
// the ONNX schema registered under that name into the same binary.
package onnxpb
