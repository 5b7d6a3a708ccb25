package edge

import (
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Code is an ack's error code, as documented for clients.
type Code string

// The codes a client can be given.
const (
	CodeInvalidArgument   Code = "invalid_argument"
	CodeNotFound          Code = "not_found"
	CodePermissionDenied  Code = "permission_denied"
	CodeResourceExhausted Code = "resource_exhausted"
	CodeUnavailable       Code = "unavailable"
	CodeUnimplemented     Code = "unimplemented"
	CodeInternal          Code = "internal"
)

// Error is a refusal as the client sees it: the error half of an ack.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Ack is the acknowledgement of every event: {ok: true, ...the result's
// fields} or {ok: false, error: {code, message}}.
type Ack struct {
	// Result is a struct whose JSON fields sit beside "ok"; nil for none.
	Result any
	Err    *Error
}

// MarshalJSON writes the ack as clients read it.
func (a Ack) MarshalJSON() ([]byte, error) {
	if a.Err != nil {
		return json.Marshal(struct {
			OK    bool   `json:"ok"`
			Error *Error `json:"error"`
		}{false, a.Err})
	}
	ok := []byte(`{"ok":true}`)
	if a.Result == nil {
		return ok, nil
	}
	b, err := json.Marshal(a.Result)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || b[0] != '{' {
		return nil, fmt.Errorf("ack result %T is not an object", a.Result)
	}
	if len(b) == 2 {
		return ok, nil
	}
	return append([]byte(`{"ok":true,`), b[1:]...), nil
}

// toError maps an error to what the client is told. Errors from the rooms
// service keep their status message, which is written for callers; anything
// else is internal and its detail stays in the log.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	st, ok := status.FromError(err)
	if !ok {
		return &Error{Code: CodeInternal, Message: "internal error"}
	}
	switch st.Code() {
	case codes.InvalidArgument, codes.OutOfRange, codes.AlreadyExists, codes.FailedPrecondition:
		return &Error{Code: CodeInvalidArgument, Message: st.Message()}
	case codes.NotFound:
		return &Error{Code: CodeNotFound, Message: st.Message()}
	case codes.PermissionDenied:
		return &Error{Code: CodePermissionDenied, Message: st.Message()}
	case codes.ResourceExhausted:
		return &Error{Code: CodeResourceExhausted, Message: st.Message()}
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return &Error{Code: CodeUnavailable, Message: "the rooms service is unavailable; retry"}
	case codes.Unimplemented:
		return &Error{Code: CodeUnimplemented, Message: st.Message()}
	}
	return &Error{Code: CodeInternal, Message: "internal error"}
}
