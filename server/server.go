package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/switchyard-io/switchyard/auth"
	"github.com/switchyard-io/switchyard/auth/authgrpc"
	"github.com/switchyard-io/switchyard/auth/authhttp"
	"github.com/switchyard-io/switchyard/cloudevent"
	"github.com/switchyard-io/switchyard/connectors"
	"github.com/switchyard-io/switchyard/internal/logging"
	"github.com/switchyard-io/switchyard/internal/panics"
	"github.com/switchyard-io/switchyard/internal/telemetry"
	switchyardv1 "github.com/switchyard-io/switchyard/proto/switchyard/v1"
	"github.com/switchyard-io/switchyard/router"
)

// Defaults of Config. The addresses bind every interface and apply when
// authentication is on; without it, LoopbackHTTPAddr and LoopbackGRPCAddr
// do.
const (
	DefaultHTTPAddr        = ":8080"
	DefaultGRPCAddr        = ":9090"
	DefaultShutdownTimeout = 20 * time.Second
)

// EmbeddedNotice is logged when no Redis is configured.
const EmbeddedNotice = "embedded store: state is kept in memory; pass --redis-url for durability"

// ErrVolatileSource refuses a source that confirms what it reads on the
// embedded store (see Config.AllowVolatileSources).
var ErrVolatileSource = errors.New("the source confirms what it reads, but the embedded store keeps accepted events in memory only")

// Config configures a Server.
type Config struct {
	// HTTPAddr serves POST /events, /healthz, /readyz and /metrics.
	// Default DefaultHTTPAddr with authentication, LoopbackHTTPAddr
	// without.
	HTTPAddr string
	// GRPCAddr serves the gRPC API. Default DefaultGRPCAddr with
	// authentication, LoopbackGRPCAddr without.
	GRPCAddr string
	// Auth selects how callers prove who they are (the config file's
	// `auth:` section, --admin-token-file, SWITCHYARD_ADMIN_TOKEN). When no
	// method is configured, authentication is off: every caller holds
	// every permission, and the listeners must be on loopback.
	Auth auth.Config
	// InsecureNoAuth lets a server without authentication listen beyond
	// loopback (--insecure-no-auth). It then logs a warning every minute.
	InsecureNoAuth bool
	// RedisURL is the Redis to use (see ParseRedisURL: one server, Redis
	// Cluster or Sentinel); empty starts the embedded in-process store.
	RedisURL string
	// RedisCluster reads a redis:// or rediss:// RedisURL as the nodes of a
	// Redis Cluster (as redis+cluster:// is read).
	RedisCluster bool
	// AckAfter says when a publish is answered (ParseAckAfter): "write"
	// (the default) once the Redis master has its events, "replicas=N" once
	// N replicas have them too. It sets Router.AckReplicas.
	AckAfter string
	// Limits bound ingested events (1 MiB per event, 16 MiB and 1000
	// events per batch by default; MaxBatchEvents is Router.MaxBatchEvents).
	Limits cloudevent.Limits
	// TLS serves both listeners over TLS when it names a certificate.
	// HTTPAddr equal to GRPCAddr (a port other than 0) serves both on one
	// listener.
	TLS TLSConfig
	// Transport bounds the listeners' connections, streams and body times.
	Transport TransportLimits
	// ShutdownTimeout bounds the whole graceful shutdown.
	ShutdownTimeout time.Duration
	// ShutdownDelay is how long a shutdown keeps serving after /readyz and
	// the gRPC health service turned unready, so that load balancers stop
	// sending requests before the listeners close (0: none).
	ShutdownDelay time.Duration
	// Egress says where triggers may send events and how (the egress
	// guard is always on; see EgressConfig). It fills in Router.Outbound
	// where that is left zero.
	Egress EgressConfig
	// Router configures the engine.
	Router router.Config
	// Sources are the connectors to run (the configuration file's `sources:`).
	Sources []connectors.SourceConfig
	// AllowVolatileSources lets sources that confirm what they read
	// (connectors.Spec.Confirms) run on the embedded store, where a restart
	// loses what they confirmed but did not deliver; without it New and
	// Check refuse them (ErrVolatileSource).
	AllowVolatileSources bool
	// Connectors resolves source kinds (connectors.Default when nil; the
	// binary registers the built-ins by importing connectors/all).
	Connectors *connectors.Registry
	// Tracing selects the OpenTelemetry trace exporter (off when zero; see
	// internal/telemetry and tracing.go): the binary reads it from the
	// OTEL_* environment variables.
	Tracing telemetry.Config
	// Logger receives the server's logs (slog.Default when nil).
	Logger *slog.Logger

	// listen binds a listener (net.Listen when nil): tests hand in one
	// bound beforehand, to share a port the system picked.
	listen func(network, address string) (net.Listener, error)
}

