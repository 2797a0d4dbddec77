package ecssim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/drainctl/drainctl/internal/ecs/ecssim"
)

// FuzzRequests sends arbitrary bodies to every operation: the simulator must answer each with
// 200 and JSON, or 400 and an error carrying __type — never panic or fail with a 5xx.
func FuzzRequests(f *testing.F) {
	ops := []string{"CreateCluster", "DescribeClusters", "DescribeServices", "UpdateService", "DescribeTaskDefinition",
		"RegisterTaskDefinition", "ListTasks", "DescribeTasks", "StopTask", "ListServiceDeployments", "DescribeServiceDeployments"}
	seeds := []string{
		`{}`, ``, `null`, `[]`, `{"cluster":"c","services":["svc"]}`,
		`{"cluster":"c","service":"svc","forceNewDeployment":true,"desiredCount":-1}`,
		`{"cluster":"c","service":"svc","deploymentConfiguration":{"maximumPercent":50}}`,
		`{"family":"x","containerDefinitions":[{"name":"a","image":"b","stopTimeout":"x"}]}`,
		`{"taskDefinition":"worker:0"}`, `{"cluster":"c","tasks":["a/b/c"]}`,
		`{"serviceDeploymentArns":["arn:aws:ecs:us-east-1:1:service-deployment/c/svc/1"]}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), s)
	}
	f.Fuzz(func(t *testing.T, opIndex uint8, body string) {
		s := ecssim.New(ecssim.Options{})
		defer s.Close()
		s.CreateCluster("c")
		arn, err := s.RegisterTaskDefinition(ecssim.TaskDefinition{Family: "worker", Containers: []ecssim.Container{{Name: "a", Image: "b"}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateService(ecssim.ServiceSpec{Cluster: "c", Name: "svc", TaskDefinition: arn, DesiredCount: 1}); err != nil {
			t.Fatal(err)
		}
		s.Step()
		op := ops[int(opIndex)%len(ops)]
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113."+op)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %q: status %d, body not a JSON object: %q", op, body, rec.Code, rec.Body.String())
		}
		switch rec.Code {
		case http.StatusOK:
		case http.StatusBadRequest:
			if typ, _ := out["__type"].(string); typ == "" {
				t.Fatalf("%s %q: 400 without __type: %s", op, body, rec.Body.String())
			}
		default:
			t.Fatalf("%s %q: status %d: %s", op, body, rec.Code, rec.Body.String())
		}
	})
}

// FuzzLoadConfig checks that LoadConfig never panics and that what it accepts can be applied
// or is refused with an error.
func FuzzLoadConfig(f *testing.F) {
	f.Add(`{"clusters":["c"],"taskDefinitions":[{"family":"w","containerDefinitions":[{"name":"a","image":"b"}]}],"services":[{"cluster":"c","name":"s","taskDefinition":"w","desiredCount":1}]}`)
	f.Add(`{"healthyAfter":"-1s"}`)
	f.Add(`{"services":[{"cluster":"c","name":"s","taskDefinition":"w","process":{"argv":[]}}]}`)
	f.Add(`{"taskDefinitions":[1]}`)
	f.Fuzz(func(t *testing.T, in string) {
		cfg, err := ecssim.LoadConfig(strings.NewReader(in))
		if err != nil {
			return
		}
		for i := range cfg.Services {
			cfg.Services[i].Process = nil // no processes from fuzzed argv
		}
		s := ecssim.New(cfg.Options(ecssim.Options{}))
		defer s.Close()
		_ = s.Apply(cfg)
		s.Step()
	})
}
