// Command ecssim runs the ECS simulator (internal/ecs/ecssim) as a standalone server, for
// demos and manual runs of drainctl. It prints its URL on stdout; point the AWS SDK at it
// with AWS_ENDPOINT_URL_ECS=<url> (plus any static credentials and a region). SIGINT or
// SIGTERM stops the server and every task process (SIGTERM, then SIGKILL).
//
// Usage:
//
//	ecssim [--listen 127.0.0.1:0] [--time-scale 1] [--tick 50ms] [--config FILE] [--quiet]
//
// The config file is JSON (unknown fields are an error); durations are Go duration strings:
//
//	{
//	  "region": "us-east-1",            // optional, default us-east-1
//	  "accountId": "123456789012",      // optional
//	  "healthyAfter": "40s",            // optional: simulated time until a RUNNING task is healthy
//	  "clusters": ["prod"],
//	  "taskDefinitions": [              // register-task-definition inputs, as the AWS CLI takes them
//	    {"family": "worker", "networkMode": "awsvpc",
//	     "containerDefinitions": [{"name": "sidekiq", "image": "app:1", "stopTimeout": 30,
//	                               "command": ["bundle", "exec", "sidekiq"]}]}
//	  ],
//	  "services": [
//	    {"cluster": "prod", "name": "worker", "taskDefinition": "worker:1", "desiredCount": 2,
//	     "minimumHealthyPercent": 100, "maximumPercent": 200,          // optional, these defaults
//	     "circuitBreaker": {"enable": true, "rollback": true},         // optional, default off
//	     "deploymentController": "ECS",                                // or CODE_DEPLOY, EXTERNAL
//	     "launchType": "FARGATE",
//	     "strategy": "BLUE_GREEN",                                     // optional: ROLLING (default),
//	     "bakeTimeInMinutes": 5,                                       // BLUE_GREEN, LINEAR, CANARY;
//	     "lifecycleHooks": [{"targetType": "PAUSE",                    // these fields as in ECS's
//	                         "lifecycleStages": ["POST_SCALE_UP"],     // deploymentConfiguration
//	                         "timeoutConfiguration": {"timeoutInMinutes": 60, "action": "ROLLBACK"}}],
//	     "linearConfiguration": null, "canaryConfiguration": null, "earlySuccessCriteria": null,
//	     "process": {                                                  // optional: real processes
//	       "argv": ["sidekiq", "-r", "./jobs.rb", "-t", "25"],
//	       "env": ["REDIS_URL=redis://127.0.0.1:6379/0"],             // added to ecssim's env
//	       "dir": "/srv/app",
//	       "hostnameEnv": "DYNO",                                      // gets ip-10-0-x-y
//	       "brokenSignalPath": false,                                  // SIGTERM never reaches argv
//	       "stopTimeout": "30s",                                       // real time; default: the
//	       "logDir": "/tmp/ecssim-logs"                                // container's, scaled
//	     }}
//	  ]
//	}
//
// (The // comments above are for this page only: JSON has none.)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/drainctl/drainctl/internal/ecs/ecssim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command: it serves until ctx ends and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ecssim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on (host:port)")
	scale := fs.Float64("time-scale", 1, "simulated seconds per real second")
	tick := fs.Duration("tick", 50*time.Millisecond, "real time between scheduler steps")
	config := fs.String("config", "", "JSON file with clusters, task definitions and services")
	quiet := fs.Bool("quiet", false, "do not log task and deployment events to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ecssim: error: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *scale <= 0 {
		fmt.Fprintln(stderr, "ecssim: error: --time-scale must be positive")
		return 2
	}
	opts := ecssim.Options{TimeScale: *scale, Tick: *tick}
	if !*quiet {
		opts.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	}
	var cfg *ecssim.Config
	if *config != "" {
		f, err := os.Open(*config)
		if err != nil {
			fmt.Fprintf(stderr, "ecssim: error: %v\n", err)
			return 1
		}
		cfg, err = ecssim.LoadConfig(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "ecssim: error: %s: %v\n", *config, err)
			return 1
		}
		opts = cfg.Options(opts)
	}
	sim := ecssim.New(opts)
	if cfg != nil {
		if err := sim.Apply(cfg); err != nil {
			fmt.Fprintf(stderr, "ecssim: error: %v\n", err)
			return 1
		}
	}
	if err := sim.Listen(*listen); err != nil {
		fmt.Fprintf(stderr, "ecssim: error: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, sim.URL())
	fmt.Fprintf(stderr, "ecssim: serving ECS at %s (time scale %g); export AWS_ENDPOINT_URL_ECS=%s\n", sim.URL(), *scale, sim.URL())
	<-ctx.Done()
	fmt.Fprintln(stderr, "ecssim: stopping: task processes get SIGTERM, then SIGKILL")
	if err := sim.Close(); err != nil {
		fmt.Fprintf(stderr, "ecssim: error: close: %v\n", err)
		return 1
	}
	return 0
}
