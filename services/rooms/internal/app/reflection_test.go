package app_test

import (
	"strings"
	"testing"

	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// TestReflectionServesComments asks server reflection, without a credential,
// for the file defining RoomsService and checks it carries the .proto
// comments that `grpcurl describe` shows operators.
func TestReflectionServesComments(t *testing.T) {
	s := startServer(t)
	stream, err := reflectionv1.NewServerReflectionClient(s.conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionv1.ServerReflectionRequest{
		MessageRequest: &reflectionv1.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "parley.rooms.v1.RoomsService"},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var comments []string
	for _, raw := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
		var fd descriptorpb.FileDescriptorProto
		if err := proto.Unmarshal(raw, &fd); err != nil {
			t.Fatal(err)
		}
		for _, loc := range fd.GetSourceCodeInfo().GetLocation() {
			comments = append(comments, loc.GetLeadingComments())
		}
	}
	all := strings.Join(comments, "\n")
	for _, want := range []string{"RoomsService owns rooms", "Publish appends a message", "Per-room offset"} {
		if !strings.Contains(all, want) {
			t.Errorf("reflection lacks the comment %q", want)
		}
	}
}
