package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DevIssuer and DevAudience are what development tokens carry.
const (
	DevIssuer   = "https://dev-issuer.crashdumps.local"
	DevAudience = "crashdumps"
	devKeyFile  = "jwt-signing-key.pem"
)

// Verifier checks bearer tokens as API Gateway's JWT authorizer does:
// signature, issuer, audience, expiry and not-before.
type Verifier struct {
	Issuer   string
	Audience string
	keys     func(ctx context.Context, kid string) (any, error)
}

// Claims returns the verified claims as API Gateway hands them to a
// function: every value a string, with the scopes from "scope" or "scp".
func (v *Verifier) Claims(ctx context.Context, token string) (map[string]string, []string, error) {
	parsed, err := jwt.Parse(token, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return v.keys(ctx, kid)
	},
		jwt.WithIssuer(v.Issuer),
		jwt.WithAudience(v.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithValidMethods([]string{"RS256", "RS384", "RS512", "ES256", "ES384"}),
		jwt.WithLeeway(30*time.Second),
	)
	if err != nil {
		return nil, nil, err
	}
	mc := parsed.Claims.(jwt.MapClaims)
	claims := make(map[string]string, len(mc))
	for k, val := range mc {
		switch x := val.(type) {
		case string:
			claims[k] = x
		case float64:
			claims[k] = fmt.Sprint(int64(x))
		case []any:
			parts := make([]string, len(x))
			for i, p := range x {
				parts[i] = fmt.Sprint(p)
			}
			claims[k] = "[" + strings.Join(parts, " ") + "]"
		default:
			b, _ := json.Marshal(x)
			claims[k] = string(b)
		}
	}
	var scopes []string
	for _, name := range []string{"scope", "scp"} {
		if s, ok := claims[name]; ok {
			scopes = append(scopes, strings.Fields(strings.Trim(s, "[]"))...)
		}
	}
	return claims, scopes, nil
}

// devKey loads the development signing key from dir, creating it on first
// use. The folder is git-ignored.
func devKey(dir string) (*rsa.PrivateKey, error) {
	path := filepath.Join(dir, devKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		block, _ := pem.Decode(b)
		if block == nil {
			return nil, fmt.Errorf("reading %s: no PEM block", path)
		}
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		return k, nil
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating signing key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return k, nil
}

// DevVerifier verifies tokens signed with the development key.
func DevVerifier(k *rsa.PrivateKey) *Verifier {
	return &Verifier{Issuer: DevIssuer, Audience: DevAudience,
		keys: func(context.Context, string) (any, error) { return &k.PublicKey, nil }}
}

// DevToken signs a development token: a device token names the device in
// azp, as a client-credentials token does; an admin token carries the
// admin scope.
func DevToken(k *rsa.PrivateKey, clientID, scope string, ttl time.Duration) (string, error) {
	now := time.Now()
	claims := jwt.MapClaims{
		"iss":       DevIssuer,
		"aud":       DevAudience,
		"sub":       clientID,
		"azp":       clientID,
		"client_id": clientID,
		"iat":       now.Unix(),
		"exp":       now.Add(ttl).Unix(),
	}
	if scope != "" {
		claims["scope"] = scope
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = "dev"
	return t.SignedString(k)
}

// OIDCVerifier verifies tokens of a real issuer, whose keys it finds
// through OpenID Connect discovery and its JWKS document.
func OIDCVerifier(issuer, audience string) *Verifier {
	c := &jwksCache{issuer: strings.TrimRight(issuer, "/"), client: &http.Client{Timeout: 10 * time.Second}}
	return &Verifier{Issuer: issuer, Audience: audience, keys: c.key}
}

type jwksCache struct {
	issuer  string
	client  *http.Client
	mu      sync.Mutex
	keys    map[string]any
	fetched time.Time
}

func (c *jwksCache) key(ctx context.Context, kid string) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.keys[kid]; ok {
		return k, nil
	}
	// An unknown kid may be a rotated key: fetch again, at most once a
	// minute.
	if time.Since(c.fetched) < time.Minute && c.keys != nil {
		return nil, fmt.Errorf("no key %q in the issuer's JWKS", kid)
	}
	keys, err := c.fetch(ctx)
	if err != nil {
		return nil, err
	}
	c.keys, c.fetched = keys, time.Now()
	if k, ok := c.keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("no key %q in the issuer's JWKS", kid)
}

func (c *jwksCache) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("fetching %s: status %d", url, resp.StatusCode)
	}
	return json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(v)
}

func (c *jwksCache) fetch(ctx context.Context) (map[string]any, error) {
	var disc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := c.getJSON(ctx, c.issuer+"/.well-known/openid-configuration", &disc); err != nil {
		return nil, err
	}
	if disc.JWKSURI == "" {
		return nil, errors.New("the issuer's discovery document has no jwks_uri")
	}
	var set struct {
		Keys []struct {
			Kid, Kty, N, E, Crv, X, Y string
		} `json:"keys"`
	}
	if err := c.getJSON(ctx, disc.JWKSURI, &set); err != nil {
		return nil, err
	}
	keys := map[string]any{}
	for _, k := range set.Keys {
		switch k.Kty {
		case "RSA":
			n, err1 := b64int(k.N)
			e, err2 := b64int(k.E)
			if err1 == nil && err2 == nil {
				keys[k.Kid] = &rsa.PublicKey{N: n, E: int(e.Int64())}
			}
		case "EC":
			curve := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384()}[k.Crv]
			x, err1 := b64int(k.X)
			y, err2 := b64int(k.Y)
			if curve != nil && err1 == nil && err2 == nil {
				keys[k.Kid] = &ecdsa.PublicKey{Curve: curve, X: x, Y: y}
			}
		}
	}
	return keys, nil
}

func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	return new(big.Int).SetBytes(b), nil
}
