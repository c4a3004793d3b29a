package parse

import "context"

// NoParser stands in when neither the sidecar nor the built-in decoder is
// available: every dump stays PENDING.
type NoParser struct{}

var _ Parser = NoParser{}

// Name implements Parser.
func (NoParser) Name() string { return "none" }

// Parse implements Parser; it always returns ErrParserUnavailable.
func (NoParser) Parse(context.Context, *Job) (*Result, error) { return nil, ErrParserUnavailable }
