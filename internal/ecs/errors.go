package ecs

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Sentinel errors callers branch on with errors.Is; the error values returned by this package
// carry a one-line message of their own and match one of these.
var (
	// ErrNotFound means a cluster or service does not exist in the region.
	ErrNotFound = errors.New("not found")
	// ErrAccessDenied means the credentials lack an IAM action; errors.As to *AccessDeniedError
	// gives the action.
	ErrAccessDenied = errors.New("access denied")
	// ErrRefused means the service cannot be deployed by drainctl as it is (not ACTIVE, or a
	// CODE_DEPLOY or EXTERNAL deployment controller).
	ErrRefused = errors.New("refused")
	// ErrInProgress means a rollout is already running on the service and the caller did not
	// allow proceeding anyway.
	ErrInProgress = errors.New("rollout already in progress")
	// ErrUnsupported means the endpoint does not implement the operation (some third-party
	// ECS implementations, older regions).
	ErrUnsupported = errors.New("operation not supported by the endpoint")
	// ErrNoCredentials means the SDK found no AWS credentials anywhere in its chain.
	ErrNoCredentials = errors.New("no AWS credentials")
)

// noCredentialsMessage names the ways to provide credentials, instead of the SDK's chain dump.
const noCredentialsMessage = "no AWS credentials found: set AWS_PROFILE (or --profile) for a shared config profile, " +
	"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, run `aws sso login` for an SSO profile, or run where a task or instance role applies"

// isNoCredentials reports whether err is the SDK failing to find credentials (no profile, no
// environment variables, no role).
func isNoCredentials(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "get credentials:") || strings.Contains(msg, "failed to refresh cached credentials") ||
		strings.Contains(msg, "no EC2 IMDS role found") || strings.Contains(msg, "failed to retrieve credentials")
}

// AccessDeniedError reports the IAM action that was refused, so the message can name it.
type AccessDeniedError struct {
	// Action is the IAM action, e.g. "ecs:DescribeServices".
	Action string
	// Resource describes what the call was about, e.g. `service "worker" in cluster "prod"`.
	Resource string
	// Region is the AWS region of the call.
	Region string
	// Err is the SDK's error.
	Err error
}

// Error returns one line naming the missing IAM action.
func (e *AccessDeniedError) Error() string {
	return fmt.Sprintf("access denied to %s (%s, region %s): the IAM policy must allow %s",
		e.Action, e.Resource, e.Region, e.Action)
}

// Is makes errors.Is(err, ErrAccessDenied) true.
func (e *AccessDeniedError) Is(target error) bool { return target == ErrAccessDenied }

// Unwrap returns the SDK's error.
func (e *AccessDeniedError) Unwrap() error { return e.Err }

// kindError is a one-line message that matches one of the sentinel errors.
type kindError struct {
	kind error
	msg  string
	err  error // optional cause
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }
func (e *kindError) Unwrap() error        { return e.err }

func newKindError(kind, cause error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...), err: cause}
}

// apiCode returns the AWS error code of err, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// isAccessDenied reports whether err is an IAM refusal.
func isAccessDenied(err error) bool {
	var ad *ecstypes.AccessDeniedException
	if errors.As(err, &ad) {
		return true
	}
	switch apiCode(err) {
	case "AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "UnrecognizedClientException":
		return true
	}
	return false
}

// isThrottle reports whether err is a throttling error (after the SDK's own retries).
func isThrottle(err error) bool {
	if _, ok := retry.DefaultThrottleErrorCodes[apiCode(err)]; ok {
		return true
	}
	var qe *retry.MaxAttemptsError
	if errors.As(err, &qe) {
		if _, ok := retry.DefaultThrottleErrorCodes[apiCode(qe.Err)]; ok {
			return true
		}
	}
	return false
}

// Transient reports whether a failed read is worth another try at the next poll: throttling,
// server faults, and network errors. Anything else (access, validation, not found) is not.
func Transient(err error) bool { return isTransient(err) }

func isTransient(err error) bool {
	if isThrottle(err) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorFault() == smithy.FaultServer {
		return true
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// isUnsupported reports whether err says the endpoint does not implement the operation (some
// third-party ECS implementations, older regions).
func isUnsupported(err error) bool {
	switch apiCode(err) {
	case "UnknownOperationException", "UnsupportedOperation", "UnsupportedOperationException",
		"InvalidAction", "NotImplemented":
		return true
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case 404, 501:
			return true
		}
	}
	return false
}

// wrapAPIError turns an SDK error of operation op (the bare operation name, e.g.
// "DescribeServices") about resource into one of this package's errors.
func (c *Client) wrapAPIError(err error, op, resource string, ref ServiceRef) error {
	if err == nil {
		return nil
	}
	if isAccessDenied(err) {
		return &AccessDeniedError{Action: "ecs:" + op, Resource: resource, Region: c.region, Err: err}
	}
	if isNoCredentials(err) {
		return newKindError(ErrNoCredentials, err, "%s", noCredentialsMessage)
	}
	if isUnsupported(err) {
		return newKindError(ErrUnsupported, err, "%s %s: the endpoint does not support %s", lowerOp(op), resource, op)
	}
	switch apiCode(err) {
	case "ClusterNotFoundException":
		return newKindError(ErrNotFound, err, "cluster %q not found (region %s)", ref.Cluster, c.region)
	case "ServiceNotFoundException":
		return newKindError(ErrNotFound, err, "service %q not found in cluster %q (region %s)", ref.Service, ref.Cluster, c.region)
	case "ServiceNotActiveException":
		return newKindError(ErrRefused, err, "service %q in cluster %q is not ACTIVE (region %s)", ref.Service, ref.Cluster, c.region)
	}
	return fmt.Errorf("%s %s: %w", lowerOp(op), resource, err)
}

// lowerOp turns "DescribeServices" into "describe services" for messages.
func lowerOp(op string) string {
	out := make([]byte, 0, len(op)+4)
	for i := 0; i < len(op); i++ {
		ch := op[i]
		if ch >= 'A' && ch <= 'Z' {
			if i > 0 {
				out = append(out, ' ')
			}
			ch += 'a' - 'A'
		}
		out = append(out, ch)
	}
	return string(out)
}
