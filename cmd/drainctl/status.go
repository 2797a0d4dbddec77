package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drainctl/drainctl/internal/report"
	"github.com/drainctl/drainctl/internal/sidekiq"
	"github.com/drainctl/drainctl/internal/status"
	"github.com/urfave/cli/v2"
)

func statusCommand(getenv env) *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show the Sidekiq fleet (processes, in-flight jobs, queues) and, with --cluster/--service, the ECS service",
		UsageText: "drainctl status [--redis-url URL] [selectors] [--cluster C --service S] [--output text|json|markdown]",
		Description: `status only reads. Without selectors it shows every process listed in Redis; a process
whose heartbeat expired (killed) is shown as dead. With --cluster/--service it adds the
service's deployments and running tasks, and places each process in its task. --watch
redraws the view every --interval on a terminal (plain successive views otherwise) until
Ctrl-C, for watching a deploy by hand.

EXAMPLES:
   drainctl status --all
   drainctl status --cluster prod --service worker --watch
   drainctl status --tag worker -o json | jq '.jobs[0]'`,
		Flags: flags(redisFlags(), ecsFlags(), selectionFlags(), outputFlags(), []cli.Flag{
			boolFlag("watch", false, "redraw the view every --interval until Ctrl-C (text output only)"),
			durFlag("interval", 2*time.Second, "with --watch: time between views"),
		}),
		Action: func(c *cli.Context) error { return runStatus(c, getenv) },
	}
}

// statusReport is the status document; the tests decode `status --output json` into it.
type statusReport = report.Status

func runStatus(c *cli.Context, getenv env) error {
	o, u, ro, sel, selGiven, err := fleetFlags(c, getenv)
	if err != nil {
		return err
	}
	refs, err := o.serviceRefs(false)
	if err != nil {
		return err
	}
	watch, err := o.boolean("watch")
	if err != nil {
		return err
	}
	interval, err := o.positive("interval")
	if err != nil {
		return err
	}
	if watch && (u.out != report.Text || u.reportPath != "") {
		return usageErr("--watch shows text on the terminal: leave out --output %s and --report", u.out)
	}
	ctx := c.Context
	cl, err := openRedis(ctx, ro, false)
	if err != nil {
		return err
	}
	defer cl.Close()
	r := &status.Reader{Fleet: cl, Redis: ro.Redacted(), ReadTimeout: ro.ConnectTimeout(), Services: refs, ShowArgs: u.showArgs}
	if selGiven {
		r.Selector = &sel
	}
	if len(refs) > 0 {
		if r.ECS, err = openECS(ctx, o); err != nil {
			return err
		}
	}
	switch {
	case watch:
		return watchStatus(ctx, u, r, ro, interval)
	case u.out == report.JSON && u.reportPath == "":
		// The measured path (BENCHMARKS.md): streamed, in bounded memory.
		return statusErr(ro, r.Stream(ctx, u.stdout, func(w string) { u.warn("%s", w) }))
	}
	st, err := r.Read(ctx)
	if err != nil {
		return statusErr(ro, err)
	}
	for _, w := range st.Warnings {
		u.warn("%s", w)
	}
	return u.emitDoc(st)
}

// statusErr maps a failure of internal/status to its exit: an unreadable fleet or an empty
// selection is bad input, and so is an unknown service.
func statusErr(ro *sidekiq.Options, err error) error {
	var fe *status.FleetError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return redisErr(ro, fe.Err)
	}
	return ecsErr(selectionErr(err))
}

// watchStatus redraws the status view every interval until ctx ends (Ctrl-C): on a terminal
// it clears the screen first, elsewhere the views follow one another under a time line.
func watchStatus(ctx context.Context, u *ui, r *status.Reader, ro *sidekiq.Options, interval time.Duration) error {
	tty := isTerminal(u.stdout)
	for {
		st, err := r.Read(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return statusErr(ro, err)
		}
		var b strings.Builder
		if err := report.Write(&b, report.Text, st, report.Options{ShowArgs: u.showArgs, Color: u.color && tty}); err != nil {
			return err
		}
		if tty {
			fmt.Fprint(u.stdout, "\033[H\033[2J")
		} else {
			fmt.Fprintf(u.stdout, "--- %s\n", time.Now().UTC().Format(time.RFC3339))
		}
		fmt.Fprint(u.stdout, b.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// emitDoc writes doc to stdout in --output's format and to --report in its own.
func (u *ui) emitDoc(doc report.Doc) error {
	ro := report.Options{Command: doc.Kind(), Version: versionString(), ShowArgs: u.showArgs}
	so := ro
	so.Color = u.color && isTerminal(u.stdout)
	if err := report.Write(u.stdout, u.out, doc, so); err != nil {
		return fmt.Errorf("write the result: %w", err)
	}
	if u.reportPath == "" {
		return nil
	}
	return report.WriteFile(u.reportPath, doc, ro)
}
