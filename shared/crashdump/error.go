package crashdump

import (
	"errors"
	"fmt"
)

// Application error codes. Each is stable: clients may branch on it, and the
// HTTP layer maps each to one status code.
const (
	EInvalid      = "invalid"        // a request field failed validation
	EUnauthorized = "unauthorized"   // no valid identity
	EForbidden    = "forbidden"      // identity lacks the right
	ENotFound     = "not_found"      // no such resource for this caller
	EConflict     = "conflict"       // state forbids the operation now
	ETooLarge     = "too_large"      // body over the configured limit
	ERateLimited  = "rate_limited"   // too many requests for one device
	EInternal     = "internal"       // anything else; details are logged
	EUnavailable  = "unavailable"    // a dependency is down; retry later
	EUnsupported  = "not_acceptable" // unsupported media or method
)

// Error is the application error: a stable code and a message that is safe
// to show to the caller. Any error that is not an *Error is internal, is
// logged once where it is handled, and reaches clients only as a generic
// message.
type Error struct {
	// Code is one of the E* constants.
	Code string
	// Message is written for the client and holds no internal detail.
	Message string
	// RetryAfter, when positive, is how many seconds the client should
	// wait before trying again.
	RetryAfter int
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the application error in err's chain, or
// EInternal for any other non-nil error, or "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the safe message of the application error in err's
// chain, or a generic message for any other error.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
