package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"unicode/utf8"
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

// MaxInputSize is the most ReadTaskDefinition and ReadScript read: 1 MiB. Task definitions
// and entry point scripts are a few KiB; anything larger is not one.
const MaxInputSize = 1 << 20

// Errors about an input's content. Every one of them is bad input (the CLI's exit 2).
var (
	// ErrNoContainers is returned for a task definition without container definitions.
	ErrNoContainers = errors.New("task definition has no containerDefinitions")
	// ErrTooLarge is returned for an input over MaxInputSize.
	ErrTooLarge = errors.New("larger than 1 MiB")
	// ErrNotText is returned for an input that is not UTF-8 text (binary data).
	ErrNotText = errors.New("not UTF-8 text (binary data?)")
	// ErrInvalidTaskDefinition is matched (errors.Is) by every error about a task
	// definition's JSON: not JSON, not an object, a field of the wrong type.
	ErrInvalidTaskDefinition = errors.New("invalid task definition")
)

// invalidError is an ErrInvalidTaskDefinition whose message says what and where.
type invalidError struct{ msg string }

func (e invalidError) Error() string        { return e.msg }
func (e invalidError) Is(target error) bool { return target == ErrInvalidTaskDefinition }

func invalid(format string, args ...any) error { return invalidError{fmt.Sprintf(format, args...)} }

// ReadTaskDefinition reads and parses one task definition from r (a file, or stdin for
// `--task-definition-file -`), at most MaxInputSize bytes of it; errors name the input as
// name.
func ReadTaskDefinition(r io.Reader, name string) (TaskDefinition, error) {
	data, err := readInput(r)
	if err == nil {
		var td TaskDefinition
		if td, err = ParseTaskDefinition(data); err == nil {
			return td, nil
		}
	}
	return TaskDefinition{}, fmt.Errorf("task definition %s: %w", name, err)
}

// ReadTaskDefinitionFile reads and parses a task definition file (--task-definition-file).
func ReadTaskDefinitionFile(path string) (TaskDefinition, error) {
	f, err := os.Open(path)
	if err != nil {
		return TaskDefinition{}, fmt.Errorf("read task definition file: %w", err)
	}
	defer f.Close()
	return ReadTaskDefinition(f, path)
}

// ReadScript reads an entry point script from r, at most MaxInputSize bytes of text; path is
// what findings call it.
func ReadScript(r io.Reader, path string) (ScriptFile, error) {
	data, err := readInput(r)
	if err != nil {
		return ScriptFile{}, fmt.Errorf("entry point script %s: %w", path, err)
	}
	return ScriptFile{Path: path, Content: string(data)}, nil
}

// ReadScriptFile reads an entry point script file (--entrypoint-file).
func ReadScriptFile(path string) (ScriptFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return ScriptFile{}, fmt.Errorf("read entry point file: %w", err)
	}
	defer f.Close()
	return ReadScript(f, path)
}

// readInput reads at most MaxInputSize bytes of text.
func readInput(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxInputSize+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read: %w", err)
	case len(data) > MaxInputSize:
		return nil, ErrTooLarge
	}
	if err := checkText(data); err != nil {
		return nil, err
	}
	return data, nil
}

func checkText(data []byte) error {
	if bytes.IndexByte(data, 0) >= 0 || !utf8.Valid(data) {
		return ErrNotText
	}
	return nil
}

// ParseTaskDefinition reads a task definition from JSON: either what
// `aws ecs describe-task-definition` prints ({"taskDefinition": {...}}) or a
// register-task-definition input ({"family": ..., "containerDefinitions": [...]}).
// Unknown fields are ignored. Errors say where the document is wrong in its own terms
// ("containerDefinitions[0].command: want a list of strings, item 1 is a number").
func ParseTaskDefinition(data []byte) (TaskDefinition, error) {
	if err := checkText(data); err != nil {
		return TaskDefinition{}, err
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return TaskDefinition{}, invalid("empty: want a task definition in JSON")
	}
	if data[0] != '{' {
		return TaskDefinition{}, invalid("not a JSON object: want a task definition as `aws ecs describe-task-definition` prints it")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return TaskDefinition{}, jsonError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return TaskDefinition{}, invalid("not JSON: more data after the task definition's closing brace")
	}
	root := jsonObject{m: doc}
	if inner, ok := doc["taskDefinition"].(map[string]any); ok {
		root = jsonObject{path: "taskDefinition.", m: inner}
	}
	var td TaskDefinition
	var revision *int
	var err error
	pick := func(e error) {
		if err == nil {
			err = e
		}
	}
	td.Family, err = root.str("family")
	revision, e := root.integer("revision")
	pick(e)
	td.ARN, e = root.str("taskDefinitionArn")
	pick(e)
	td.NetworkMode, e = root.str("networkMode")
	pick(e)
	td.RequiresCompatibilities, e = root.strs("requiresCompatibilities")
	pick(e)
	cds, e := root.objects("containerDefinitions")
	pick(e)
	if err != nil {
		return TaskDefinition{}, err
	}
	if revision != nil {
		td.Revision = *revision
	}
	if len(cds) == 0 {
		return TaskDefinition{}, ErrNoContainers
	}
	for _, cd := range cds {
		c, err := parseContainer(cd)
		if err != nil {
			return TaskDefinition{}, err
		}
		td.Containers = append(td.Containers, c)
	}
	return td, nil
}