func (c *Config) setDefaults() {
	c.linkClientCAs() // a listener client CA turns authentication on
	if c.Auth.KeyPrefix == "" {
		c.Auth.KeyPrefix = c.Router.Prefix // auth's own default is the store's, "sy"
	}
	httpAddr, grpcAddr := LoopbackHTTPAddr, LoopbackGRPCAddr
	if c.Auth.Enabled() {
		httpAddr, grpcAddr = DefaultHTTPAddr, DefaultGRPCAddr
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = httpAddr
	}
	if c.GRPCAddr == "" {
		c.GRPCAddr = grpcAddr
	}
	if c.Limits.MaxBatchEvents == 0 {
		c.Limits.MaxBatchEvents = cmp.Or(c.Router.MaxBatchEvents, router.DefaultMaxBatchEvents)
	}
	c.Limits = c.Limits.WithDefaults()
	c.Transport.setDefaults()
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	// Lines logged with a call's or a span's context carry its ids.
	c.Logger = logging.Wrap(c.Logger)
	if c.Router.Logger == nil {
		c.Router.Logger = c.Logger
	}
	if c.Connectors == nil {
		c.Connectors = connectors.Default
	}
	if n, err := ParseAckAfter(c.AckAfter); err == nil && n > 0 {
		c.Router.AckReplicas = n
	}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	for name, a := range map[string]string{"http address": c.HTTPAddr, "grpc address": c.GRPCAddr} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", name, a, err))
		}
	}
	if c.RedisURL != "" {
		if _, err := ParseRedisURL(c.RedisURL, c.RedisCluster); err != nil {
			errs = append(errs, fmt.Errorf("redis url: %w", err))
		}
	}
	if n, err := ParseAckAfter(c.AckAfter); err != nil {
		errs = append(errs, fmt.Errorf("ack after: %w", err))
	} else if n > 0 && c.RedisURL == "" {
		errs = append(errs, errors.New("ack after: the embedded store has no replicas to wait for; give a redis_url"))
	}
	if c.ShutdownDelay < 0 {
		errs = append(errs, errors.New("shutdown delay must not be negative"))
	}
	if c.Limits.MaxEventBytes < 0 || c.Limits.MaxBatchBytes < 0 {
		errs = append(errs, errors.New("size limits must not be negative"))
	}
	if p := c.Router.Prefix; p != "" && !validKeyPrefix(p) {
		errs = append(errs, fmt.Errorf("key_prefix %q: use 1–64 letters, digits, '-', '_' and '.', starting with a letter or digit (braces, colons or glob characters would change the key layout)", p))
	}
	errs = append(errs, c.Router.Validate(), c.validateAuth(), c.validateExposure(), c.Tracing.Validate(), c.validateListeners(), c.Egress.Validate())
	return errors.Join(errs...)
}

// validKeyPrefix reports whether p may start every Redis key. Braces would
// move keys to other Redis Cluster hash slots than the scripts expect,
// colons could make one prefix's keys look like another's, and glob
// characters would widen the SCAN patterns that clean a prefix up.
func validKeyPrefix(p string) bool {
	if len(p) > 64 {
		return false
	}
	for i := range len(p) {
		c := p[i]
		ok := isLetter(c) || isDigit(c) || (i > 0 && (c == '-' || c == '_' || c == '.'))
		if !ok {
			return false
		}
	}
	return p != ""
}

// Check validates cfg, sources included, without connecting to anything:
// what New would refuse, Check reports.
func Check(cfg Config) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if len(cfg.Sources) == 0 {
		return nil
	}
	// Building the sources validates every field; nothing is started, so
	// the checkpoints a source asks for are never read or written.
	_, err := connectors.NewRunner(connectors.RunnerConfig{Logger: cfg.Logger}, cfg.Connectors, nil,
		func(string) connectors.Env {
			return connectors.Env{HTTP: connectors.NewMux(), Checkpoints: unusedCheckpoints{}}
		}, cfg.Sources)
	return errors.Join(err, cfg.checkVolatile())
}

// unusedCheckpoints stands in for the store while Check builds sources that
// need checkpoint storage: nothing runs, so nothing is kept.
type unusedCheckpoints struct{}

