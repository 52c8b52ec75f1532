/*
Copyright 2026 The Portico Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command gatewaypod is Portico's data plane: the reverse proxy that runs in
// every gateway pod. It serves client traffic on --http-address from the
// routing snapshot the controller publishes, and /healthz, /readyz and
// /metrics on --health-address.
//
// Flow: source (mounted file at boot, then the ConfigMap through the API)
// -> snapshot.Decode -> router.Compile -> proxy.Swap -> podstatus reports the
// version on the Pod. A snapshot that fails any step is logged and counted,
// and the previous one keeps serving.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/portico-dev/portico/gatewaypod/balancer"
	"github.com/portico-dev/portico/gatewaypod/podflags"
	"github.com/portico-dev/portico/gatewaypod/podstatus"
	"github.com/portico-dev/portico/gatewaypod/proxy"
	"github.com/portico-dev/portico/gatewaypod/rawconn"
	"github.com/portico-dev/portico/gatewaypod/router"
	"github.com/portico-dev/portico/gatewaypod/snapshot"
	"github.com/portico-dev/portico/gatewaypod/source"
)

const (
	// shutdownTimeout bounds the drain of in-flight requests after SIGTERM;
	// it stays under the default 30 s terminationGracePeriodSeconds.
	shutdownTimeout = 25 * time.Second
	// userAgent identifies gatewaypod's API requests in audit logs.
	userAgent = "portico-gatewaypod"

	// Client-side server limits used when the flags are zero.
	defaultClientHeaderTimeout = 10 * time.Second
	defaultClientIdleTimeout   = 120 * time.Second
	defaultMaxHeaderBytes      = 64 << 10
)

// accessLogOut receives the access log (JSON lines); tests replace it.
var accessLogOut io.Writer = os.Stdout

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// passiveHealth is the proxy's passive health from the flags: the
// defaults for zero values, nothing (off) for negative max failures.
func passiveHealth(f podflags.Flags) *balancer.PassiveHealth {
	h := balancer.DefaultPassiveHealth
	switch {
	case f.PassiveMaxFailures < 0:
		return &balancer.PassiveHealth{}
	case f.PassiveMaxFailures > 0:
		h.MaxFailures = f.PassiveMaxFailures
	}
	h.BaseEjection = orDefault(f.PassiveEjection, h.BaseEjection)
	h.MaxEjection = f.PassiveMaxEjection
	return &h
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		var usage usageError
		if errors.As(err, &usage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError marks a bad command line (exit status 2).
type usageError struct{ error }

// run serves until ctx is done, then drains. Errors are logged before they
// are returned.
func run(ctx context.Context, args []string, logOut io.Writer) error {
	log := slog.New(slog.NewJSONHandler(logOut, nil))
	flags, err := podflags.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil // usage was printed
	}
	if err != nil {
		log.Error("Invalid command line", "err", err)
		return usageError{err}
	}
	if flags.Instance != "" {
		log = log.With("gateway", flags.Instance)
	}
	klog.SetSlogLogger(log) // client-go's reflector and retry messages

	fail := func(msg string, err error, kv ...any) error {
		log.Error(msg, append(kv, "err", err)...)
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ourReg := prometheus.Registerer(reg)
	if flags.Instance != "" {
		ourReg = prometheus.WrapRegistererWith(prometheus.Labels{"gateway": flags.Instance}, reg)
	}

	trusted, _ := flags.Prefixes()                // validated by Parse
	accessFields, _ := flags.AccessLogFieldList() // validated by Parse
	px, err := proxy.New(proxy.Options{
		Registerer:     ourReg,
		Logger:         log,
		TrustedProxies: trusted,
		ConnectTimeout: flags.UpstreamConnectTimeout,
		ReadTimeout:    flags.UpstreamReadTimeout,
		SendTimeout:    flags.UpstreamSendTimeout,
		Retries:        flags.UpstreamRetries,
		MaxBodyBytes:   flags.MaxBodyBytes,
		PassiveHealth:  passiveHealth(flags),
		AccessLog: proxy.AccessLogOptions{
			SampleRate: flags.AccessLogRate(),
			Fields:     accessFields,
			Out:        accessLogOut,
		},
	})
	if err != nil {
		return fail("Proxy setup failed", err)
	}
	defer px.Close()
	var served atomic.Pointer[snapshot.Snapshot] // for /debug/snapshot
	var certs *proxy.CertStore                   // nil without --https-address
	if flags.HTTPSAddress != "" {
		certs, err = proxy.NewCertStore(func(name string) *snapshot.Certificate {
			if rt := px.Router(); rt != nil {
				return rt.Certificate(name)
			}
			return nil
		}, ourReg, log)
		if err != nil {
			return fail("TLS setup failed", err)
		}
		certs.SetClientAuthLookup(func(name string) *snapshot.ClientAuth {
			if rt := px.Router(); rt != nil {
				return rt.ClientAuth(name)
			}
			return nil
		})
		px.SetClientCAs(certs.ClientCAPool)
	}

	client, err := kubeClient(flags, log)
	if err != nil {
		return fail("Kubernetes client setup failed", err)
	}
	reporter := podstatus.FromEnv(client, log)
	if reporter == nil {
		log.Info("Pod annotation reporting disabled", "reason", "no API client or "+podflags.EnvPodName+"/"+podflags.EnvPodNamespace+" unset")
	}

	src, err := source.New(source.Options{
		File:      flags.SnapshotFile,
		PartsDir:  flags.SnapshotPartsDir,
		Namespace: flags.SnapshotNamespace,
		ConfigMap: flags.SnapshotConfigMap,
		Client:    client,
		Apply: func(s *snapshot.Snapshot) error {
			rt, err := router.Compile(s)
			if err != nil {
				return err
			}
			if certs != nil {
				certs.SetCertificates(s.Certificates)
				certs.SetClientCAs(rt.ClientCAs())
			}
			px.Swap(rt)
			served.Store(s)
			reporter.Report(s.Version)
			return nil
		},
		Logger:     log,
		Registerer: ourReg,
		// The Pod shows a refused payload until a valid one arrives.
		Refused: func(r source.Refusal) {
			reporter.Refuse(podflags.SnapshotRefusal{Version: r.Version, Reason: r.Reason, Message: r.Message})
		},
		Serving: reporter.Report,
	})
	if err != nil {
		return fail("Snapshot source setup failed", err)
	}

	// Bind both ports before anything else so a taken port fails the start.
	httpLn, err := net.Listen("tcp", flags.HTTPAddress)
	if err != nil {
		return fail("Listen failed", err, "address", flags.HTTPAddress)
	}
	healthLn, err := net.Listen("tcp", flags.HealthAddress)
	if err != nil {
		httpLn.Close()
		return fail("Listen failed", err, "address", flags.HealthAddress)
	}
	var adminLn, httpsLn net.Listener
	if flags.AdminAddress != "" {
		if adminLn, err = net.Listen("tcp", flags.AdminAddress); err != nil {
			httpLn.Close()
			healthLn.Close()
			return fail("Listen failed", err, "address", flags.AdminAddress)
		}
	}
	if flags.HTTPSAddress != "" {
		if httpsLn, err = net.Listen("tcp", flags.HTTPSAddress); err != nil {
			httpLn.Close()
			healthLn.Close()
			if adminLn != nil {
				adminLn.Close()
			}
			return fail("Listen failed", err, "address", flags.HTTPSAddress)
		}
	}

	// Client connections read and write with raw system calls (see
	// package rawconn); TLS runs on top of them.
	httpLn = rawconn.Listener(httpLn)
	if httpsLn != nil {
		httpsLn = rawconn.Listener(httpsLn)
	}

	var draining atomic.Bool
	serverLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug) // TLS/handshake noise, bad clients
	proxySrv := &http.Server{
		Handler:           px,
		ReadHeaderTimeout: orDefault(flags.ClientHeaderTimeout, defaultClientHeaderTimeout),
		IdleTimeout:       orDefault(flags.ClientIdleTimeout, defaultClientIdleTimeout),
		MaxHeaderBytes:    orDefault(flags.MaxHeaderBytes, defaultMaxHeaderBytes),
		// h2c (HTTP/2 prior knowledge) next to HTTP/1.1, for gRPC clients
		// without TLS; net/http tells the two apart by the preface.
		Protocols: proxy.PlainProtocols(!flags.DisableHTTP2),
		ErrorLog:  serverLog,
	}
	healthSrv := &http.Server{
		Handler:           healthHandler(px, &draining, reg),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          serverLog,
	}

	// Background loops stop with bg, after the servers have drained.
	bg, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	srcDone := make(chan error, 1)
	go func() { srcDone <- src.Run(bg) }()
	go reporter.Run(bg)

	serveErr := make(chan error, 4)
	serve := func(srv *http.Server, ln net.Listener) {
		var err error
		if srv.TLSConfig != nil {
			err = srv.ServeTLS(ln, "", "") // certificates come from TLSConfig
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			serveErr <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
		}
	}
	var fastSrv *proxy.FastServer
	if flags.UseFastServer() {
		// Our HTTP/1.1 loop; what it does not take goes to proxySrv.
		fastSrv = &proxy.FastServer{Handler: px, ReadHeaderTimeout: proxySrv.ReadHeaderTimeout,
			IdleTimeout: proxySrv.IdleTimeout, Fallback: proxySrv}
		go func() {
			if err := fastSrv.Serve(httpLn); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("serve %s: %w", httpLn.Addr(), err)
			}
		}()
	} else {
		go serve(proxySrv, httpLn)
	}
	go serve(healthSrv, healthLn)
	if httpsLn != nil || flags.TLSSecret != "" {
		// The instance Secret holds the served certificates and the CA
		// bundles and client certificates of HTTPS/GRPCS upstreams.
		go func() {
			if err := source.WatchSecret(bg, source.SecretOptions{
				Dir:       flags.TLSDirectory(),
				Namespace: flags.SnapshotNamespace,
				Name:      flags.TLSSecret,
				Client:    client,
				OnData: func(data map[string][]byte) {
					if certs != nil {
						certs.SetData(data)
					}
					px.SetTLSData(data)
				},
				Logger: log,
			}); err != nil {
				serveErr <- fmt.Errorf("TLS Secret source: %w", err)
			}
		}()
	}
	var httpsSrv *http.Server
	if httpsLn != nil {
		httpsSrv = &http.Server{
			Handler:           px,
			TLSConfig:         certs.TLSConfigFor(!flags.DisableHTTP2),
			Protocols:         proxy.ServerProtocols(!flags.DisableHTTP2),
			ReadHeaderTimeout: proxySrv.ReadHeaderTimeout,
			IdleTimeout:       proxySrv.IdleTimeout,
			MaxHeaderBytes:    proxySrv.MaxHeaderBytes,
			ErrorLog:          serverLog,
		}
		go serve(httpsSrv, httpsLn)
		log.Info("Serving TLS", "httpsAddress", httpsLn.Addr().String(), "tlsDir", flags.TLSDirectory(), "tlsSecret", flags.TLSSecret,
			"http2", !flags.DisableHTTP2)
	}
	// The instance Secret holds the certificates and the JWT keys: it is
	// read even without a TLS listener.
	go func() {
		if err := source.WatchSecret(bg, source.SecretOptions{
			Dir:       flags.TLSDirectory(),
			Namespace: flags.SnapshotNamespace,
			Name:      flags.TLSSecret,
			Client:    client,
			OnData: func(data map[string][]byte) {
				px.SetSecretData(data)
				if certs != nil {
					certs.SetData(data)
				}
			},
			Logger: log,
		}); err != nil {
			serveErr <- fmt.Errorf("TLS Secret source: %w", err)
		}
	}()
	var adminSrv *http.Server
	if adminLn != nil {
		adminSrv = &http.Server{
			Handler:           adminHandler(&served, flags.EnablePprof),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          serverLog,
		}
		go serve(adminSrv, adminLn)
	}
	log.Info("Serving", "httpAddress", httpLn.Addr().String(), "healthAddress", healthLn.Addr().String(),
		"snapshotFile", flags.SnapshotFile, "snapshotConfigMap", configMapRef(flags))

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("Shutting down, draining connections", "timeout", shutdownTimeout.String())
	case runErr = <-serveErr:
		log.Error("Server failed, shutting down", "err", runErr)
	case runErr = <-srcDone:
		// Run returns early only on a setup error (it retries everything else).
		runErr = fmt.Errorf("snapshot source stopped: %w", runErr)
		log.Error("Snapshot source stopped, shutting down", "err", runErr)
	}

	draining.Store(true) // /readyz fails so no new traffic is sent here
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if fastSrv != nil {
		if err := fastSrv.Shutdown(sctx); err != nil {
			log.Error("Proxy drain incomplete", "err", err)
			fastSrv.Close()
		}
	} else if err := proxySrv.Shutdown(sctx); err != nil {
		log.Error("Proxy drain incomplete", "err", err)
		proxySrv.Close()
	}
	if httpsSrv != nil {
		if err := httpsSrv.Shutdown(sctx); err != nil {
			log.Error("TLS proxy drain incomplete", "err", err)
			httpsSrv.Close()
		}
	}
	if err := healthSrv.Shutdown(sctx); err != nil {
		healthSrv.Close()
	}
	if adminSrv != nil {
		adminSrv.Close()
	}
	stopBackground()
	log.Info("Stopped")
	return runErr
}

// healthHandler serves the probes and metrics. /readyz is 200 once a
// snapshot is loaded and until the drain starts.
func healthHandler(px *proxy.Proxy, draining *atomic.Bool, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch rt := px.Router(); {
		case draining.Load():
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
		case rt == nil:
			http.Error(w, "no snapshot loaded yet", http.StatusServiceUnavailable)
		default:
			_, _ = io.WriteString(w, "ok "+rt.Version()+"\n")
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// kubeClient returns the API client. It is required to watch the ConfigMap;
// in file-only mode it is only built (best effort) to report the Pod
// annotation. Credentials come from $KUBECONFIG when set, else from the
// in-cluster ServiceAccount.
func kubeClient(flags podflags.Flags, log *slog.Logger) (kubernetes.Interface, error) {
	required := flags.SnapshotConfigMap != "" || flags.HTTPSAddress != "" && flags.TLSSecret != ""
	if !required && (os.Getenv(podflags.EnvPodName) == "" || os.Getenv(podflags.EnvPodNamespace) == "") {
		return nil, nil
	}
	cfg, err := restConfig()
	if err == nil {
		cfg.UserAgent = userAgent
		var c *kubernetes.Clientset
		if c, err = kubernetes.NewForConfig(cfg); err == nil {
			return c, nil
		}
	}
	if required {
		return nil, err
	}
	log.Warn("No Kubernetes client in file-only mode", "err", err)
	return nil, nil
}

func restConfig() (*rest.Config, error) {
	if env := os.Getenv("KUBECONFIG"); env != "" {
		rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(env)}
		return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	}
	return rest.InClusterConfig()
}

func configMapRef(f podflags.Flags) string {
	if f.SnapshotConfigMap == "" {
		return ""
	}
	return f.SnapshotNamespace + "/" + f.SnapshotConfigMap
}
