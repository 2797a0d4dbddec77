package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// TaskDefinition is the part of an ECS task definition the checks read. It is this
// package's own type so that the engine does not depend on the AWS SDK; build it with
// ParseTaskDefinition from JSON, or fill the fields from an SDK value.
type TaskDefinition struct {
	Family                  string
	Revision                int
	ARN                     string
	NetworkMode             string   // "awsvpc", "bridge", "host", "none" or "" (unset)
	RequiresCompatibilities []string // "FARGATE", "EC2", "EXTERNAL"
	Containers              []Container
}

// Container is one container definition.
type Container struct {
	Name       string
	Image      string
	Essential  *bool    // nil means true (the ECS default)
	Command    []string // nil: the image's CMD applies
	EntryPoint []string // nil: the image's ENTRYPOINT applies
	// StopTimeout is containerDefinitions[].stopTimeout in seconds; nil means unset.
	StopTimeout *int
	// InitProcessEnabled is linuxParameters.initProcessEnabled; nil means unset (false).
	InitProcessEnabled *bool
	DependsOn          []Dependency
	Environment        map[string]string
}

// Dependency is one containerDefinitions[].dependsOn entry.
type Dependency struct {
	ContainerName string
	Condition     string // START, COMPLETE, SUCCESS, HEALTHY
}

// IsEssential reports whether the container is essential (unset means essential).
func (c Container) IsEssential() bool { return c.Essential == nil || *c.Essential }

// Name returns "family:revision", or the family alone when the revision is unknown.
func (td TaskDefinition) Name() string {
	if td.Family == "" {
		return "(no family)"
	}
	if td.Revision > 0 {
		return fmt.Sprintf("%s:%d", td.Family, td.Revision)
	}
	return td.Family
}

// NewTaskDefinition builds a TaskDefinition from plain fields, for callers that already
// hold a parsed task definition (such as the ECS client's).
func NewTaskDefinition(family string, revision int, networkMode string, compatibilities []string, containers ...Container) TaskDefinition {
	return TaskDefinition{
		Family:                  family,
		Revision:                revision,
		NetworkMode:             networkMode,
		RequiresCompatibilities: compatibilities,
		Containers:              containers,
	}
}

// ErrNoContainers is returned by ParseTaskDefinition for a document without container
// definitions.
var ErrNoContainers = errors.New("task definition has no containerDefinitions")

// jsonTaskDefinition mirrors the ECS JSON shape (register-task-definition input and the
// taskDefinition object of describe-task-definition).
type jsonTaskDefinition struct {
	Family                  string          `json:"family"`
	Revision                int             `json:"revision"`
	TaskDefinitionArn       string          `json:"taskDefinitionArn"`
	NetworkMode             string          `json:"networkMode"`
	RequiresCompatibilities []string        `json:"requiresCompatibilities"`
	ContainerDefinitions    []jsonContainer `json:"containerDefinitions"`
}

type jsonContainer struct {
	Name            string   `json:"name"`
	Image           string   `json:"image"`
	Essential       *bool    `json:"essential"`
	Command         []string `json:"command"`
	EntryPoint      []string `json:"entryPoint"`
	StopTimeout     *int     `json:"stopTimeout"`
	LinuxParameters *struct {
		InitProcessEnabled *bool `json:"initProcessEnabled"`
	} `json:"linuxParameters"`
	DependsOn []struct {
		ContainerName string `json:"containerName"`
		Condition     string `json:"condition"`
	} `json:"dependsOn"`
	Environment []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"environment"`
}

// ParseTaskDefinition reads a task definition from JSON: either what
// `aws ecs describe-task-definition` prints ({"taskDefinition": {...}}) or a
// register-task-definition input ({"family": ..., "containerDefinitions": [...]}).
// Unknown fields are ignored.
func ParseTaskDefinition(data []byte) (TaskDefinition, error) {
	data = bytes.TrimSpace(data)
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return TaskDefinition{}, fmt.Errorf("parse task definition JSON: %w", err)
	}
	body := data
	if inner, ok := probe["taskDefinition"]; ok && len(bytes.TrimSpace(inner)) > 0 && bytes.TrimSpace(inner)[0] == '{' {
		body = inner
	}
	var j jsonTaskDefinition
	if err := json.Unmarshal(body, &j); err != nil {
		return TaskDefinition{}, fmt.Errorf("parse task definition JSON: %w", err)
	}
	if len(j.ContainerDefinitions) == 0 {
		return TaskDefinition{}, ErrNoContainers
	}
	td := TaskDefinition{
		Family:                  j.Family,
		Revision:                j.Revision,
		ARN:                     j.TaskDefinitionArn,
		NetworkMode:             j.NetworkMode,
		RequiresCompatibilities: j.RequiresCompatibilities,
	}
	for i, jc := range j.ContainerDefinitions {
		if jc.Name == "" {
			return TaskDefinition{}, fmt.Errorf("parse task definition: containerDefinitions[%d] has no name", i)
		}
		c := Container{
			Name:        jc.Name,
			Image:       jc.Image,
			Essential:   jc.Essential,
			Command:     jc.Command,
			EntryPoint:  jc.EntryPoint,
			StopTimeout: jc.StopTimeout,
		}
		if jc.LinuxParameters != nil {
			c.InitProcessEnabled = jc.LinuxParameters.InitProcessEnabled
		}
		for _, d := range jc.DependsOn {
			c.DependsOn = append(c.DependsOn, Dependency{ContainerName: d.ContainerName, Condition: d.Condition})
		}
		if len(jc.Environment) > 0 {
			c.Environment = make(map[string]string, len(jc.Environment))
			for _, e := range jc.Environment {
				c.Environment[e.Name] = e.Value
			}
		}
		td.Containers = append(td.Containers, c)
	}
	return td, nil
}

// ReadTaskDefinitionFile reads and parses a task definition file (--task-definition-file);
// errors name the file.
func ReadTaskDefinitionFile(path string) (TaskDefinition, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return TaskDefinition{}, fmt.Errorf("read task definition file: %w", err)
	}
	td, err := ParseTaskDefinition(data)
	if err != nil {
		return TaskDefinition{}, fmt.Errorf("task definition file %q: %w", path, err)
	}
	return td, nil
}

// ReadScriptFile reads an entry point script (--entrypoint-file).
func ReadScriptFile(path string) (ScriptFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return ScriptFile{}, fmt.Errorf("read entry point file: %w", err)
	}
	return ScriptFile{Path: path, Content: string(data)}, nil
}