func (unusedCheckpoints) Get(context.Context, string) ([]byte, error) { return nil, nil }
func (unusedCheckpoints) Set(context.Context, string, []byte) error   { return nil }

// checkVolatile refuses, on the embedded store, the sources that confirm
// what they read (a restart would lose what they confirmed but did not
// deliver), unless AllowVolatileSources; when allowed, it logs each one
// with what it risks.
func (c Config) checkVolatile() error {
	if c.RedisURL != "" {
		return nil
	}
	var errs []error
	for _, r := range c.Connectors.Risks(c.Sources) {
		if c.AllowVolatileSources {
			c.Logger.Warn("volatile source: it confirms what it reads, the embedded store keeps it in memory only, and a restart loses it",
				"source", r.Name, "kind", r.Kind, "confirms", string(r.Confirms), "loses", r.Loses)
			continue
		}
		errs = append(errs, fmt.Errorf("%s %q (%s): %w: a restart would lose %s; give a redis_url (--redis-url), or set allow_volatile_sources: true (--allow-volatile-sources) to accept that loss",
			r.Path, r.Name, r.Kind, ErrVolatileSource, r.Loses))
	}
	return errors.Join(errs...)
}

// Server is one running Switchyard instance.
type Server struct {
	cfg    Config
	log    *slog.Logger
	authn  *auth.Authenticator
	warner *insecureWarner
	mini   *miniredis.Miniredis
	rdb    redis.UniversalClient
	router *router.Router
	grpc   *grpc.Server
	health *health.Server
	http   *http.Server
	hl, gl net.Listener // the same listener when shared
	shared bool
	tls    *listenerTLS // nil: plaintext
	runner *connectors.Runner
	traces *telemetry.Provider // nil when tracing is off
	wg     sync.WaitGroup
	once   sync.Once
	quit   chan struct{} // closed on shutdown: stops the readiness loop
	// draining is set when a shutdown begins: /readyz answers 503 from then on.
	draining atomic.Bool
}

// New connects to the store (or starts the embedded one), binds both
// listeners and starts the router. Call Serve, then Shutdown.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, quit: make(chan struct{})}
	if err := cfg.checkVolatile(); err != nil {
		return nil, fmt.Errorf("config: %w", Check(cfg)) // with the sources' field errors, if any
	}
	var target RedisTarget
	if cfg.RedisURL == "" {
		s.mini = miniredis.NewMiniRedis()
		if err := s.mini.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("embedded store: %w", err)
		}
		s.log.Warn(EmbeddedNotice, "store", "embedded", "addr", s.mini.Addr())
		if a := &cfg.Router.Archive; a.Enabled() && a.MaxBytes == 0 {
			// The embedded store holds the archive in this process's
			// memory: always bounded by size.
			a.MaxBytes = router.DefaultEmbeddedArchiveMaxBytes
			s.log.Info("archive: bounded by size on the embedded store", "archive_max_bytes", a.MaxBytes)
		}
		target = RedisTarget{Kind: RedisSingle, Single: &redis.Options{Addr: s.mini.Addr()}}
	} else {
		var err error
		if target, err = ParseRedisURL(cfg.RedisURL, cfg.RedisCluster); err != nil {
			return nil, err
		}
	}
	s.rdb = newRedisClient(target)
	fail := func(err error) (*Server, error) {
		if s.authn != nil {
			_ = s.authn.Close()
		}
		s.closeStore()
		_ = s.traces.Shutdown(ctx)
		return nil, err
	}
	authn, err := auth.New(cfg.Auth, s.rdb, s.log)
	if err != nil {
		return fail(fmt.Errorf("config: %w", err))
	}
	s.authn = authn
	audit, err := auth.NewAuditor(auth.AuditConfig{KeyPrefix: cfg.Auth.KeyPrefix}, s.rdb, s.log)
	if err != nil {
		return fail(err)
	}
	if cfg.Tracing.Enabled() {
		tc := cfg.Tracing
		if tc.InstanceID == "" {
			tc.InstanceID = cfg.Router.InstanceID
		}
		if s.traces, err = telemetry.New(ctx, tc, s.log); err != nil {
			return fail(fmt.Errorf("tracing: %w", err))
		}
		cfg.Router.Tracing = routerTracing(s.traces)
	}
	if cfg.Router.Outbound, err = cfg.outbound(); err != nil {
		return fail(err)
	}
	r, err := router.New(cfg.Router, s.rdb, nil)
	if err != nil {
		return fail(err)
	}
	s.rdb.AddHook(r.RedisHook())
	r.Registry().MustRegister(newSourceCollector(func() *connectors.Runner { return s.runner }))
	cmux := connectors.NewMux()
	if len(cfg.Sources) > 0 {
		rc := connectors.RunnerConfig{Logger: s.log}
		if s.traces != nil {
			rc.Tracer = s.traces.TracerProvider().Tracer("github.com/switchyard-io/switchyard/connectors")
		}
		s.runner, err = connectors.NewRunner(rc, cfg.Connectors, router.Sink{R: r},
			func(name string) connectors.Env {
				return connectors.Env{Logger: s.log, Checkpoints: r.Store().Checkpoints(name), Marks: r.Store().Marks(name), HTTP: cmux, Once: r}
			}, cfg.Sources)
		if err != nil {
			return fail(fmt.Errorf("config: %w", err))
		}
	}
	if err := s.prepareListeners(authn); err != nil {
		return fail(fmt.Errorf("config: %w", err))
	}
	if err := s.newGRPC(r, authn, audit); err != nil {
		return fail(err)
	}
	s.newHTTP(r, authn, cmux)
	if err := r.Start(ctx); err != nil {
		return fail(fmt.Errorf("start: %w", err))
	}
	s.router = r
	if cfg.RedisURL != "" {
		s.log.Info("store: redis", target.describe()...)
	}

	if err := s.listen(); err != nil {
		_ = r.Shutdown(ctx)
		return fail(err)
	}

	return s, nil
}

