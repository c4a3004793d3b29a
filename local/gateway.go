package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// HTTPFunction is a function behind the HTTP API.
type HTTPFunction func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Gateway stands in for API Gateway's HTTP API: it matches routes, runs the
// JWT authorizer (and route scopes), builds the payload 2.0 event and
// invokes the route's function in this process.
type Gateway struct {
	Verifier *Verifier
	Logger   *slog.Logger
	// Timeout is the functions' timeout (the template's 30 s).
	Timeout time.Duration
	routes  []gatewayRoute
}

type gatewayRoute struct {
	Route
	segs     []string
	function string
	invoke   HTTPFunction
}

// maxPayload is API Gateway's limit on a request body.
const maxPayload = 10 << 20

// Add registers a route of a function.
func (g *Gateway) Add(function string, r Route, invoke HTTPFunction) {
	g.routes = append(g.routes, gatewayRoute{Route: r, segs: strings.Split(strings.Trim(r.Path, "/"), "/"), function: function, invoke: invoke})
}

func (g *Gateway) match(method, p string) (*gatewayRoute, map[string]string) {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	for i := range g.routes {
		rt := &g.routes[i]
		if rt.Method != method && rt.Method != "ANY" || len(rt.segs) != len(segs) {
			continue
		}
		params := map[string]string{}
		ok := true
		for j, s := range rt.segs {
			switch {
			case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
				params[strings.Trim(s, "{}")] = segs[j]
			case s != segs[j]:
				ok = false
			}
			if !ok {
				break
			}
		}
		if ok {
			return rt, params
		}
	}
	return nil, nil
}

func gatewayError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// ServeHTTP answers one request as API Gateway would.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, params := g.match(r.Method, r.URL.Path)
	if rt == nil {
		gatewayError(w, http.StatusNotFound, "Not Found")
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		gatewayError(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	claims, scopes, err := g.Verifier.Claims(r.Context(), strings.TrimSpace(token))
	if err != nil {
		g.Logger.Info("token refused", "error", err.Error())
		gatewayError(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	if len(rt.Scopes) > 0 && !slices.ContainsFunc(rt.Scopes, func(s string) bool { return slices.Contains(scopes, s) }) {
		gatewayError(w, http.StatusForbidden, "Forbidden")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPayload))
	if err != nil {
		gatewayError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	ev := g.event(r, rt, params, body, claims, scopes)
	ctx, cancel := context.WithTimeout(r.Context(), g.Timeout)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: newRequestID()})
	resp, err := rt.invoke(ctx, ev)
	if err != nil {
		g.Logger.Error("function failed", "function", rt.function, "error", err.Error())
		gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	out := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if out, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
			return
		}
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(out)
}

// event builds the payload 2.0 event as API Gateway does: header names in
// lowercase, repeated values joined by commas, a binary body in base64.
func (g *Gateway) event(r *http.Request, rt *gatewayRoute, params map[string]string, body []byte, claims map[string]string, scopes []string) events.APIGatewayV2HTTPRequest {
	headers := map[string]string{}
	for k, v := range r.Header {
		if strings.EqualFold(k, "Cookie") {
			continue
		}
		headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	query := map[string]string{}
	for k, v := range r.URL.Query() {
		query[k] = strings.Join(v, ",")
	}
	var cookies []string
	for _, c := range r.Cookies() {
		cookies = append(cookies, c.String())
	}
	ct := r.Header.Get("Content-Type")
	text := utf8.Valid(body) && (strings.HasPrefix(ct, "text/") || strings.Contains(ct, "json"))
	b, isB64 := string(body), false
	if !text && len(body) > 0 {
		b, isB64 = base64.StdEncoding.EncodeToString(body), true
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	now := time.Now()
	routeKey := rt.Method + " " + rt.Path
	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              routeKey,
		RawPath:               r.URL.Path,
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		PathParameters:        params,
		Body:                  b,
		IsBase64Encoded:       isB64,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:   routeKey,
			AccountID:  "123456789012",
			Stage:      "$default",
			RequestID:  newRequestID(),
			APIID:      "local",
			DomainName: r.Host,
			Time:       now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:  now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  host,
				UserAgent: r.UserAgent(),
			},
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims, Scopes: scopes},
			},
		},
	}
	if len(query) == 0 {
		ev.QueryStringParameters = nil
	}
	if len(params) == 0 {
		ev.PathParameters = nil
	}
	return ev
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
