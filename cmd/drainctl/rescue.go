package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/drainctl/drainctl/internal/report"
	"github.com/drainctl/drainctl/internal/sidekiq"
	"github.com/urfave/cli/v2"
)

const rescueDescription = `rescue finds Sidekiq processes that died with jobs in flight (SIGKILL, OOM, a host
gone) and pushes those jobs back to their queues, exactly once per jid (a marker in Redis
makes a second rescue, by this or any other run, skip the job). A job already queued,
scheduled, in retry or running on a live process is left alone, and so is anything Sidekiq
Pro's super_fetch owns (Pro recovers those itself).

What it can find: a killed process's heartbeat hash and its work hash (the jobs it was
running) both expire 60 s after its last heartbeat. rescue therefore works on processes
whose heartbeat is older than --stale-after while their hashes still exist: it reads their
jobs, then watches them (up to --wait) until Redis proves them dead (the heartbeat hash
expires without a new beat) and only then requeues their jobs. A process that beats again
is left alone.

What it cannot find: a process that died more than about 60 s ago. It may still be listed
in 'processes', but its work hash has expired with its heartbeat, so the jobs it ran are
no longer visible anywhere in Redis; rescue lists such processes and says so. Run rescue
promptly (drainctl deploy watches its own processes and rescues them itself).

--dry-run lists the dead and suspected processes and the jobs that would be requeued,
without waiting and without writing.`