// registerExtra, when set (by tests), registers more services on the gRPC
// server before the permission table's coverage is checked.
var registerExtra func(*grpc.Server)

// newGRPC builds the gRPC server: every call is authenticated and checked
// against the permission table (authgrpc) before its handler runs, and
// admin actions are audited. A registered method missing from the table
// fails the start, so an RPC added later can never ship unauthorized. With
// tracing on, otelgrpc's stats handler sees every call of the API, refused
// ones included (see tracing.go).
func (s *Server) newGRPC(r *router.Router, authn *auth.Authenticator, audit *auth.Auditor) error {
	policy := grpcPolicy()
	au := &auditor{a: audit, v: authn, log: s.log}
	opts := append(s.grpcOptions(),
		grpc.ChainUnaryInterceptor(requestIDUnary(s.log), recoverUnary(s.log), au.unary(), authgrpc.UnaryInterceptor(authn, policy), captureUnary),
		grpc.ChainStreamInterceptor(requestIDStream(s.log), recoverStream(s.log), au.stream(), authgrpc.StreamInterceptor(authn, policy), captureStream))
	if s.traces != nil {
		opts = append(opts, grpcTracing(s.traces))
	}
	s.grpc = grpc.NewServer(opts...)
	switchyardv1.RegisterEventServiceServer(s.grpc, &eventService{r: r, maxEventBytes: int(s.cfg.Limits.MaxEventBytes)})
	switchyardv1.RegisterTriggerServiceServer(s.grpc, &triggerService{r: r, maxTestEvents: s.cfg.Limits.MaxBatchEvents})
	switchyardv1.RegisterDeadLetterServiceServer(s.grpc, &deadLetterService{r: r})
	switchyardv1.RegisterPullServiceServer(s.grpc, &pullService{r: r, quit: s.quit, drain: pullDrain(s.cfg.ShutdownTimeout), log: s.log})
	switchyardv1.RegisterSourceServiceServer(s.grpc, &sourceService{runner: func() *connectors.Runner { return s.runner }})
	switchyardv1.RegisterTokenServiceServer(s.grpc, &tokenService{keys: authn.Keys()})
	switchyardv1.RegisterAuditServiceServer(s.grpc, &auditService{a: audit})
	switchyardv1.RegisterArchiveServiceServer(s.grpc, &archiveService{r: r})
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	if !authn.Enabled() {
		// Reflection only without authentication (loopback, for grpcurl):
		// the API's schema is public (proto/), so it hides nothing, but
		// with authentication on no role's permission describes it, and an
		// open method is one more thing an unauthenticated caller can
		// drive. With authentication on, grpcurl takes -import-path proto
		// -proto switchyard/v1/….proto instead.
		reflection.Register(s.grpc)
		for svc, info := range s.grpc.GetServiceInfo() {
			if strings.HasPrefix(svc, "grpc.reflection.") {
				for _, m := range info.Methods {
					policy.Public["/"+svc+"/"+m.Name] = true
				}
			}
		}
	}
	if registerExtra != nil {
		registerExtra(s.grpc)
	}
	if err := authgrpc.CheckCoverage(s.grpc.GetServiceInfo(), policy); err != nil {
		return fmt.Errorf("grpc: %w", err)
	}
	return nil
}

