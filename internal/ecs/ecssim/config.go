package ecssim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Config is the ecssim command's setup file: clusters, task definitions and services to
// create at start. See cmd/ecssim for the format.
type Config struct {
	Region       string   `json:"region"`
	AccountID    string   `json:"accountId"`
	HealthyAfter Duration `json:"healthyAfter"`
	Clusters     []string `json:"clusters"`
	// TaskDefinitions are register-task-definition inputs, registered in order.
	TaskDefinitions []json.RawMessage `json:"taskDefinitions"`
	Services        []ServiceConfig   `json:"services"`
}

// ServiceConfig is one service of a Config; see ServiceSpec for the meaning of each field.
type ServiceConfig struct {
	Cluster               string          `json:"cluster"`
	Name                  string          `json:"name"`
	TaskDefinition        string          `json:"taskDefinition"`
	DesiredCount          int32           `json:"desiredCount"`
	MinimumHealthyPercent *int32          `json:"minimumHealthyPercent"`
	MaximumPercent        *int32          `json:"maximumPercent"`
	CircuitBreaker        *CircuitBreaker `json:"circuitBreaker"`
	DeploymentController  string          `json:"deploymentController"`
	LaunchType            string          `json:"launchType"`
	Process               *ProcessConfig  `json:"process"`
	// Strategy and the fields after it are deploymentConfiguration's, in ECS's JSON shape.
	Strategy             string                `json:"strategy"`
	BakeTimeInMinutes    *int32                `json:"bakeTimeInMinutes"`
	LifecycleHooks       []LifecycleHook       `json:"lifecycleHooks"`
	LinearConfiguration  *LinearConfiguration  `json:"linearConfiguration"`
	CanaryConfiguration  *CanaryConfiguration  `json:"canaryConfiguration"`
	EarlySuccessCriteria *EarlySuccessCriteria `json:"earlySuccessCriteria"`
}

// ProcessConfig is a ProcessTemplate in a Config.
type ProcessConfig struct {
	Argv             []string `json:"argv"`
	Env              []string `json:"env"`
	Dir              string   `json:"dir"`
	HostnameEnv      string   `json:"hostnameEnv"`
	BrokenSignalPath bool     `json:"brokenSignalPath"`
	StopTimeout      Duration `json:"stopTimeout"`
	LogDir           string   `json:"logDir"`
}

// Duration is a time.Duration written as a Go duration string ("40s") in JSON.
type Duration time.Duration

// UnmarshalJSON reads a duration string such as "1m30s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"40s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", s)
	}
	*d = Duration(v)
	return nil
}

// LoadConfig reads a Config, rejecting unknown fields so typos do not pass silently.
func LoadConfig(r io.Reader) (*Config, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read ecssim config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("parse ecssim config: %w", err)
	}
	for i, td := range c.TaskDefinitions {
		var probe struct {
			Family string `json:"family"`
		}
		if err := json.Unmarshal(td, &probe); err != nil {
			return nil, fmt.Errorf("parse ecssim config: task definition %d: %w", i, err)
		}
	}
	for _, svc := range c.Services {
		if svc.Name == "" || svc.Cluster == "" || svc.TaskDefinition == "" {
			return nil, fmt.Errorf("parse ecssim config: service %q: cluster, name and taskDefinition are required", svc.Name)
		}
		if svc.Process != nil && len(svc.Process.Argv) == 0 {
			return nil, fmt.Errorf("parse ecssim config: service %q: process.argv is empty", svc.Name)
		}
	}
	return &c, nil
}

// Options returns the simulator options the config asks for, on top of base.
func (c *Config) Options(base Options) Options {
	if c.Region != "" {
		base.Region = c.Region
	}
	if c.AccountID != "" {
		base.AccountID = c.AccountID
	}
	if c.HealthyAfter > 0 {
		base.HealthyAfter = time.Duration(c.HealthyAfter)
	}
	return base
}

// Apply creates the config's clusters, task definitions and services in s.
func (s *Sim) Apply(c *Config) error {
	for _, name := range c.Clusters {
		s.CreateCluster(name)
	}
	for i, raw := range c.TaskDefinitions {
		if _, err := s.RegisterTaskDefinition(TaskDefinition{Raw: raw}); err != nil {
			return fmt.Errorf("apply ecssim config: task definition %d: %w", i, err)
		}
	}
	for _, sc := range c.Services {
		spec := ServiceSpec{
			Cluster: sc.Cluster, Name: sc.Name, TaskDefinition: sc.TaskDefinition, DesiredCount: sc.DesiredCount,
			MinimumHealthyPercent: sc.MinimumHealthyPercent, MaximumPercent: sc.MaximumPercent,
			CircuitBreaker: sc.CircuitBreaker, DeploymentController: sc.DeploymentController, LaunchType: sc.LaunchType,
			Strategy: sc.Strategy, BakeTimeInMinutes: sc.BakeTimeInMinutes, LifecycleHooks: sc.LifecycleHooks,
			LinearConfiguration: sc.LinearConfiguration, CanaryConfiguration: sc.CanaryConfiguration,
			EarlySuccessCriteria: sc.EarlySuccessCriteria,
		}
		if p := sc.Process; p != nil {
			spec.Process = &ProcessTemplate{
				Argv: p.Argv, Env: p.Env, Dir: p.Dir, HostnameEnv: p.HostnameEnv,
				BrokenSignalPath: p.BrokenSignalPath, StopTimeout: time.Duration(p.StopTimeout), LogDir: p.LogDir,
			}
		}
		if err := s.CreateService(spec); err != nil {
			return fmt.Errorf("apply ecssim config: service %q in cluster %q: %w", sc.Name, sc.Cluster, err)
		}
	}
	return nil
}