func rescueCommand(getenv env) *cli.Command {
	return &cli.Command{
		Name:        "rescue",
		Usage:       "requeue, exactly once, the in-flight jobs of Sidekiq processes that died",
		UsageText:   "drainctl rescue [--redis-url URL] [selectors] [--dry-run] [--stale-after 30s] [--wait 90s]",
		Description: rescueDescription,
		Flags: flags(redisFlags(), selectionFlags(), outputFlags(), []cli.Flag{
			boolFlag("dry-run", false, "list the dead processes and the jobs that would be requeued; change nothing"),
			durFlag("stale-after", 30*time.Second, "a process whose last heartbeat is older than this is suspected dead (three Sidekiq 7 beats)"),
			durFlag("wait", 90*time.Second, "how long to watch suspected processes until Redis proves them dead (their heartbeat hash expires 60 s after the last beat)"),
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
	staleAfter, err := o.positive("stale-after")
	if err != nil {
		return err
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

	ctx := c.Context
	cl, err := openRedis(ctx, ro, !dryRun)
	if err != nil {
		return err
	}
	defer cl.Close()
	snap, err := snapshot(ctx, cl, ro)
	if err != nil {
		return err
	}
	now := time.Now()
	rep := report.NewRescue(now, ro.Redacted(), dryRun)

	// Candidates: listed processes whose heartbeat expired, or is older than --stale-after.
	var expired, suspects []sidekiq.Process
	for _, p := range snap.Processes {
		switch {
		case !p.HashExists:
			expired = append(expired, p)
		case !p.Beat.IsZero() && now.Sub(p.Beat) > staleAfter:
			suspects = append(suspects, p)
		}
	}
	if selGiven {
		expired = filterSelected(expired, sel)
		suspects = filterSelected(suspects, sel)
	}

	var orphans []sidekiq.Job
	var dead []string
	procIdx := map[string]int{}
	addProc := func(p sidekiq.Process, state, evidence string, jobs int) {
		procIdx[p.Identity] = len(rep.Processes)
		rep.Processes = append(rep.Processes, report.RescueProcess{Identity: p.Identity, Hostname: p.Hostname, LastBeat: p.Beat,
			State: state, Evidence: evidence, JobsVisible: jobs})
	}
	for _, p := range expired {
		dead = append(dead, p.Identity)
		orphans = append(orphans, p.Jobs...)
		ev := "listed in processes, heartbeat hash expired: died more than ~60 s ago"
		if len(p.Jobs) == 0 {
			ev += "; its work hash expired too, so the jobs it ran (if any) are not visible"
		}
		addProc(p, "expired", ev, len(p.Jobs))
	}
	if len(expired) > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d process(es) died before this run and their work hashes expired with their heartbeats: drainctl cannot see which jobs they were running. Run rescue within a minute of a kill, or let drainctl deploy watch its own rollout.", len(expired)))
	}

	switch {
	case len(suspects) == 0:
	case dryRun || wait == 0:
		for _, p := range suspects {
			dead = append(dead, p.Identity)
			orphans = append(orphans, p.Jobs...)
			addProc(p, "suspected", fmt.Sprintf("no heartbeat for %v; not yet proven dead (its heartbeat hash still exists)", now.Sub(p.Beat).Round(time.Second)), len(p.Jobs))
		}
		if !dryRun {
			rep.Notes = append(rep.Notes, "--wait 0: suspected processes were not proven dead, their jobs were not requeued")
		}
	default:
		u.info("watching %d process(es) without a heartbeat for up to %v until Redis proves them dead", len(suspects), wait)
		w := cl.NewWatcher(suspects)
		w.Interval = poll
		w.OnError = func(err error) { u.warn("read the fleet (retrying): %v", err) }
		beatAt := map[string]time.Time{}
		for _, p := range suspects {
			beatAt[p.Identity] = p.Beat
		}
		settled := func(obs []sidekiq.Observation) bool {
			for _, ob := range obs {
				if !ob.State.Terminal() && !ob.LastBeat.After(beatAt[ob.Identity]) {
					return false
				}
			}
			return true
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		obs, _ := w.Until(wctx, settled)
		cancel()
		if ctx.Err() != nil {
			return &exitError{code: exitInterrupted, err: fmt.Errorf("rescue interrupted while watching: nothing was requeued")}
		}
		if obs == nil {
			obs = w.Observations()
		}
		byID := map[string]sidekiq.Observation{}
		for _, ob := range obs {
			byID[ob.Identity] = ob
		}
		for _, p := range suspects {
			ob := byID[p.Identity]
			switch {
			case ob.State == sidekiq.StateDead:
				dead = append(dead, p.Identity)
				addProc(p, "dead", ob.Evidence, len(ob.Jobs))
			case ob.State == sidekiq.StateGone:
				addProc(p, "gone", "left cleanly: Sidekiq requeued its unfinished jobs itself", len(ob.Jobs))
			case ob.LastBeat.After(p.Beat):
				addProc(p, "alive", "it beat again: not dead, left alone", len(ob.Jobs))
			default:
				addProc(p, "suspected", fmt.Sprintf("still not proven dead after %v: not rescued (run rescue again)", wait), len(ob.Jobs))
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("process %s: not proven dead within --wait %v; its jobs were not requeued", p.Identity, wait))
			}
		}
		orphans = append(orphans, sidekiq.Orphans(obs)...)
	}

	if len(orphans) > 0 {
		res, rerr := cl.Rescue(ctx, orphans, sidekiq.RescueOptions{DryRun: dryRun, Dead: dead})
		for _, jr := range res.Jobs {
			rj := report.RescueJob{JID: jr.Job.JID, Class: jr.Job.Class, Queue: jr.Job.Queue, Process: jr.Job.Process, Outcome: string(jr.Outcome), Reason: jr.Reason}
			if u.showArgs {
				rj.Args = jr.Job.Args
			}
			rep.Jobs = append(rep.Jobs, rj)
			rep.Counts[string(jr.Outcome)]++
		}
		for _, sf := range res.SuperFetch {
			rep.Notes = append(rep.Notes, fmt.Sprintf("process %s: super_fetch owns its jobs: %s", sf.Identity, sf.Hint))
		}
		if rerr != nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("rescue: %v", rerr))
		}
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
	if n := rep.Counts[string(sidekiq.OutcomeError)]; n > 0 {
		return fmt.Errorf("rescue: %d job(s) could not be requeued (Redis errors); run rescue again", n)
	}
	return nil
}

// filterSelected keeps the processes the selector names; hostname and identity criteria
// also work on processes whose heartbeat expired (their tags and queues are unknown).
func filterSelected(ps []sidekiq.Process, sel sidekiq.Selector) []sidekiq.Process {
	if len(ps) == 0 {
		return nil
	}
	if sel.All {
		return ps
	}
	var out []sidekiq.Process
	for _, p := range ps {
		if p.HashExists {
			sub := &sidekiq.Snapshot{Processes: []sidekiq.Process{p}}
			if s, err := sub.Select(sel); err == nil && len(s.Processes) == 1 {
				out = append(out, p)
			}
			continue
		}
		host := p.Hostname
		if host == "" {
			host, _, _ = strings.Cut(p.Identity, ":")
		}
		ok := len(sel.Identities) > 0 || sel.Hostname != nil
		if len(sel.Identities) > 0 {
			ok = false
			for _, id := range sel.Identities {
				ok = ok || id == p.Identity
			}
		}
		if sel.Hostname != nil && !sel.Hostname.MatchString(host) {
			ok = false
		}
		if ok && len(sel.Tags)+len(sel.Queues)+len(sel.Labels) == 0 {
			out = append(out, p)
		}
	}
	return out
}
