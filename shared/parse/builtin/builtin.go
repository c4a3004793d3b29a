// Package builtin parses dumps in process with the pure-Go decoder
// (espcore), for deployments without a parse sidecar.
package builtin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/espcore"
	"github.com/espfleet/crashdumps/shared/parse"
)

// Defaults of a Parser.
const (
	DefaultMaxDumpBytes = 8 << 20
	DefaultMaxFirmware  = 4
)

// Dumps reads raw dump bytes.
type Dumps interface {
	GetBytes(ctx context.Context, key string, max int64) ([]byte, error)
}

// Parser decodes dumps with espcore. It keeps the opened firmware of the
// last MaxFirmware builds across warm invocations, so a second dump of a
// build reads neither the ZIP nor the ELF again.
type Parser struct {
	Dumps Dumps
	// MaxDumpBytes bounds a dump read; 0 means DefaultMaxDumpBytes.
	MaxDumpBytes int64
	// MaxFirmware bounds the opened firmware kept; 0 means
	// DefaultMaxFirmware.
	MaxFirmware int

	mu  sync.Mutex
	fws []opened // most recently used last
}

type opened struct {
	key string
	fw  *espcore.Firmware
}

var _ parse.Parser = (*Parser)(nil)

// Name implements parse.Parser.
func (p *Parser) Name() string { return "builtin" }

// Parse implements parse.Parser. A dump the decoder rejects, or a
// firmware ELF it cannot read, is an *parse.UnparseableError.
func (p *Parser) Parse(ctx context.Context, job *parse.Job) (res *parse.Result, err error) {
	fw, err := p.firmware(job.ELF)
	if err != nil {
		return nil, err
	}
	max := p.MaxDumpBytes
	if max <= 0 {
		max = DefaultMaxDumpBytes
	}
	dump, err := p.Dumps.GetBytes(ctx, job.Dump.ObjectKey(), max)
	if errors.Is(err, crashdump.ErrNotFound) {
		return nil, parse.Unparseable(parse.MetricParseError, "the raw dump %s is missing", job.Dump.ObjectKey())
	}
	if err != nil {
		return nil, fmt.Errorf("reading dump: %w", err)
	}
	defer func() {
		if r := recover(); r != nil { // the decoder must not panic; if it does, the dump is at fault
			res, err = nil, parse.Unparseable(parse.MetricParseError, "decoder failed: %v", r)
		}
	}()
	rep, err := espcore.Decode(dump, fw)
	if err != nil {
		return nil, parse.Unparseable(parse.MetricParseError, "%v", err)
	}
	return &parse.Result{Output: rep.Text(), Signature: rep.Signature, TopFrame: rep.TopFrame,
		CrashKind: rep.CrashKind, Attempts: 1}, nil
}

// firmware returns the opened firmware of elf, from memory when it was
// opened before.
func (p *Parser) firmware(elf *parse.ELF) (*espcore.Firmware, error) {
	key := elf.CacheKey()
	p.mu.Lock()
	for i, o := range p.fws {
		if o.key == key {
			p.fws = append(append(p.fws[:i:i], p.fws[i+1:]...), o)
			p.mu.Unlock()
			return o.fw, nil
		}
	}
	p.mu.Unlock()

	f, err := os.Open(elf.Path)
	if err != nil {
		return nil, fmt.Errorf("opening ELF %s: %w", elf.Path, err)
	}
	defer f.Close()
	fw, err := open(f)
	if err != nil {
		return nil, parse.Unparseable(parse.MetricFirmwareInvalid, "firmware %s: %s is not a usable ELF (%v)",
			elf.ArchiveKey, elf.Name, err)
	}
	limit := p.MaxFirmware
	if limit <= 0 {
		limit = DefaultMaxFirmware
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fws = append(p.fws, opened{key, fw})
	if len(p.fws) > limit {
		p.fws = p.fws[len(p.fws)-limit:]
	}
	return fw, nil
}

func open(f *os.File) (fw *espcore.Firmware, err error) {
	defer func() {
		if r := recover(); r != nil {
			fw, err = nil, fmt.Errorf("reading ELF: %v", r)
		}
	}()
	return espcore.OpenFirmware(f)
}
