package check

import (
	"errors"
	"io"
	"slices"
	"strings"
	"time"
)

// ParseLaunchType reads a launch type in any case: FARGATE, EC2, or "" (inferred from the
// task definition's requiresCompatibilities or the service).
func ParseLaunchType(s string) (string, error) {
	lt := strings.ToUpper(s)
	if lt != "" && lt != LaunchTypeFargate && lt != LaunchTypeEC2 {
		return "", errors.New("must be FARGATE or EC2")
	}
	return lt, nil
}

// AgentStopSeconds is the EC2 agent's ECS_CONTAINER_STOP_TIMEOUT d in whole seconds, as
// Input.AgentStopTimeout takes it; zero stays zero (the agent's default). The agent counts
// whole seconds, so a positive d under a second is refused rather than read as the default.
func AgentStopSeconds(d time.Duration) (int, error) {
	if d < 0 || d > 0 && d < time.Second {
		return 0, errors.New("must be at least 1s")
	}
	return int(d / time.Second), nil
}

// ErrStdinTwice is a list of task definition files naming stdin ("-") more than once.
var ErrStdinTwice = errors.New("stdin can be read only once")

// ReadInputs reads the task definition files at paths ("-" reads stdin, which can be read only
// once: ErrStdinTwice) into inputs with the settings of like (its Container,
// EntrypointScripts, LaunchType and AgentStopTimeout); each input's Source is its path, or
// "(stdin)". The first file that cannot be read or parsed is the error.
func ReadInputs(paths []string, stdin io.Reader, like Input) ([]Input, error) {
	if i := slices.Index(paths, "-"); i >= 0 && slices.Contains(paths[i+1:], "-") {
		return nil, ErrStdinTwice
	}
	var inputs []Input
	for _, p := range paths {
		in := like
		var err error
		in.Source = p
		if p == "-" {
			in.Source = "(stdin)"
			in.TaskDefinition, err = ReadTaskDefinition(stdin, in.Source)
		} else {
			in.TaskDefinition, err = ReadTaskDefinitionFile(p)
		}
		if err != nil {
			return nil, err
		}
		inputs = append(inputs, in)
	}
	return inputs, nil
}
