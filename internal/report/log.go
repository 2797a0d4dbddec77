package report

import (
	"log/slog"
	"time"

	"github.com/drainctl/drainctl/internal/drain"
)

// LogObserver is the live progress of a drain.Runner as slog records (--log-format json):
// the same events Progress draws, one record each, for log collectors rather than people.
type LogObserver struct{ Log *slog.Logger }

// PhaseStarted records the start of phase p.
func (o LogObserver) PhaseStarted(p drain.Phase, at time.Time) {
	o.Log.Info("phase started", "phase", string(p))
}

// PhaseEnded records the end of phase p, as a warning with its error when it failed.
func (o LogObserver) PhaseEnded(p drain.Phase, at time.Time, err error) {
	if err != nil {
		o.Log.Warn("phase ended", "phase", string(p), "error", err.Error())
		return
	}
	o.Log.Info("phase ended", "phase", string(p))
}

// DrainProgress records how many jobs are still in flight.
func (o LogObserver) DrainProgress(p drain.DrainProgress) {
	o.Log.Info("drain", "phase", string(p.Phase), "total", p.Total, "remaining", p.Remaining)
}

// RolloutPoll records one poll of the rollout, and each service event new since the last.
func (o LogObserver) RolloutPoll(p drain.RolloutPoll) {
	o.Log.Info("rollout", "service", p.Ref.String(), "deployment", p.DeploymentID, "state", p.RolloutState,
		"running", p.Running, "desired", p.Desired, "pending", p.Pending)
	for _, e := range p.Events {
		o.Log.Info("service event", "service", p.Ref.String(), "message", e.Message)
	}
}

// Warning records a warning.
func (o LogObserver) Warning(msg string) { o.Log.Warn(msg) }
