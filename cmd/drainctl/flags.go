package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/drainctl/drainctl/internal/report"
	"github.com/drainctl/drainctl/internal/sidekiq"
	"github.com/urfave/cli/v2"
)

// envName is the environment variable of a flag: DRAINCTL_ plus the flag's name in upper
// case with dashes as underscores (--redis-url → DRAINCTL_REDIS_URL).
func envName(flag string) string {
	return "DRAINCTL_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Flag builders: every flag also reads DRAINCTL_<FLAG>. urfave/cli reads the process
// environment for help and for the real binary; opts reads the injected getenv too, so
// in-process tests see the same behaviour.
func strFlag(name, value, usage string, extraEnv ...string) *cli.StringFlag {
	return &cli.StringFlag{Name: name, Value: value, Usage: usage, EnvVars: append([]string{envName(name)}, extraEnv...)}
}

func sliceFlag(name, usage string) *cli.StringSliceFlag {
	return &cli.StringSliceFlag{Name: name, Usage: usage + " (repeatable)", EnvVars: []string{envName(name)}}
}

func boolFlag(name string, value bool, usage string) *cli.BoolFlag {
	return &cli.BoolFlag{Name: name, Value: value, Usage: usage, EnvVars: []string{envName(name)}}
}

func durFlag(name string, value time.Duration, usage string) *cli.DurationFlag {
	return &cli.DurationFlag{Name: name, Value: value, Usage: usage, EnvVars: []string{envName(name)}}
}

// outputFlag is --output, -o for short, as in kubectl and the AWS CLI.
func outputFlag() *cli.StringFlag {
	f := strFlag("output", "text", "result format on stdout: text, json or markdown (md), any case")
	f.Aliases = []string{"o"}
	return f
}

// Flag groups, shared by the commands.
func redisFlags() []cli.Flag {
	return []cli.Flag{
		strFlag("redis-url", "", "Redis URL of the Sidekiq fleet: redis://[user:password@]host:port/db, rediss://, redis+sentinel://host1,host2/master (also $REDIS_URL)", "REDIS_URL"),
		strFlag("redis-namespace", "", "redis-namespace prefix of Sidekiq's keys, without the colon"),
		strFlag("redis-sentinel-master", "", "Sentinel master name; with --redis-sentinel (the password and db come from --redis-url)"),
		sliceFlag("redis-sentinel", "Sentinel address host:port"),
		durFlag("redis-timeout", sidekiq.DefaultTimeout, "bound on connecting to Redis and on each command"),
		strFlag("force-sidekiq-layout", "", "treat processes of a Sidekiq major drainctl does not know (9+) as this one's key layout: 6, 7 or 8"),
	}
}

func ecsFlags() []cli.Flag {
	return []cli.Flag{
		strFlag("cluster", "", "ECS cluster name or ARN"),
		sliceFlag("service", "ECS service name or ARN"),
		strFlag("region", "", "AWS region (default: the SDK's: $AWS_REGION, the profile)"),
		strFlag("profile", "", "AWS shared-config profile (default: $AWS_PROFILE)"),
	}
}

func selectionFlags() []cli.Flag {
	return []cli.Flag{
		sliceFlag("tag", "select processes by Sidekiq tag (-g)"),
		strFlag("hostname", "", "select processes whose hostname matches this regular expression"),
		sliceFlag("queue", "select processes that work this queue"),
		sliceFlag("identity", "select a process by identity (hostname:pid:nonce)"),
		sliceFlag("label", "select processes by Sidekiq label"),
		boolFlag("all", false, "select every live process (not combinable with other selectors)"),
	}
}

func outputFlags() []cli.Flag {
	return []cli.Flag{
		outputFlag(),
		strFlag("report", "", "also write the result to this file; the format follows the extension (.json, .md, .txt)"),
		strFlag("log-format", "text", "format of log lines on stderr: text or json"),
		boolFlag("no-color", false, "no colours (also $NO_COLOR)"),
		boolFlag("show-args", false, "show job arguments in reports (hidden by default: they may hold personal data)"),
	}
}

// opts reads flag values: the command line first, then DRAINCTL_<FLAG> through the injected
// getenv, then the flag's default.
type opts struct {
	c      *cli.Context
	getenv env
}

func (o opts) lookupEnv(name string) (string, bool) {
	if o.getenv == nil {
		return "", false
	}
	v := o.getenv(envName(name))
	return v, v != ""
}

func (o opts) str(name string) string {
	if o.c.IsSet(name) {
		return o.c.String(name)
	}
	if v, ok := o.lookupEnv(name); ok {
		return v
	}
	return o.c.String(name)
}

func (o opts) strs(name string) []string {
	if o.c.IsSet(name) {
		return o.c.StringSlice(name)
	}
	if v, ok := o.lookupEnv(name); ok {
		var out []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return o.c.StringSlice(name)
}

func (o opts) boolean(name string) (bool, error) {
	if o.c.IsSet(name) {
		return o.c.Bool(name), nil
	}
	if v, ok := o.lookupEnv(name); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, usageErr("%s=%q: not a boolean", envName(name), v)
		}
		return b, nil
	}
	return o.c.Bool(name), nil
}

