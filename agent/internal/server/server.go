// Package server serves the agent's facts over HTTPS: /metrics (Prometheus
// text), /report (JSON) behind a bearer token, and /healthz without one.
package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"kubemate.local/agent/internal/collect"
	"kubemate.local/agent/internal/config"
)

// Server holds the handler state.
type Server struct {
	cfg       *config.Config
	env       *collect.Env
	version   string
	log       *slog.Logger
	tokenHash [32]byte

	mu   sync.Mutex // one collection at a time; callers share a fresh one
	last *collect.Snapshot
}

// New returns a Server for cfg (whose Token must be loaded).
func New(cfg *config.Config, env *collect.Env, version string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{cfg: cfg, env: env, version: version, log: log, tokenHash: sha256.Sum256([]byte(cfg.Token))}
}

// Handler returns the HTTP handler with all endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/healthz", readOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})))
	mux.Handle("/metrics", readOnly(s.auth(http.HandlerFunc(s.metrics))))
	mux.Handle("/report", readOnly(s.auth(http.HandlerFunc(s.report))))
	mux.Handle("/", readOnly(http.NotFoundHandler()))
	return secureHeaders(mux)
}

func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		h.ServeHTTP(w, r)
	})
}

// readOnly allows GET and HEAD only; request bodies are never read.
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// auth checks "Authorization: Bearer <token>" in constant time. Both sides
// are hashed first, so the comparison leaks neither content nor length.
func (s *Server) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		gh := sha256.Sum256([]byte(strings.TrimSpace(given)))
		if !ok || subtle.ConstantTimeCompare(gh[:], s.tokenHash[:]) != 1 {
			s.log.Warn("request refused: bad or missing token", "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="kubemate-agent"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Snapshot returns a collection no older than cache_seconds. Concurrent
// callers wait for one collection instead of starting their own.
func (s *Server) Snapshot() *collect.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	maxAge := time.Duration(s.cfg.CacheSeconds) * time.Second
	if s.last != nil && maxAge > 0 && time.Since(s.last.CollectedAt) < maxAge {
		return s.last
	}
	// Not tied to the request: a client hanging up must not spoil the cache.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s.last = collect.Collect(ctx, s.env, s.version)
	return s.last
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	snap := s.Snapshot()
	var buf bytes.Buffer
	if err := collect.WriteText(&buf, snap.Metrics()); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write(buf.Bytes())
}

func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	snap := s.Snapshot()
	data, err := json.MarshalIndent(snap, "", "  ")
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(data, '\n'))
}

// HTTPServer returns an *http.Server with timeouts and TLS 1.2+.
func (s *Server) HTTPServer(cert tls.Certificate) *http.Server {
	return &http.Server{
		Addr:              s.cfg.Listen,
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		TLSConfig:         TLSConfig(cert),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// TLSConfig is the agent's TLS policy: 1.2 or newer, server certificate only.
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		CipherSuites: []uint16{ // TLS 1.2 only; TLS 1.3 suites are not configurable
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}
