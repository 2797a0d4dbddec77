package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/report"
	"github.com/drainctl/drainctl/internal/sidekiq"
	"github.com/urfave/cli/v2"
)

const rescueDescription = `rescue finds Sidekiq processes that died with jobs in flight (SIGKILL, OOM, a host
gone) and pushes those jobs back to their queues, exactly once per death (a marker in Redis,
written in the same atomic step as the push, makes a second rescue of the same death, by
this or any other run, skip the job and name the run that rescued it). A job already
queued, scheduled, in retry or running on a live process is left alone, and so is anything
Sidekiq Pro's super_fetch owns (Pro recovers those itself).

What it can find: a killed process's heartbeat hash and its work hash (the jobs it was
running) both expire 60 s after its last heartbeat. A process whose heartbeat is stale
(older than --stale-after: by default two beats and 2 s, 12 s on Sidekiq 6, 22 s on 7 and
8) while its hash still exists is "not yet known dead": rescue lists it with its jobs and
the time its death becomes certain (its last beat + 60 s), and requeues nothing. --wait
blocks until then: rescue watches those processes (up to --wait) until Redis proves them
dead (the hash expires without a new beat) and requeues their jobs; a process that beats
again is left alone. With --cluster/--service, a process whose ECS task stopped with exit
code 137 is dead at once.

What it cannot find: a process that died more than about 60 s ago. It may still be listed
in 'processes', but its work hash has expired with its heartbeat, so the jobs it ran are
no longer visible anywhere in Redis; rescue lists such processes as expired. Run rescue
promptly (drainctl deploy watches its own processes and rescues them itself).

--dry-run lists the candidates and the jobs that would be requeued, without waiting and
without writing.

EXAMPLES:
   drainctl rescue --dry-run
   drainctl rescue --wait 90s --cluster prod --service worker`

func rescueCommand(getenv env) *cli.Command {
	return &cli.Command{
		Name:        "rescue",
		Usage:       "requeue, exactly once per death, the in-flight jobs of Sidekiq processes that died",
		UsageText:   "drainctl rescue [--redis-url URL] [selectors] [--cluster C --service S] [--dry-run] [--stale-after D] [--wait 90s]",
		Description: rescueDescription,
		Flags: flags(redisFlags(), ecsFlags(), selectionFlags(), outputFlags(), []cli.Flag{
			boolFlag("dry-run", false, "list the dead processes and the jobs that would be requeued; change nothing"),
			durFlag("stale-after", 0, "a process whose last heartbeat is older than this is a candidate; 0 means two beats + 2s (12s on Sidekiq 6, 22s on 7+)"),
			durFlag("wait", 0, "block up to this long until Redis proves the candidates dead (their heartbeat hash expires 60 s after the last beat), then requeue their jobs; 0 only lists them"),
			durFlag("poll-interval", time.Second, "time between polls of Redis"),
		}),
		Action: func(c *cli.Context) error { return runRescue(c, getenv) },
	}
}

// rescueReport is the rescue document; the tests decode `rescue --output json` into it.
type rescueReport = report.Rescue

func runRescue(c *cli.Context, getenv env) error {
	o, u, ro, sel, selGiven, err := fleetFlags(c, getenv)
	if err != nil {
		return err
	}
	dryRun, err := o.boolean("dry-run")
	if err != nil {
		return err
	}
	staleAfter, err := o.duration("stale-after")
	if err != nil {
		return err
	}
	if staleAfter < 0 {
		return usageErr("--stale-after must not be negative, got %v", staleAfter)
	}
	wait, err := o.duration("wait")
	if err != nil {
		return err
	}
	if wait < 0 {
		return usageErr("--wait must not be negative, got %v", wait)
	}
	poll, err := o.positive("poll-interval")
	if err != nil {
		return err
	}
	refs, err := o.serviceRefs(false)
	if err != nil {
		return err
	}
	if err := u.checkReportPath(); err != nil {
		return err
	}

	ctx := c.Context
	cl, err := openRedis(ctx, ro, !dryRun)
	if err != nil {
		return err
	}
	defer cl.Close()
	start := time.Now()
	host, _ := os.Hostname()
	cfg := drain.RescueConfig{Selector: sel, Selected: selGiven, DryRun: dryRun, StaleAfter: staleAfter, Wait: wait, PollInterval: poll,
		RunID: drain.RunID(host, os.Getpid(), start), Now: time.Now, After: time.After,
		OnWait: func(ps []drain.RescueProcess, wait time.Duration) {
			u.info("waiting up to %v for %d process(es) not yet known dead to be proven dead (their heartbeat hashes expire 60 s after the last beat)", wait, len(ps))
		}}
	if len(refs) > 0 {
		ec, err := openECS(ctx, o)
		if err != nil {
			return err
		}
		if _, err := ec.Describe(ctx, refs); err != nil { // an unknown cluster or service is bad input
			return ecsErr(err)
		}
		cfg.ECS, cfg.Services = ec, refs
	}
	snap, err := snapshot(ctx, cl, ro)
	if err != nil {
		return err
	}
	res, rerr := drain.RescueDead(ctx, cl, snap, cfg)
	rep := report.FromRescue(res, ro.Redacted(), u.showArgs)
	if errors.Is(rerr, drain.ErrRescueInterrupted) {
		rep.Warnings = append(rep.Warnings, rerr.Error())
		if err := u.emitDoc(rep); err != nil {
			u.warn("%v", err)
		}
		return &exitError{code: exitInterrupted, err: rerr, hint: "run drainctl rescue --wait 90s again to requeue the jobs once their processes are proven dead"}
	}
	for _, wn := range rep.Warnings {
		u.warn("%s", wn)
	}
	if n := rep.Counts[string(sidekiq.OutcomePushed)]; n > 0 {
		u.warn("%d job(s) of dead processes were requeued: fix what killed them (drainctl check)", n)
	}
	if err := u.emitDoc(rep); err != nil {
		return err
	}
	if n := rep.Counts[string(sidekiq.OutcomeError)]; n > 0 || rerr != nil {
		return fmt.Errorf("rescue: %d job(s) could not be requeued (Redis errors); run rescue again", n)
	}
	return nil
}
