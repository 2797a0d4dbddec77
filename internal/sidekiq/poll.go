package sidekiq

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Beat is the part of a process's heartbeat that decides where it stands in a drain — its
// `beat`, `busy` and `quiet` fields and its membership in `processes` — read without its info
// JSON or its in-flight jobs. A Watcher reads these first and the whole process only when they
// changed.
type Beat struct {
	Identity string
	// Listed is membership in `processes`.
	Listed bool
	// Fields is true when the heartbeat hash holds at least one of beat, busy and quiet; false
	// when it is missing (Sidekiq writes all three in the one HSET that creates it).
	Fields bool
	// Beat, Busy and Quiet are decoded as a full read decodes them (Beat zero when absent or
	// unreadable; Busy -1 when absent or unreadable).
	Beat  time.Time
	Busy  int
	Quiet bool
	// Err is a reply error for this process alone (WRONGTYPE on a key someone else wrote).
	Err string
}

// BeatReader is a Source that can also read Beats; *Client is one. A Watcher whose Source is a
// BeatReader reads each poll's state fields first and the whole process only where they changed.
type BeatReader interface {
	Source
	// Beats reads the Beat of each identity, in order, whether or not it is still listed.
	Beats(ctx context.Context, identities []string) ([]Beat, error)
}

var _ BeatReader = (*Client)(nil)

// Beats reads, in one pipelined round trip, SISMEMBER processes <id> and HMGET <id> beat busy
// quiet for each identity, in order. Replies are a few bytes per process, so reading 10,000
// costs a fraction of SnapshotOf.
func (c *Client) Beats(ctx context.Context, identities []string) ([]Beat, error) {
	out := make([]Beat, len(identities))
	if len(identities) == 0 {
		return out, nil
	}
	type cmds struct {
		listed *redis.BoolCmd
		fields *redis.SliceCmd
	}
	all := make([]cmds, len(identities))
	pipe := c.rdb.Pipeline()
	procKey := c.key(keyProcesses)
	for i, id := range identities {
		all[i].listed = pipe.SIsMember(ctx, procKey, id)
		all[i].fields = pipe.HMGet(ctx, c.key(heartbeatKey(id)), fieldBeat, fieldBusy, fieldQuiet)
	}
	cmdsRun, err := pipe.Exec(ctx)
	if err := pipelineErr(err, cmdsRun); err != nil {
		return nil, fmt.Errorf("read the beats of %d processes on %s: %w", len(identities), c.Redacted(), c.connErr(err))
	}
	for i, id := range identities {
		b := Beat{Identity: id, Busy: -1}
		b.Listed = all[i].listed.Val()
		var errs []string
		for _, cmd := range []redis.Cmder{all[i].listed, all[i].fields} {
			if e := cmd.Err(); e != nil && !isNil(e) {
				errs = append(errs, e.Error())
			}
		}
		if vals := all[i].fields.Val(); len(vals) == 3 {
			beat, bok := vals[0].(string)
			busy, uok := vals[1].(string)
			quiet, qok := vals[2].(string)
			b.Fields = bok || uok || qok
			if bok {
				b.Beat = beatTime(beat)
			}
			if uok {
				if n, err := strconv.Atoi(strings.TrimSpace(busy)); err == nil {
					b.Busy = n
				}
			}
			b.Quiet = qok && quiet == "true"
		}
		if len(errs) > 0 {
			b.Err = "read " + id + ": " + strings.Join(errs, "; ")
		}
		out[i] = b
	}
	return out, nil
}

// beatTime reads a heartbeat's `beat` as a full read of the heartbeat does: decimal text
// (epoch seconds, or milliseconds at or above 1e11) exactly, to the microsecond; other forms as
// a float; the zero time when unreadable. It only has to agree with the full read for a Watcher
// to tell an unchanged beat: a disagreement costs a needless full read, never a missed change.
func beatTime(s string) time.Time {
	s = strings.TrimSpace(s)
	intPart, frac, dot := strings.Cut(s, ".")
	if intPart == "" || len(intPart) > 16 || !allDigits(intPart) || (dot && (frac == "" || !allDigits(frac))) {
		return floatBeat(s)
	}
	sec, _ := strconv.ParseInt(intPart, 10, 64)
	var nanos int64
	for i, scale := 0, int64(1e8); i < len(frac) && scale > 0; i, scale = i+1, scale/10 {
		nanos += int64(frac[i]-'0') * scale
	}
	switch {
	case sec == 0:
		return time.Time{}
	case sec >= 1e11: // milliseconds
		ns := sec%1000*1e6 + nanos/1000
		if sec /= 1000; sec >= 1e13 {
			return time.Time{}
		}
		return time.Unix(sec, ns).UTC().Round(time.Microsecond)
	}
	return time.Unix(sec, nanos).UTC().Round(time.Microsecond)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// floatBeat is beatTime for a beat that is not plain decimal text (an exponent).
func floatBeat(s string) time.Time {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 1 || f >= 1e16 {
		return time.Time{}
	}
	if f >= 1e11 {
		sec := math.Floor(f / 1000)
		return time.Unix(int64(sec), int64(math.Round((f-sec*1000)*1e3))*1e3).UTC()
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC()
}
