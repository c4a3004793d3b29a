package app

import (
	"context"
	"net/http"

	"github.com/espfleet/crashdumps/shared/admin"
	"github.com/espfleet/crashdumps/shared/config"
	"github.com/espfleet/crashdumps/shared/crashgroup"
	"github.com/espfleet/crashdumps/shared/httpapi"
)

// Admin builds the admin function's HTTP handler.
func Admin(ctx context.Context, env Env) (http.Handler, error) {
	cfg, err := config.LoadAdmin(env.Lookup)
	if err != nil {
		return nil, err
	}
	cursors, err := admin.NewCursors(cfg.CursorSecret)
	if err != nil {
		return nil, err
	}
	a, err := env.adapters(ctx, cfg.Common)
	if err != nil {
		return nil, err
	}
	logger, metrics := env.telemetry(cfg.LogLevel)
	api := &httpapi.API{
		Logger:  logger,
		Metrics: metrics,
		Admins:  httpapi.AdminAuth{Scope: cfg.Scope},
		Admin: &admin.Service{
			Store:         a.store,
			Objects:       a.objects,
			Queue:         a.queue(cfg.QueueURL),
			Cursors:       cursors,
			RetentionDays: cfg.RetentionDays,
		},
		CrashGroups: &crashgroup.Service{Store: a.store, Cursors: cursors},
	}
	return api.Handler(), nil
}
