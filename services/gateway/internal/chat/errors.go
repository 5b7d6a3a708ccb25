package chat

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Ack error codes, as documented for clients.
const (
	codeInvalidArgument   = "invalid_argument"
	codeNotFound          = "not_found"
	codePermissionDenied  = "permission_denied"
	codeResourceExhausted = "resource_exhausted"
	codeUnavailable       = "unavailable"
	codeUnimplemented     = "unimplemented"
	codeInternal          = "internal"
)

// ackError is a refusal decided by the gateway itself.
type ackError struct {
	code, msg string
}

func (e *ackError) Error() string { return e.msg }

func errorf(code, format string, args ...any) error {
	return &ackError{code: code, msg: fmt.Sprintf(format, args...)}
}

// toCode maps an error to the ack's code and message. Errors from the rooms
// service keep their status message, which is written for callers; anything
// else is internal and its detail stays in the log.
func toCode(err error) (string, string) {
	var ae *ackError
	if errors.As(err, &ae) {
		return ae.code, ae.msg
	}
	st, ok := status.FromError(err)
	if !ok {
		return codeInternal, "internal error"
	}
	switch st.Code() {
	case codes.InvalidArgument, codes.OutOfRange, codes.AlreadyExists, codes.FailedPrecondition:
		return codeInvalidArgument, st.Message()
	case codes.NotFound:
		return codeNotFound, st.Message()
	case codes.PermissionDenied:
		return codePermissionDenied, st.Message()
	case codes.ResourceExhausted:
		return codeResourceExhausted, st.Message()
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return codeUnavailable, "the rooms service is unavailable; retry"
	case codes.Unimplemented:
		return codeUnimplemented, st.Message()
	}
	return codeInternal, "internal error"
}
