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
	var err error // the first field of the wrong type
	root := jsonObject{m: doc, err: &err}
	if inner, ok := doc["taskDefinition"].(map[string]any); ok {
		root = jsonObject{path: "taskDefinition.", m: inner, err: &err}
	}
	td := TaskDefinition{
		Family:                  root.str("family"),
		ARN:                     root.str("taskDefinitionArn"),
		NetworkMode:             root.str("networkMode"),
		RequiresCompatibilities: root.strs("requiresCompatibilities"),
	}
	if rev := root.integer("revision"); rev != nil {
		td.Revision = *rev
	}
	cds := root.objects("containerDefinitions")
	for _, cd := range cds {
		td.Containers = append(td.Containers, parseContainer(cd))
	}
	switch {
	case err != nil:
		return TaskDefinition{}, err
	case len(cds) == 0:
		return TaskDefinition{}, ErrNoContainers
	}
	return td, nil
}

// parseContainer reads one container definition; errors go to o.err.
func parseContainer(o jsonObject) Container {
	c := Container{
		Name:        o.str("name"),
		Image:       o.str("image"),
		Essential:   o.boolean("essential"),
		Command:     o.strs("command"),
		EntryPoint:  o.strs("entryPoint"),
		StopTimeout: o.integer("stopTimeout"),
	}
	if c.Name == "" {
		o.fail(invalid("%sname: missing: every container needs a name", o.path))
	}
	if lp := o.object("linuxParameters"); lp != nil {
		c.InitProcessEnabled = lp.boolean("initProcessEnabled")
	}
	for _, d := range o.objects("dependsOn") {
		c.DependsOn = append(c.DependsOn, Dependency{ContainerName: d.str("containerName"), Condition: d.str("condition")})
	}
	env := o.objects("environment")
	for _, kv := range env {
		if c.Environment == nil {
			c.Environment = make(map[string]string, len(env))
		}
		c.Environment[kv.str("name")] = kv.str("value")
	}
	return c
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
// Its readers return the zero value for a missing or null field, and keep the first field of
// the wrong type in err.
type jsonObject struct {
	path string
	m    map[string]any
	err  *error
}

// fail keeps the first error.
func (o jsonObject) fail(err error) {
	if *o.err == nil {
		*o.err = err
	}
}

func (o jsonObject) child(path string, m map[string]any) jsonObject {
	return jsonObject{path: path, m: m, err: o.err}
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

// get reads a field of JSON type T; missing, null or of another type is T's zero value and
// false.
func get[T any](o jsonObject, key, want string) (T, bool) {
	var zero T
	switch v := o.m[key].(type) {
	case nil:
		return zero, false
	case T:
		return v, true
	default:
		o.fail(invalid("%s%s: want %s, got %s", o.path, key, want, kind(v)))
		return zero, false
	}
}

func (o jsonObject) str(key string) string {
	s, _ := get[string](o, key, "a string")
	return s
}

// integer reads a whole, non-negative number.
func (o jsonObject) integer(key string) *int {
	v, ok := get[json.Number](o, key, "a number")
	if !ok {
		return nil
	}
	n, err := v.Int64()
	if err != nil || n < 0 || n > math.MaxInt32 {
		o.fail(invalid("%s%s: want a whole number of at least 0, got %s", o.path, key, oneLine(v.String())))
		return nil
	}
	i := int(n)
	return &i
}

func (o jsonObject) boolean(key string) *bool {
	v, ok := get[bool](o, key, "true or false")
	if !ok {
		return nil
	}
	return &v
}

func (o jsonObject) strs(key string) []string {
	list, ok := get[[]any](o, key, "a list of strings")
	if !ok {
		return nil
	}
	out := make([]string, 0, len(list))
	for i, x := range list {
		s, ok := x.(string)
		if !ok {
			o.fail(invalid("%s%s: want a list of strings, item %d is %s", o.path, key, i, kind(x)))
			return nil
		}
		out = append(out, s)
	}
	return out
}

func (o jsonObject) object(key string) *jsonObject {
	m, ok := get[map[string]any](o, key, "an object")
	if !ok {
		return nil
	}
	c := o.child(o.path+key+".", m)
	return &c
}

func (o jsonObject) objects(key string) []jsonObject {
	list, ok := get[[]any](o, key, "a list of objects")
	if !ok {
		return nil
	}
	out := make([]jsonObject, 0, len(list))
	for i, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			o.fail(invalid("%s%s[%d]: want an object, got %s", o.path, key, i, kind(x)))
			return nil
		}
		out = append(out, o.child(fmt.Sprintf("%s%s[%d].", o.path, key, i), m))
	}
	return out
}
