// Package auth checks the bearer credentials of rooms service calls. There are
// two: the service credential, for gateways and internal services, and the admin
// credential, which may call everything including AdminService.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Role is what a credential may do.
type Role int

const (
	// RoleService may call RoomsService.
	RoleService Role = iota + 1
	// RoleAdmin may call everything.
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleService:
		return "service"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

type roleKey struct{}

// RoleFrom returns the role the auth interceptor attached to ctx.
func RoleFrom(ctx context.Context) Role {
	r, _ := ctx.Value(roleKey{}).(Role)
	return r
}

// Tokens checks bearer tokens against the configured credentials.
type Tokens struct {
	service, admin [sha256.Size]byte
	adminPrefix    string
}

// NewTokens returns a checker for the two credentials. Methods whose full name
// starts with adminPrefix (for example "/parley.rooms.v1.AdminService/") need
// the admin credential.
func NewTokens(serviceToken, adminToken, adminPrefix string) *Tokens {
	return &Tokens{
		service:     sha256.Sum256([]byte(serviceToken)),
		admin:       sha256.Sum256([]byte(adminToken)),
		adminPrefix: adminPrefix,
	}
}

// AuthFunc is the grpc-middleware auth function: it authenticates the caller
// and authorizes the method being called.
func (t *Tokens) AuthFunc(ctx context.Context) (context.Context, error) {
	tok, err := grpcauth.AuthFromMD(ctx, "bearer")
	if err != nil {
		return nil, err
	}
	// Comparing fixed-size digests keeps the comparison constant-time whatever
	// the token lengths.
	sum := sha256.Sum256([]byte(tok))
	var role Role
	switch {
	case subtle.ConstantTimeCompare(sum[:], t.admin[:]) == 1:
		role = RoleAdmin
	case subtle.ConstantTimeCompare(sum[:], t.service[:]) == 1:
		role = RoleService
	default:
		return nil, status.Error(codes.Unauthenticated, "invalid bearer token")
	}
	method, _ := grpc.Method(ctx)
	if role != RoleAdmin && strings.HasPrefix(method, t.adminPrefix) {
		return nil, status.Error(codes.PermissionDenied, "this method needs the admin credential")
	}
	return context.WithValue(ctx, roleKey{}, role), nil
}
