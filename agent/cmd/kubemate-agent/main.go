// Command kubemate-agent serves read-only host facts to Kubemate over HTTPS.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"kubemate.local/agent/internal/collect"
	"kubemate.local/agent/internal/config"
	"kubemate.local/agent/internal/server"
)

// version is stamped at build time: -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kubemate-agent:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("kubemate-agent", flag.ContinueOnError)
	cfgPath := fs.String("config", "/etc/kubemate-agent/agent.json", "path of the JSON configuration file")
	root := fs.String("root", "", "prefix for host paths, e.g. /host in a container (overrides the config's root)")
	mountRoot := fs.String("mount-root", "", "prefix for mount points to statfs (overrides the config's mount_root)")
	tokenFile := fs.String("token-file", "", "token file (overrides the config's token_file; systemd: %d/token)")
	listen := fs.String("listen", "", "listen address (overrides the config's listen)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	once := fs.Bool("once", false, "print one JSON report to stdout and exit (no server)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion {
		fmt.Println(version)
		return nil
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))

	cfg, err := config.Load(*cfgPath, *tokenFile)
	if err != nil {
		return err
	}
	if *root != "" {
		if cfg.MountRoot == cfg.Root {
			cfg.MountRoot = *root
		}
		cfg.Root = *root
	}
	if *mountRoot != "" {
		cfg.MountRoot = *mountRoot
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if os.Geteuid() == 0 {
		log.Warn("running as root; the agent needs no privileges, run it as an unprivileged user where possible")
	}
	env := collect.NewEnv(cfg)
	srv := server.New(cfg, env, version, log)
	if *once {
		return printOnce(srv)
	}

	hostnames := []string{}
	if h, err := os.Hostname(); err == nil {
		hostnames = append(hostnames, h)
	}
	if n := os.Getenv("KUBEMATE_NODE_NAME"); n != "" {
		hostnames = append(hostnames, n)
	}
	if ip := os.Getenv("KUBEMATE_NODE_IP"); ip != "" {
		hostnames = append(hostnames, ip)
	}
	cert, fp, err := server.LoadOrGenerateCert(cfg.TLSCertFile, cfg.TLSKeyFile, hostnames)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	selfSigned := cfg.TLSCertFile == ""
	log.Info("kubemate-agent starting", "version", version, "listen", cfg.Listen, "root", cfg.Root,
		"collectors", strings.Join(cfg.Collectors, ","), "tls_self_signed", selfSigned, "tls_fingerprint", fp)

	hs := srv.HTTPServer(cert)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
		log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return hs.Shutdown(sctx)
	}
}

func printOnce(srv *server.Server) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(srv.Snapshot())
}