// grpcPolicy is the permission table of every gRPC method served.
func grpcPolicy() authgrpc.Policy {
	p := authgrpc.DefaultPolicy()
	p.Methods[switchyardv1.TokenService_CreateToken_FullMethodName] = auth.PermTokensManage
	p.Methods[switchyardv1.TokenService_ListTokens_FullMethodName] = auth.PermTokensManage
	p.Methods[switchyardv1.TokenService_RevokeToken_FullMethodName] = auth.PermTokensManage
	p.Methods[switchyardv1.AuditService_ListAuditRecords_FullMethodName] = auth.PermAuditRead
	return p
}

// pushSourcePaths are where push sources (webhooks, bucket notifications)
// receive requests. They verify each request themselves (signatures,
// tokens), so these paths bypass bearer authentication; a connector that
// registers another path must be listed here, or its requests are refused.
var pushSourcePaths = []string{"/webhooks/", "/s3/"}

// httpPolicy is the permission table of the HTTP listener: anything not
// listed is refused.
func httpPolicy() authhttp.Policy {
	p := authhttp.DefaultPolicy()
	p.Public = append([]string{"/healthz", "/readyz"}, pushSourcePaths...)
	return p
}

// newHTTP builds the HTTP server. The authentication middleware wraps the
// whole mux: POST /events needs events.publish (and the ingest handler
// checks each event's source, type and hop count against the caller's
// scope), /metrics needs metrics.read; health checks and push sources are
// open.
func (s *Server) newHTTP(r *router.Router, authn *auth.Authenticator, cmux *connectors.Mux) {
	mux := http.NewServeMux()
	mux.Handle("/events", &ingestHandler{r: r, lim: s.cfg.Limits})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", s.ready)
	// OpenMetrics when the scraper asks for it: only it carries exemplars.
	mux.Handle("/metrics", promhttp.HandlerFor(r.Registry(), promhttp.HandlerOpts{EnableOpenMetrics: true}))
	mux.Handle("/", cmux) // push sources: /webhooks/{name}, /s3/{name}, …
	// The request id first: a refused call has one too.
	h := withRequestID(s.log, authhttp.Middleware(authn, httpPolicy(), mux))
	if s.traces != nil {
		h = httpTracing(s.traces, h) // POST /events only, refusals included
	}
	s.http = &http.Server{Handler: recoverHTTP(s.log, h)}
	s.configureHTTP(s.http)
}

// Authenticator returns the server's authenticator (its key store creates
// API keys).
func (s *Server) Authenticator() *auth.Authenticator { return s.authn }

// Router returns the engine.
func (s *Server) Router() *router.Router { return s.router }

// HTTPAddr and GRPCAddr return the bound addresses.
func (s *Server) HTTPAddr() string { return s.hl.Addr().String() }

// GRPCAddr returns the bound gRPC address.
func (s *Server) GRPCAddr() string { return s.gl.Addr().String() }

// Serve serves both listeners in the background.
func (s *Server) Serve() {
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		panics.Loop(context.Background(), s.log, "server.readiness", func(context.Context) { s.watchReadiness() })
	}()
	s.serveListeners()
	if s.runner != nil {
		s.runner.Start()
	}
	switch {
	case s.authn.Enabled():
		s.log.Info("authentication is on: every call but health checks and push sources needs an identity")
	case isLoopbackHost(s.cfg.HTTPAddr) && isLoopbackHost(s.cfg.GRPCAddr):
		s.log.Warn("authentication is off: listening on loopback only; to serve other hosts, set " + auth.EnvAdminToken +
			" (or --admin-token-file) and create API keys with `switchyard token create`")
	default:
		s.warner = startInsecureWarner(s.log, s.HTTPAddr()+", "+s.GRPCAddr())
	}
	s.logListeners()
	// The e2e tests and the bench learn the ports from this line
	// (internal/childproc.ParseServing): keep its msg and fields.
	s.log.Info("switchyard serving", "http", s.HTTPAddr(), "grpc", s.GRPCAddr(), "sources", len(s.cfg.Sources))
}