func (o opts) duration(name string) (time.Duration, error) {
	if o.c.IsSet(name) {
		return o.c.Duration(name), nil
	}
	if v, ok := o.lookupEnv(name); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return 0, usageErr("%s=%q: not a duration (e.g. 90s, 10m)", envName(name), v)
		}
		return d, nil
	}
	return o.c.Duration(name), nil
}

// positive reads a duration flag that must be greater than zero.
func (o opts) positive(name string) (time.Duration, error) {
	d, err := o.duration(name)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, usageErr("--%s must be positive, got %v", name, d)
	}
	return d, nil
}

// oneOf reads a string flag restricted to a set of values.
func (o opts) oneOf(name string, values ...string) (string, error) {
	v := o.str(name)
	for _, ok := range values {
		if v == ok {
			return v, nil
		}
	}
	return "", usageErr("--%s %q: must be one of %s", name, v, strings.Join(values, ", "))
}

// noArgs refuses positional arguments: every input is a flag.
// fleetFlags reads what every command on the fleet reads first, before any network call:
// no positional arguments, the output settings, the Redis connection and the selection
// (selGiven says whether any selector was set).
func fleetFlags(c *cli.Context, getenv env) (o opts, u *ui, ro *sidekiq.Options, sel sidekiq.Selector, selGiven bool, err error) {
	o = opts{c, getenv}
	if err = noArgs(c); err != nil {
		return
	}
	if u, err = newUI(o, c.App.Writer, c.App.ErrWriter); err != nil {
		return
	}
	if ro, err = o.redisOptions(); err != nil {
		return
	}
	sel, selGiven, err = o.selector()
	return
}

func noArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErr("unexpected argument %q (every input is a flag; see 'drainctl %s --help')", c.Args().First(), c.Command.Name)
	}
	return nil
}

// redisOptions builds the connection options from --redis-url (or $REDIS_URL), the Sentinel
// flags and --redis-namespace, without touching the network.
func (o opts) redisOptions() (*sidekiq.Options, error) {
	raw := o.str("redis-url")
	if raw == "" && o.getenv != nil {
		raw = o.getenv("REDIS_URL")
	}
	master := o.str("redis-sentinel-master")
	sentinels := o.strs("redis-sentinel")
	if len(sentinels) > 0 && master == "" {
		return nil, usageErr("--redis-sentinel needs --redis-sentinel-master")
	}
	if master != "" && len(sentinels) == 0 {
		return nil, usageErr("--redis-sentinel-master needs at least one --redis-sentinel host:port")
	}
	if raw == "" && master == "" {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("no Redis URL: set --redis-url, DRAINCTL_REDIS_URL or REDIS_URL"),
			hint: "e.g. --redis-url redis://:password@redis.internal:6379/0"}
	}
	var ro *sidekiq.Options
	if raw != "" {
		var err error
		ro, err = sidekiq.ParseURL(raw)
		if err != nil {
			return nil, usageErr("--redis-url: %w", err)
		}
	} else {
		ro = &sidekiq.Options{}
	}
	if master != "" {
		for _, a := range sentinels {
			if _, _, ok := strings.Cut(a, ":"); !ok {
				return nil, usageErr("--redis-sentinel %q: want host:port", a)
			}
		}
		ro.MasterName = master
		ro.Addrs = sentinels
	}
	if ns := o.str("redis-namespace"); ns != "" {
		ro.Namespace = strings.TrimSuffix(ns, ":")
	}
	timeout, err := o.duration("redis-timeout")
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		return nil, usageErr("--redis-timeout must be positive, got %v", timeout)
	}
	ro.Timeout = timeout
	if l := o.str("force-sidekiq-layout"); l != "" {
		if ro.ForceLayout, err = sidekiq.ParseLayout(l); err != nil {
			return nil, usageErr("--force-sidekiq-layout: %w", err)
		}
	}
	return ro, nil
}

// selector builds the process selector. any reports whether a criterion was given.
func (o opts) selector() (sel sidekiq.Selector, any bool, err error) {
	all, err := o.boolean("all")
	if err != nil {
		return sel, false, err
	}
	sel.Tags = o.strs("tag")
	sel.Queues = o.strs("queue")
	sel.Identities = o.strs("identity")
	sel.Labels = o.strs("label")
	if h := o.str("hostname"); h != "" {
		re, err := regexp.Compile(h)
		if err != nil {
			return sel, false, usageErr("--hostname %q: not a regular expression: %v", h, err)
		}
		sel.Hostname = re
	}
	given := len(sel.Tags)+len(sel.Queues)+len(sel.Identities)+len(sel.Labels) > 0 || sel.Hostname != nil
	if all && given {
		return sel, false, usageErr("--all cannot be combined with --tag, --hostname, --queue, --identity or --label")
	}
	sel.All = all
	return sel, all || given, nil
}

// outputFormat reads --output.
func (o opts) outputFormat() (report.Format, error) {
	f, err := report.ParseFormat(o.str("output"))
	if err != nil {
		return "", usageErr("--output: %w", err)
	}
	return f, nil
}

// reportPath reads --report, refusing a file whose extension names no format.
func (o opts) reportPath() (string, error) {
	path := o.str("report")
	if path == "" {
		return "", nil
	}
	if _, err := report.FormatOfPath(path); err != nil {
		return "", usageErr("--report %w", err)
	}
	return path, nil
}
