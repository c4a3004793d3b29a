package httpapi

import (
	"net/http"
	"slices"

	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/espfleet/crashdumps/shared/crashdump"
)

// The claims and scopes come only from the request context that API
// Gateway's JWT authorizer filled after verifying the token; nothing in the
// query, headers or body can set them.

// DeviceAuth finds the device a request comes from.
type DeviceAuth struct {
	// Claim names the claim that holds the device's client id (azp).
	Claim string
	// ClientID extracts the device from the client id.
	ClientID *crashdump.ClientIDMatcher
}

// Device returns the device named by the verified token of r.
func (d DeviceAuth) Device(r *http.Request) (crashdump.Device, error) {
	claims, _, ok := jwtClaims(r)
	if !ok || d.ClientID == nil {
		return crashdump.Device{}, crashdump.Errorf(crashdump.EUnauthorized, "a device token is required")
	}
	clientID, ok := claims[d.Claim]
	if !ok {
		return crashdump.Device{}, crashdump.Errorf(crashdump.EUnauthorized, "the token does not name a device")
	}
	return d.ClientID.Match(clientID)
}

// AdminAuth checks that a request carries the admin scope.
type AdminAuth struct {
	// Scope is the scope an admin token must hold.
	Scope string
}

// Check answers 401 without a verified token and 403 without the scope.
func (a AdminAuth) Check(r *http.Request) error {
	claims, scopes, ok := jwtClaims(r)
	if !ok {
		return crashdump.Errorf(crashdump.EUnauthorized, "an admin token is required")
	}
	if slices.Contains(scopes, a.Scope) {
		return nil
	}
	// Tokens from some issuers carry scopes only as the space-separated
	// "scope" claim.
	if s, ok := claims["scope"]; ok && slices.Contains(splitSpaces(s), a.Scope) {
		return nil
	}
	return crashdump.Errorf(crashdump.EForbidden, "this token may not use the admin API")
}

// jwtClaims returns the verified claims and scopes of r, and false when
// the request carries no verified token.
func jwtClaims(r *http.Request) (map[string]string, []string, bool) {
	rc, ok := core.GetAPIGatewayV2ContextFromContext(r.Context())
	if !ok || rc.Authorizer == nil || rc.Authorizer.JWT == nil || len(rc.Authorizer.JWT.Claims) == 0 {
		return nil, nil, false
	}
	return rc.Authorizer.JWT.Claims, rc.Authorizer.JWT.Scopes, true
}

func splitSpaces(s string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return out
}