func parseContainer(o jsonObject) (Container, error) {
	var c Container
	var err error
	pick := func(e error) {
		if err == nil {
			err = e
		}
	}
	c.Name, err = o.str("name")
	if err == nil && c.Name == "" {
		err = invalid("%sname: missing: every container needs a name", o.path)
	}
	var e error
	c.Image, e = o.str("image")
	pick(e)
	c.Essential, e = o.boolean("essential")
	pick(e)
	c.Command, e = o.strs("command")
	pick(e)
	c.EntryPoint, e = o.strs("entryPoint")
	pick(e)
	c.StopTimeout, e = o.integer("stopTimeout")
	pick(e)
	lp, e := o.object("linuxParameters")
	pick(e)
	if lp != nil {
		c.InitProcessEnabled, e = lp.boolean("initProcessEnabled")
		pick(e)
	}
	deps, e := o.objects("dependsOn")
	pick(e)
	for _, d := range deps {
		var dep Dependency
		dep.ContainerName, e = d.str("containerName")
		pick(e)
		dep.Condition, e = d.str("condition")
		pick(e)
		c.DependsOn = append(c.DependsOn, dep)
	}
	env, e := o.objects("environment")
	pick(e)
	for _, kv := range env {
		name, e1 := kv.str("name")
		value, e2 := kv.str("value")
		pick(e1)
		pick(e2)
		if c.Environment == nil {
			c.Environment = make(map[string]string, len(env))
		}
		c.Environment[name] = value
	}
	if err != nil {
		return Container{}, err
	}
	return c, nil
}

// jsonError turns a decoding error into a message about the document, with its line and
// column.
func jsonError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off := int(min(max(se.Offset, 1), int64(len(data))))
		line := 1 + bytes.Count(data[:off-1], []byte("\n"))
		col := off - bytes.LastIndexByte(data[:off-1], '\n') - 1
		return invalid("not valid JSON at line %d, column %d: %s", line, col, strings.TrimPrefix(se.Error(), "json: "))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return invalid("not valid JSON: it ends in the middle")
	}
	return invalid("not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonObject is a decoded JSON object and its path in the document ("containerDefinitions[0].").
type jsonObject struct {
	path string
	m    map[string]any
}

// kind names a decoded JSON value's type in JSON's terms.
func kind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "true or false"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return "null"
}

func (o jsonObject) wrong(key, want string, v any) error {
	return invalid("%s%s: want %s, got %s", o.path, key, want, kind(v))
}

// str reads a string field; missing or null is "".
func (o jsonObject) str(key string) (string, error) {
	switch v := o.m[key].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", o.wrong(key, "a string", v)
	}
}

// integer reads a whole, non-negative number; missing or null is nil.
func (o jsonObject) integer(key string) (*int, error) {
	switch v := o.m[key].(type) {
	case nil:
		return nil, nil
	case json.Number:
		n, err := v.Int64()
		if err != nil || n < 0 || n > math.MaxInt32 {
			return nil, invalid("%s%s: want a whole number of at least 0, got %s", o.path, key, oneLine(v.String()))
		}
		i := int(n)
		return &i, nil
	default:
		return nil, o.wrong(key, "a number", v)
	}
}

// boolean reads true or false; missing or null is nil.
func (o jsonObject) boolean(key string) (*bool, error) {
	switch v := o.m[key].(type) {
	case nil:
		return nil, nil
	case bool:
		return &v, nil
	default:
		return nil, o.wrong(key, "true or false", v)
	}
}

// strs reads a list of strings; missing or null is nil.
func (o jsonObject) strs(key string) ([]string, error) {
	switch v := o.m[key].(type) {
	case nil:
		return nil, nil
	case []any:
		out := make([]string, 0, len(v))
		for i, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, invalid("%s%s: want a list of strings, item %d is %s", o.path, key, i, kind(x))
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, o.wrong(key, "a list of strings", v)
	}
}

// object reads an object; missing or null is nil.
func (o jsonObject) object(key string) (*jsonObject, error) {
	switch v := o.m[key].(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return &jsonObject{path: o.path + key + ".", m: v}, nil
	default:
		return nil, o.wrong(key, "an object", v)
	}
}

// objects reads a list of objects; missing or null is nil.
func (o jsonObject) objects(key string) ([]jsonObject, error) {
	switch v := o.m[key].(type) {
	case nil:
		return nil, nil
	case []any:
		out := make([]jsonObject, 0, len(v))
		for i, x := range v {
			m, ok := x.(map[string]any)
			if !ok {
				return nil, invalid("%s%s[%d]: want an object, got %s", o.path, key, i, kind(x))
			}
			out = append(out, jsonObject{path: fmt.Sprintf("%s%s[%d].", o.path, key, i), m: m})
		}
		return out, nil
	default:
		return nil, o.wrong(key, "a list of objects", v)
	}
}
