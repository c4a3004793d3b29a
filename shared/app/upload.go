package app

import (
	"context"
	"net/http"

	"github.com/espfleet/crashdumps/shared/config"
	"github.com/espfleet/crashdumps/shared/httpapi"
	"github.com/espfleet/crashdumps/shared/upload"
)

// Upload builds the upload function's HTTP handler.
func Upload(ctx context.Context, env Env) (http.Handler, error) {
	cfg, err := config.LoadUpload(env.Lookup)
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
		Devices: httpapi.DeviceAuth{Claim: cfg.DeviceClaim, ClientID: cfg.ClientID},
		Upload: &upload.Service{
			Store:   a.store,
			Objects: a.objects,
			Limits:  cfg.Limits(),
			Logger:  logger,
		},
	}
	return api.Handler(), nil
}
