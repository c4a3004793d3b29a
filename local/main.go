// Command local runs the service on this machine as `sam local start-api`
// would, without Docker: the functions of template.yaml in one process,
// behind an HTTP API that verifies JWTs and fills the request context as
// API Gateway's JWT authorizer does, with S3 events delivered through the
// emulator's queue to the parse function.
//
//	go run ./local [-addr 127.0.0.1:3000] [-issuer URL -audience AUD]
//	go run ./local token -device iotdevice-ps1-abcd1234
//	go run ./local token -admin
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "token" {
		return token(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:3000", "address of the HTTP API")
	tmpl := fs.String("template", "template.yaml", "SAM template to run")
	keys := fs.String("keys", ".dev", "folder of the development signing key (git-ignored)")
	issuer := fs.String("issuer", "", "verify tokens of this OIDC issuer instead of development tokens")
	audience := fs.String("audience", "", "audience the issuer's tokens must carry (with -issuer)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var v *Verifier
	if *issuer != "" {
		if *audience == "" {
			return fmt.Errorf("-issuer needs -audience")
		}
		v = OIDCVerifier(*issuer, *audience)
	} else {
		k, err := devKey(*keys)
		if err != nil {
			return err
		}
		v = DevVerifier(k)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	s := &Stack{
		Addr: *addr, TemplateFile: *tmpl, Verifier: v,
		Lookup: os.LookupEnv, Out: stdout, Logger: logger,
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := s.Start(ctx); err != nil {
		s.Close()
		return err
	}
	logger.Info("local stack ready", "api", s.URL, "aws_endpoint", os.Getenv("AWS_ENDPOINT_URL"),
		"bucket", s.Resources.Bucket, "table", s.Resources.Table, "queue", s.Resources.QueueURL)
	<-ctx.Done()
	logger.Info("stopping")
	s.Close()
	return nil
}

// token prints a development token.
func token(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	device := fs.String("device", "", "device client id, such as iotdevice-ps1-abcd1234")
	admin := fs.Bool("admin", false, "an admin token with the admin scope")
	scope := fs.String("scope", "coredumps/admin", "the admin scope (with -admin)")
	keys := fs.String("keys", ".dev", "folder of the development signing key (git-ignored)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*device == "") == !*admin {
		return fmt.Errorf("token needs exactly one of -device CLIENT_ID or -admin")
	}
	k, err := devKey(*keys)
	if err != nil {
		return err
	}
	var t string
	if *admin {
		t, err = DevToken(k, "admin-console", *scope, *ttl)
	} else {
		t, err = DevToken(k, *device, "", *ttl)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, t)
	return nil
}