// ready answers /readyz: 200 when the router is ready (router.Ready: one
// PING and the state its loops keep), else 503 with the reason.
func (s *Server) ready(w http.ResponseWriter, req *http.Request) {
	if s.draining.Load() {
		p := probStopping
		p.Detail = "the server is shutting down"
		writeProblem(w, p)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), time.Second)
	defer cancel()
	if err := s.router.Ready(ctx); err != nil {
		p := probNotReady
		p.RetryAfter = 1
		switch {
		case errors.Is(err, router.ErrUnavailable):
			p = probUnavailable
			p.RetryAfter = 1
		case errors.Is(err, router.ErrStoreFull):
			p = probStoreFull
			p.Status = http.StatusServiceUnavailable // not ready; publishing answers 507
			p.RetryAfter = storeFullRetry.Seconds()
		}
		p.Detail = err.Error()
		writeProblem(w, p)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// readinessInterval is how often the gRPC health service's status follows
// the router's readiness.
const readinessInterval = time.Second

// watchReadiness keeps the gRPC health service's overall status in step
// with the router's readiness until shutdown.
func (s *Server) watchReadiness() {
	tick := time.NewTicker(readinessInterval)
	defer tick.Stop()
	serving := true
	for {
		select {
		case <-s.quit:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := s.router.Ready(ctx)
		cancel()
		switch {
		case err != nil && serving:
			serving = false
			s.log.Warn("not ready", "err", err)
			s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		case err == nil && !serving:
			serving = true
			s.log.Info("ready again")
			s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		}
	}
}

// Shutdown stops in two phases: stop accepting (/readyz and the health
// service report unready at once, the listeners keep serving for
// ShutdownDelay, then HTTP and gRPC stop taking requests and finish those in
// progress), then drain the router's attempts and close the store. Bounded
// by ShutdownTimeout.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
		defer cancel()
		close(s.quit)
		// Unready first, then serve on for ShutdownDelay, so that load
		// balancers stop routing here before the listeners close.
		s.draining.Store(true)
		s.health.Shutdown()
		s.delayShutdown(ctx)
		var errs []error
		if s.runner != nil { // sources first: they finish their batch and ack or nack it
			errs = append(errs, s.runner.Stop(ctx))
		}
		errs = append(errs, s.http.Shutdown(ctx))
		stopped := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			s.grpc.Stop()
		}
		errs = append(errs, s.router.Shutdown(ctx))
		s.wg.Wait()
		s.warner.Stop()
		_ = s.authn.Close()
		s.closeStore()
		// Last: the attempts' spans have ended; export what is buffered. A
		// collector that does not answer costs spans, not the shutdown.
		if err := s.traces.Shutdown(ctx); err != nil {
			s.log.Warn("tracing: spans not exported at shutdown", "err", err)
		}
		err = errors.Join(errs...)
		s.log.Info("switchyard stopped")
	})
	return err
}

func (s *Server) closeStore() {
	if s.rdb != nil {
		_ = s.rdb.Close()
	}
	if s.mini != nil {
		s.mini.Close()
	}
}

// Run starts a server and serves until ctx is done, then shuts down.
func Run(ctx context.Context, cfg Config) error {
	s, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	s.Serve()
	<-ctx.Done()
	return s.Shutdown(context.Background())
}

// recoverUnary answers INTERNAL for a call whose handler panicked (counted
// and logged with its stack, see internal/panics).
func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if v := recover(); v != nil {
				panics.RecordContext(ctx, log.With("method", info.FullMethod), "server.grpc", v)
				err = status.Errorf(codes.Internal, "internal error")
			}
		}()
		return h(ctx, req)
	}
}

// recoverStream is recoverUnary for streaming calls.
func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
		defer func() {
			if v := recover(); v != nil {
				panics.RecordContext(ss.Context(), log.With("method", info.FullMethod), "server.grpc", v)
				err = status.Errorf(codes.Internal, "internal error")
			}
		}()
		return h(srv, ss)
	}
}

// recoverHTTP answers 500 for a request whose handler panicked, counted and
// logged with its stack (net/http would recover too, but silently to us,
// and drop the connection without an answer). http.ErrAbortHandler, which
// handlers panic with on purpose, passes on.
func recoverHTTP(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // the sentinel itself is the panic value
				panic(v)
			}
			panics.RecordContext(req.Context(), log.With("path", req.URL.Path), "server.http", v)
			p := probInternal
			p.Detail = "internal error"
			writeProblem(w, p)
		}()
		h.ServeHTTP(w, req)
	})
}
