package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/espfleet/crashdumps/shared/app"
	"github.com/espfleet/crashdumps/shared/awsconf"
	"github.com/espfleet/crashdumps/shared/emulator"
	"github.com/espfleet/crashdumps/shared/httpapi"
	"github.com/espfleet/crashdumps/shared/provision"
)

// Stack is the local stand-in for the deployed stack: the emulator (moto
// server unless AWS_ENDPOINT_URL names one), the resources in it, the HTTP
// API on a loopback address and the queue event sources. The end-to-end
// tests run it in their own process.
type Stack struct {
	// Addr is where the HTTP API listens, 127.0.0.1:3000 by default.
	Addr string
	// TemplateFile is the SAM template whose functions, routes and
	// variables are run.
	TemplateFile string
	// Verifier checks bearer tokens.
	Verifier *Verifier
	// Lookup reads settings, like os.LookupEnv; template values fill in
	// what it does not set.
	Lookup func(string) (string, bool)
	// Out receives the functions' log lines and metrics.
	Out io.Writer
	// Logger logs the stack's own events.
	Logger *slog.Logger

	// URL is the HTTP API's base URL once started.
	URL string
	// Resources are the emulator's resources once started.
	Resources provision.Resources

	stopEmulator func()
	server       *http.Server
	cancel       context.CancelFunc
	wg           sync.WaitGroup
}

func (s *Stack) setting(name, def string) string {
	if v, ok := s.Lookup(name); ok && v != "" {
		return v
	}
	return def
}

// Start brings the stack up and returns once the API is listening.
func (s *Stack) Start(ctx context.Context) error {
	_, stop, err := emulator.Setup(ctx)
	if err != nil {
		return err
	}
	s.stopEmulator = stop
	awsCfg, err := awsconf.Load(ctx)
	if err != nil {
		return err
	}
	s.Resources, err = provision.Create(ctx, awsCfg, provision.Names{
		Bucket:          s.setting("COREDUMP_BUCKET", "crashdumps-local"),
		Table:           s.setting("COREDUMP_TABLE", "crashdumps-local"),
		Queue:           s.setting("PARSE_QUEUE_NAME", "crashdumps-parse"),
		DeadLetterQueue: s.setting("PARSE_DLQ_NAME", "crashdumps-parse-dlq"),
	})
	if err != nil {
		return fmt.Errorf("creating resources: %w", err)
	}
	tmpl, err := LoadTemplate(s.TemplateFile, map[string]string{
		"CoredumpBucket":       s.Resources.Bucket,
		"CoredumpTable":        s.Resources.Table,
		"ParseQueue":           s.Resources.QueueURL,
		"ParseDeadLetterQueue": s.Resources.DLQURL,
		// The admin API's cursor key is a NoEcho parameter without a
		// default; CURSOR_SECRET in the environment overrides this one.
		"CursorSecret": "local stack cursor key, not a secret",
	})
	if err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	gw := &Gateway{Verifier: s.Verifier, Logger: s.Logger, Timeout: 30 * time.Second}
	for _, f := range tmpl.Functions {
		env := app.Env{Lookup: s.functionLookup(f), Out: s.Out, AWS: &awsCfg}
		if build, ok := httpFunctions[f.Dir]; ok && len(f.Routes) > 0 {
			h, err := build(ctx, env)
			if err != nil {
				return fmt.Errorf("starting %s: %w", f.Name, err)
			}
			invoke := httpapi.Lambda(h)
			for _, r := range f.Routes {
				gw.Add(f.Name, r, HTTPFunction(invoke))
			}
		}
		if build, ok := rawFunctions[f.Dir]; ok && len(f.Routes) > 0 {
			h, err := build(ctx, env)
			if err != nil {
				return fmt.Errorf("starting %s: %w", f.Name, err)
			}
			for _, r := range f.Routes {
				gw.Add(f.Name, r, rawHTTP(h))
			}
		}
		if build, ok := queueFunctions[f.Dir]; ok && len(f.Queues) > 0 {
			fn, err := build(ctx, env)
			if err != nil {
				return fmt.Errorf("starting %s: %w", f.Name, err)
			}
			p := &Poller{
				Client: sqs.NewFromConfig(awsCfg), QueueURL: s.Resources.QueueURL, QueueARN: s.Resources.QueueARN,
				Function: f.Name, Invoke: fn, Logger: s.Logger, Timeout: 15 * time.Minute,
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); p.Run(runCtx) }()
		}
	}

	l, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.Addr, err)
	}
	s.URL = "http://" + l.Addr().String()
	s.server = &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.server.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("serving the API failed", "error", err.Error())
		}
	}()
	return nil
}

// functionLookup reads a function's setting: the stack's own settings
// first, then the value the template gives the function.
func (s *Stack) functionLookup(f *Function) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if v, ok := s.Lookup(name); ok {
			return v, true
		}
		v, ok := f.Env[name]
		return v, ok
	}
}

// Close stops the API, the pollers and an emulator the stack started.
func (s *Stack) Close() {
	if s.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.server.Shutdown(ctx)
		cancel()
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.stopEmulator != nil {
		s.stopEmulator()
	}
}
