// Package requestid carries the id of one client event from the gateway to
// the rooms service's calls it causes, so that an operator can follow the
// event through both services' logs.
package requestid

import "context"

// Metadata is the gRPC metadata key the id travels under.
const Metadata = "x-request-id"

// MaxLen bounds an id a service accepts from its caller, which could
// otherwise fill its log lines.
const MaxLen = 64

type key struct{}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// From returns the id ctx carries, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

// Valid says whether id, received from a caller, is one to log: at most
// MaxLen letters, digits, '-', '_', '.' or ':'.
func Valid(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}
