// Package web holds what every HTTP role shares: RFC 9457 problem responses,
// the request-id and user-id middleware, request metrics and access logs,
// health and readiness endpoints, and a server that shuts down gracefully.
package web
