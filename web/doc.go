// Package web holds what every HTTP role shares: RFC 9457 problem responses,
// the one mapping from errors to HTTP answers (Failure), the request-id and
// user-id middleware, request metrics and access logs, health and readiness
// endpoints, and a server that shuts down gracefully.
//
// # Failures
//
// Every role answers a failed request through Failure.Answer, which decides
// its status from the error's kind (Classify): fault.ErrNotFound is 404;
// fault.ErrUnavailable, or a deadline that passed, is 503 with Retry-After,
// a promise that nothing was done; fault.ErrOutcomeUnknown is 503 with
// Retry-After of type OutcomeUnknownType, since the write may have taken
// effect; behind a gateway, ErrUpstreamTimeout is 504 and ErrBadGateway 502;
// anything else is 500. Packages keep sentinels of their own, made with
// fault.New, so that web knows none of them and imports no store.
//
// A request abandoned by its client is answered by no one, whatever error
// its abandonment caused underneath: it is counted and logged as 499
// (StatusClientClosedRequest), never as the 200 the server would send for a
// handler that wrote nothing.
package web
