package sidecar

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/espfleet/crashdumps/shared/parse"
)

// XferPrefix is where ELFs are staged for the sidecar to download. A
// lifecycle rule on the bucket expires what is under it.
const XferPrefix = "xfer/"

// PresignTTL is the life of the presigned URLs given to the sidecar.
const PresignTTL = 15 * time.Minute

// Objects is the dump bucket as the sidecar parser needs it.
type Objects interface {
	Exists(ctx context.Context, key string) (bool, error)
	PutFile(ctx context.Context, key, path string) error
	PresignRead(ctx context.Context, key string, ttl time.Duration) (string, error)
}

// Parser parses dumps with the sidecar. It stages each firmware ELF once
// per build (per ZIP ETag) under XferPrefix, and gives the sidecar
// presigned URLs of the dump and the ELF.
type Parser struct {
	Client  *Client
	Objects Objects

	mu     sync.Mutex
	staged map[string]time.Time
}

// stagedFor is how long a staged ELF is trusted to be there without a
// look; the lifecycle rule keeps it at least a day.
const stagedFor = 6 * time.Hour

var _ parse.Parser = (*Parser)(nil)

// Name implements parse.Parser.
func (p *Parser) Name() string { return "sidecar" }

// XferKey is where the ELF of a build is staged.
func XferKey(elf *parse.ELF) string {
	return XferPrefix + elf.CacheKey() + "/" + strings.ReplaceAll(elf.Name, "/", "_")
}

// Parse implements parse.Parser.
func (p *Parser) Parse(ctx context.Context, job *parse.Job) (*parse.Result, error) {
	key, err := p.stage(ctx, job.ELF)
	if err != nil {
		return nil, err
	}
	elfURL, err := p.Objects.PresignRead(ctx, key, PresignTTL)
	if err != nil {
		return nil, err
	}
	coreURL, err := p.Objects.PresignRead(ctx, job.Dump.ObjectKey(), PresignTTL)
	if err != nil {
		return nil, err
	}
	out, n, err := p.Client.Parse(ctx, Request{CoreURL: coreURL, ELFURL: elfURL, Chip: job.Dump.Chip})
	var se *Error
	if errors.As(err, &se) {
		if ctx.Err() != nil || se.Attempts == 0 {
			return nil, fmt.Errorf("calling sidecar: %w", err) // out of time: the queue retries
		}
		return nil, parse.Unparseable(parse.MetricSidecarFailed, "%v", se)
	}
	if err != nil {
		return nil, fmt.Errorf("calling sidecar: %w", err)
	}
	return &parse.Result{Output: out, Attempts: n}, nil
}

// stage puts the ELF under XferPrefix unless it is there already.
func (p *Parser) stage(ctx context.Context, elf *parse.ELF) (string, error) {
	key := XferKey(elf)
	p.mu.Lock()
	at, done := p.staged[key]
	p.mu.Unlock()
	if done && time.Since(at) < stagedFor {
		return key, nil
	}
	ok, err := p.Objects.Exists(ctx, key)
	if err != nil {
		return "", fmt.Errorf("staging ELF: %w", err)
	}
	if !ok {
		if err := p.Objects.PutFile(ctx, key, elf.Path); err != nil {
			return "", fmt.Errorf("staging ELF: %w", err)
		}
	}
	p.mu.Lock()
	if p.staged == nil {
		p.staged = map[string]time.Time{}
	}
	p.staged[key] = time.Now()
	p.mu.Unlock()
	return key, nil
}
