package main

import (
	"errors"
	"fmt"

	"github.com/drainctl/drainctl/internal/drain"
	"github.com/drainctl/drainctl/internal/sidekiq"
	"github.com/urfave/cli/v2"
)

func unlockCommand(getenv env) *cli.Command {
	return &cli.Command{
		Name:      "unlock",
		Usage:     "remove the deploy lock of a run that is gone (killed drainctl, lost CI runner)",
		UsageText: "drainctl unlock --cluster C --service S [--service S2 ...] [--force]",
		Description: `A running deploy holds a lock in Redis per set of services and renews it every poll; a
killed one leaves it until its TTL (60 s) lapses. unlock removes it at once when its holder
stopped renewing it or ran on this machine as a process that is gone; while the holder still
renews it, unlock refuses (exit 6) unless --force. The same --service list as the deploy names
the same lock.

Examples:
   drainctl unlock --cluster prod --service worker
   drainctl unlock --cluster prod --service worker --service mailer --force`,
		Flags: flags(redisFlags(), ecsFlags(), []cli.Flag{
			boolFlag("force", false, "remove the lock even while its holder still renews it"),
		}),
		Action: func(c *cli.Context) error { return runUnlock(c, getenv) },
	}
}

func runUnlock(c *cli.Context, getenv env) error {
	o := opts{c, getenv}
	if err := noArgs(c); err != nil {
		return err
	}
	refs, err := o.serviceRefs(true)
	if err != nil {
		return err
	}
	force, err := o.boolean("force")
	if err != nil {
		return err
	}
	ro, err := o.redisOptions()
	if err != nil {
		return err
	}
	cl, err := openRedis(c.Context, ro, true)
	if err != nil {
		return err
	}
	defer cl.Close()
	name := drain.LockName(refs)
	holder, err := cl.Unlock(c.Context, name, sidekiq.UnlockOptions{Force: force})
	var held *sidekiq.LockHeldError
	switch {
	case errors.Is(err, sidekiq.ErrLockNotHeld):
		fmt.Fprintf(c.App.Writer, "deploy lock %q is not held: nothing to remove\n", name)
		return nil
	case errors.As(err, &held):
		return &exitError{code: exitLocked, err: err, hint: "that run still renews its lock: let it finish, or add --force if you are sure it is gone"}
	case err != nil:
		return err
	}
	fmt.Fprintf(c.App.Writer, "removed deploy lock %q of %s on %s (pid %d, started %s)\n", name, holder.Owner, holder.Host, holder.PID,
		holder.StartedAt.UTC().Format("2006-01-02T15:04:05Z"))
	return nil
}
