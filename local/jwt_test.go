package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestOIDCVerifier_OK runs a stand-in issuer on loopback that serves
// discovery and JWKS documents, as a real OIDC provider does.
func TestOIDCVerifier_OK(t *testing.T) {
	key := testKey(t)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/keys"})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		enc := base64.RawURLEncoding.EncodeToString
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kid": "k1", "kty": "RSA", "alg": "RS256",
			"n": enc(key.N.Bytes()), "e": enc(big.NewInt(int64(key.E)).Bytes()),
		}}})
	})
	sign := func(kid, aud string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"iss": srv.URL, "aud": aud, "azp": "iotdevice-ps1-abcd1234",
			"exp": time.Now().Add(time.Hour).Unix(), "scope": "a b",
		})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	v := OIDCVerifier(srv.URL, "crashdumps")
	claims, scopes, err := v.Claims(context.Background(), sign("k1", "crashdumps"))
	if err != nil {
		t.Fatalf("verifying: %v", err)
	}
	if got, want := claims["azp"], "iotdevice-ps1-abcd1234"; got != want {
		t.Errorf("azp: got %q, want %q", got, want)
	}
	if len(scopes) != 2 {
		t.Errorf("scopes: got %v, want [a b]", scopes)
	}
	t.Run("ErrAudience", func(t *testing.T) {
		if _, _, err := v.Claims(context.Background(), sign("k1", "other")); err == nil {
			t.Error("got no error")
		}
	})
	t.Run("ErrUnknownKey", func(t *testing.T) {
		if _, _, err := v.Claims(context.Background(), sign("k9", "crashdumps")); err == nil {
			t.Error("got no error")
		}
	})
}
