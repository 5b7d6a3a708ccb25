// Package apidesc embeds Parley's API descriptors with their source comments,
// built by `make generate`. The descriptors compiled into the generated Go code
// carry no comments, so server reflection serves these instead: that is what
// lets `grpcurl describe` show operators the documentation in the .proto files.
package apidesc

import (
	_ "embed"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	// The files Parley's API imports must be in the global registry.
	_ "github.com/parleyhq/parley/proto/parley/rooms/v1"
)

//go:embed parley.binpb
var image []byte

// Resolver finds Parley's files with their comments, and any other file (well
// known types, validation rules) in the global registry.
type Resolver struct {
	own *protoregistry.Files
}

// NewResolver parses the embedded descriptors.
func NewResolver() (*Resolver, error) {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(image, &set); err != nil {
		return nil, fmt.Errorf("apidesc: %w", err)
	}
	r := &Resolver{own: new(protoregistry.Files)}
	// Files come in dependency order, so each one's imports resolve.
	for _, fdp := range set.GetFile() {
		fd, err := protodesc.NewFile(fdp, r)
		if err != nil {
			return nil, fmt.Errorf("apidesc: %s: %w", fdp.GetName(), err)
		}
		if err := r.own.RegisterFile(fd); err != nil {
			return nil, fmt.Errorf("apidesc: %s: %w", fdp.GetName(), err)
		}
	}
	return r, nil
}

// FindFileByPath implements protodesc.Resolver.
func (r *Resolver) FindFileByPath(path string) (protoreflect.FileDescriptor, error) {
	if fd, err := r.own.FindFileByPath(path); err == nil {
		return fd, nil
	}
	return protoregistry.GlobalFiles.FindFileByPath(path)
}

// FindDescriptorByName implements protodesc.Resolver.
func (r *Resolver) FindDescriptorByName(name protoreflect.FullName) (protoreflect.Descriptor, error) {
	if d, err := r.own.FindDescriptorByName(name); err == nil {
		return d, nil
	}
	return protoregistry.GlobalFiles.FindDescriptorByName(name)
}
