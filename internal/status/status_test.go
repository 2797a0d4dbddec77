package status

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/drainctl/drainctl/internal/ecs"
	"github.com/drainctl/drainctl/internal/report"
	"github.com/drainctl/drainctl/internal/sidekiq"
	"github.com/drainctl/drainctl/internal/testenv"
)

// fakeECS serves one service and records the calls made.
type fakeECS struct {
	describeErr, tasksErr error
	calls                 []string
}

func (f *fakeECS) Describe(_ context.Context, refs []ecs.ServiceRef) ([]ecs.ServiceState, error) {
	f.calls = append(f.calls, fmt.Sprintf("Describe %v", refs))
	if f.describeErr != nil {
		return nil, f.describeErr
	}
	var out []ecs.ServiceState
	for _, r := range refs {
		out = append(out, ecs.ServiceState{Ref: r, Status: "ACTIVE", TaskDefinition: "worker:7", Desired: 1, Running: 1, Controller: "ECS"})
	}
	return out, nil
}

func (f *fakeECS) Tasks(_ context.Context, ref ecs.ServiceRef, desired string) ([]ecs.Task, error) {
	f.calls = append(f.calls, fmt.Sprintf("Tasks %s %s", ref, desired))
	if f.tasksErr != nil {
		return nil, f.tasksErr
	}
	return []ecs.Task{{ARN: "arn:aws:ecs:us-east-1:1:task/prod/abc", ID: "abc", LastStatus: "RUNNING", PrivateIPv4: "10.0.0.9"}}, nil
}

func openFleet(t *testing.T) *sidekiq.Client {
	t.Helper()
	r := testenv.StartRedis(t)
	ro, err := sidekiq.ParseURL(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := sidekiq.Open(ro)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// TestReadAndStreamAgree: the streamed JSON document is the one Read builds, rendered, with
// the services read once each way and a task list that could not be read as a warning that
// Stream also hands to warn.
func TestReadAndStreamAgree(t *testing.T) {
	t.Parallel()
	cl := openFleet(t)
	at := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	refs := []ecs.ServiceRef{{Cluster: "prod", Service: "worker"}, {Cluster: "prod", Service: "mailer"}}
	for _, tasksErr := range []error{nil, errors.New("throttled")} {
		t.Run(fmt.Sprint(tasksErr), func(t *testing.T) {
			ctx := context.Background()
			fe := &fakeECS{tasksErr: tasksErr}
			r := &Reader{Fleet: cl, Redis: "redis://127.0.0.1/0", ECS: fe, Services: refs, Now: func() time.Time { return at }}
			st, err := r.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			if err := report.Write(&want, report.JSON, st, report.Options{}); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			var warned []string
			if err := r.Stream(ctx, &got, func(w string) { warned = append(warned, w) }); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("streamed:\n%s\nread:\n%s", got.String(), want.String())
			}
			if len(st.Services) != 2 || len(st.Services[0].Tasks) != map[bool]int{true: 0, false: 1}[tasksErr != nil] {
				t.Errorf("services = %+v", st.Services)
			}
			if !reflect.DeepEqual(warned, st.Warnings) || (tasksErr != nil) != (len(warned) == 2) {
				t.Errorf("warned %q, document warnings %q", warned, st.Warnings)
			}
			if len(fe.calls) != 6 {
				t.Errorf("ECS calls %q, want Describe and Tasks of each service, once per read", fe.calls)
			}
		})
	}
}

// TestErrors: an empty selection, an unknown service and an unreachable Redis are told apart
// (the command maps each to its exit), and a failing read writes nothing.
func TestErrors(t *testing.T) {
	t.Parallel()
	cl := openFleet(t)
	none := sidekiq.Selector{Tags: []string{"nothing-has-this-tag"}}
	bad := sidekiq.Selector{All: true, Tags: []string{"x"}}
	down, err := sidekiq.Open(&sidekiq.Options{Addrs: []string{fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	var empty *sidekiq.EmptySelectionError
	var fleetErr *FleetError
	tests := []struct {
		name string
		r    Reader
		is   func(error) bool
	}{
		{"empty selection", Reader{Fleet: cl, Selector: &none}, func(err error) bool { return errors.As(err, &empty) }},
		{"no selector", Reader{Fleet: cl, Selector: &bad}, func(err error) bool { return err != nil && !errors.As(err, &fleetErr) }},
		{"unknown service", Reader{Fleet: cl, ECS: &fakeECS{describeErr: ecs.ErrNotFound}, Services: []ecs.ServiceRef{{Cluster: "c", Service: "s"}}},
			func(err error) bool { return errors.Is(err, ecs.ErrNotFound) }},
		{"redis down", Reader{Fleet: down, ReadTimeout: time.Second}, func(err error) bool { return errors.As(err, &fleetErr) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.r.Read(context.Background()); !tt.is(err) {
				t.Errorf("Read: %v", err)
			}
			var out bytes.Buffer
			if err := tt.r.Stream(context.Background(), &out, nil); !tt.is(err) || out.Len() != 0 {
				t.Errorf("Stream: %v, wrote %q", err, out.String())
			}
		})
	}
}

// TestStreamWriteFailure: a failure to write the document is named as such, not as a
// failure to read Redis.
func TestStreamWriteFailure(t *testing.T) {
	t.Parallel()
	r := &Reader{Fleet: openFleet(t)}
	err := r.Stream(context.Background(), failingWriter{}, nil)
	var fe *FleetError
	if err == nil || !strings.HasPrefix(err.Error(), "write the result: ") || errors.As(err, &fe) {
		t.Errorf("Stream to a failing writer: %v", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }
