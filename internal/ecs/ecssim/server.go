package ecssim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// targetPrefix is the X-Amz-Target prefix of every ECS operation.
const targetPrefix = "AmazonEC2ContainerServiceV20141113."

// apiError is an ECS error response: HTTP status and the __type code the SDK maps to its
// typed errors.
type apiError struct {
	status    int
	code, msg string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func invalidParam(format string, args ...any) *apiError {
	return &apiError{code: "InvalidParameterException", msg: fmt.Sprintf(format, args...)}
}

func clusterNotFound() *apiError {
	return &apiError{code: "ClusterNotFoundException", msg: "Cluster not found."}
}

func serviceNotFound() *apiError {
	return &apiError{code: "ServiceNotFoundException", msg: "Service not found."}
}

type opFunc func(s *Sim, body []byte) (any, error)

var ops = map[string]opFunc{
	"CreateCluster":              opCreateCluster,
	"DescribeClusters":           opDescribeClusters,
	"DescribeServices":           opDescribeServices,
	"UpdateService":              opUpdateService,
	"DescribeTaskDefinition":     opDescribeTaskDefinition,
	"RegisterTaskDefinition":     opRegisterTaskDefinition,
	"ListTasks":                  opListTasks,
	"DescribeTasks":              opDescribeTasks,
	"StopTask":                   opStopTask,
	"ListServiceDeployments":     opListServiceDeployments,
	"DescribeServiceDeployments": opDescribeServiceDeployments,
	"UpdateTaskProtection":       opUpdateTaskProtection,
	"GetTaskProtection":          opGetTaskProtection,
	"ContinueServiceDeployment":  opContinueServiceDeployment,
}

func (s *Sim) serveHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, targetPrefix)
	if r.Method != http.MethodPost || !ok {
		writeError(w, &apiError{code: "UnknownOperationException", msg: "Unknown operation " + target})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		writeError(w, &apiError{code: "SerializationException", msg: err.Error()})
		return
	}
	s.mu.Lock()
	s.calls[op]++
	s.ops = append(s.ops, op)
	latency := s.faults.latency
	fault := s.takeFault(op)
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	if fault != nil {
		writeError(w, fault)
		return
	}
	fn := ops[op]
	if fn == nil {
		writeError(w, &apiError{code: "UnknownOperationException", msg: "Operation " + op + " is not supported by ecssim."})
		return
	}
	s.mu.Lock()
	out, err := fn(s, body)
	s.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeError(w, &apiError{status: 500, code: "ServerException", msg: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", randUUID())
	_, _ = w.Write(b)
}

// takeFault returns the injected error for this call of op, if any. Called with s.mu held.
func (s *Sim) takeFault(op string) *apiError {
	f := &s.faults
	if f.unimplemented[op] {
		return &apiError{code: "UnknownOperationException", msg: "Operation " + op + " is not implemented."}
	}
	if f.deny[op] {
		return &apiError{code: "AccessDeniedException", msg: fmt.Sprintf(
			"User: arn:aws:iam::%s:user/ecssim is not authorized to perform: ecs:%s on resource: * because no identity-based policy allows the ecs:%s action",
			s.o.AccountID, op, op)}
	}
	for _, k := range []string{op, ""} {
		if f.throttle[k] > 0 {
			f.throttle[k]--
			return &apiError{code: "ThrottlingException", msg: "Rate exceeded"}
		}
	}
	for _, k := range []string{op, ""} {
		if f.server[k] > 0 {
			f.server[k]--
			return &apiError{status: 500, code: "ServerException", msg: "Service Unavailable. Please try again later."}
		}
	}
	return nil
}

func writeError(w http.ResponseWriter, err error) {
	ae, ok := err.(*apiError)
	if !ok {
		ae = &apiError{status: 500, code: "ServerException", msg: err.Error()}
	}
	status := ae.status
	if status == 0 {
		status = http.StatusBadRequest
	}
	b, _ := json.Marshal(map[string]string{"__type": ae.code, "message": ae.msg})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", randUUID())
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func decode(body []byte, v any) error {
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &apiError{code: "SerializationException", msg: err.Error()}
	}
	return nil
}
