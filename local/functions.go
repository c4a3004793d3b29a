package main

import (
	"context"
	"net/http"

	"github.com/espfleet/crashdumps/shared/app"
)

// httpFunctions are the functions behind the HTTP API, by CodeUri: the same
// constructors their main packages call.
var httpFunctions = map[string]func(context.Context, app.Env) (http.Handler, error){
	"functions/upload": app.Upload,
}

// queueFunctions are the functions with an SQS event source, by CodeUri.
var queueFunctions = map[string]func(context.Context, app.Env) (QueueFunction, error){}
